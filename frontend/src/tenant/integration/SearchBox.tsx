import { useEffect, useState } from "react";
import { useSearchParams } from "react-router";
import { useDebouncedValue } from "@mantine/hooks";
import { TextInput } from "@mantine/core";

/**
 * A search box whose text lives in the address (?q=...), so a search can be linked and
 * survives a reload; the list is asked again a moment after typing stops.
 */
export function useSearch(): [string, (value: string) => void, string] {
  const [params, setParams] = useSearchParams();
  const fromUrl = params.get("q") ?? "";
  const [text, setText] = useState(fromUrl);
  const [settled] = useDebouncedValue(text.trim(), 300);
  useEffect(() => {
    if (settled !== fromUrl) {
      setParams((p) => {
        if (settled) {
          p.set("q", settled);
        } else {
          p.delete("q");
        }
        return p;
      }, { replace: true });
    }
  }, [settled, fromUrl, setParams]);
  return [text, setText, fromUrl];
}

export function SearchBox({ label, description, value, onChange }: {
  label: string;
  description?: string;
  value: string;
  onChange: (value: string) => void;
}) {
  return (
    <TextInput
      type="search"
      label={label}
      description={description}
      value={value}
      onChange={(event) => onChange(event.currentTarget.value)}
      maxLength={200}
      maw={420}
    />
  );
}
