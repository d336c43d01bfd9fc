/**
 * The conflict inbox: fields changed on both sides that the policy holds for a person, open
 * ones first; resolved ones on request (?show=resolved|all), with who chose what.
 */
import { useSearchParams } from "react-router";
import { Group, SegmentedControl, Stack, Text } from "@mantine/core";
import { api, unwrap } from "../../api/client";
import { can, useMe } from "../../auth";
import { QueryState } from "../../components/QueryState";
import { useCursorList } from "../../lib/paging";
import { ConflictCard } from "./ConflictCard";
import { integrationKey, POLL_MS, useRefreshIntegration } from "./queries";
import { MoreButton } from "./RunsTab";
import type { SideNames } from "./sides";

const SHOW = [
  { value: "open", label: "Open" },
  { value: "resolved", label: "Resolved" },
  { value: "all", label: "All" },
] as const;
type Show = (typeof SHOW)[number]["value"];

export function ConflictsTab({ id, sides }: { id: number; sides: SideNames }) {
  const editor = can(useMe(), "editor");
  const refresh = useRefreshIntegration(id);
  const [params, setParams] = useSearchParams();
  const show: Show = SHOW.find((s) => s.value === params.get("show"))?.value ?? "open";
  const list = useCursorList(
    [...integrationKey(id), "conflicts", show],
    (cursor) =>
      unwrap(api.GET("/api/v1/integrations/{id}/conflicts", { params: { path: { id }, query: { cursor, limit: 25, state: show } } })),
    { refetchInterval: POLL_MS },
  );
  return (
    <Stack gap="md">
      <Group justify="space-between">
        <Text size="sm" c="dimmed" maw={640}>
          A field changed on both sides since the last sync is held here when the integration's conflict policy is "hold".{" "}
          {editor ? "Choose a side's value or type a merged one" : "An editor chooses a side's value or types a merged one"}; the other fields of the
          item keep syncing meanwhile.
        </Text>
        <SegmentedControl
          aria-label="Show conflicts"
          value={show}
          onChange={(value) => setParams((p) => {
            if (value === "open") {
              p.delete("show");
            } else {
              p.set("show", value);
            }
            return p;
          }, { replace: true })}
          data={SHOW.map((s) => ({ value: s.value, label: s.label }))}
        />
      </Group>
      <QueryState query={list.query} what="the conflicts">
        {() =>
          list.items.length === 0 ? (
            <Text>{show === "open" ? "No conflicts are waiting for a decision." : "No conflicts to show."}</Text>
          ) : (
            <>
              {list.items.map((conflict) => (
                <ConflictCard key={conflict.id} id={id} conflict={conflict} sides={sides} editor={editor} onResolved={refresh} />
              ))}
              <MoreButton list={list} what="conflicts" />
            </>
          )
        }
      </QueryState>
    </Stack>
  );
}
