/**
 * A conflicting field's values as people read them, and a merged value typed by a person
 * turned back into the shape the field holds (the API takes it "as side A holds the field":
 * a list stays a list, a number a number).
 */

/** A value for display: "(empty)" for nothing, lists comma-separated, objects as JSON. */
export function formatValue(value: unknown): string {
  if (value === null || value === undefined || value === "") {
    return "(empty)";
  }
  if (Array.isArray(value)) {
    return value.length ? value.map((v) => (typeof v === "string" ? v : JSON.stringify(v))).join(", ") : "(empty)";
  }
  if (typeof value === "object") {
    return JSON.stringify(value, null, 2);
  }
  return String(value);
}

/** What to prefill the merged-value box with: the value in the form parseMergedValue reads. */
export function editableValue(value: unknown): string {
  if (value === null || value === undefined) {
    return "";
  }
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) {
    return value.join(", ");
  }
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

export type Parsed = { ok: true; value: unknown } | { ok: false; error: string };

/** What kind of value a field holds, judged from the values both sides have. */
export function valueKind(samples: readonly unknown[]): "text" | "list" | "number" | "boolean" | "json" {
  const sample = samples.find((v) => v !== null && v !== undefined);
  if (Array.isArray(sample)) {
    return sample.every((v) => typeof v === "string") ? "list" : "json";
  }
  if (typeof sample === "number") {
    return "number";
  }
  if (typeof sample === "boolean") {
    return "boolean";
  }
  if (sample !== undefined && typeof sample === "object") {
    return "json";
  }
  return "text";
}

/** The typed text as a value of the same kind as `samples` (the two sides' values). */
export function parseMergedValue(text: string, samples: readonly unknown[]): Parsed {
  const kind = valueKind(samples);
  const trimmed = text.trim();
  switch (kind) {
    case "list":
      return { ok: true, value: trimmed ? trimmed.split(",").map((part) => part.trim()).filter(Boolean) : [] };
    case "number": {
      if (!trimmed) {
        return { ok: true, value: null };
      }
      const number = Number(trimmed);
      return Number.isFinite(number) ? { ok: true, value: number } : { ok: false, error: "Enter a number" };
    }
    case "boolean":
      if (/^(true|yes)$/i.test(trimmed)) {
        return { ok: true, value: true };
      }
      if (/^(false|no)$/i.test(trimmed)) {
        return { ok: true, value: false };
      }
      return { ok: false, error: "Enter yes or no" };
    case "json":
      try {
        return { ok: true, value: trimmed ? JSON.parse(trimmed) : null };
      } catch {
        return { ok: false, error: "Enter the value as JSON, like the values above" };
      }
    default:
      return { ok: true, value: text };
  }
}
