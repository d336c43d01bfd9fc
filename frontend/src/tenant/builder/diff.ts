/**
 * What an edit changes: two IntegrationSpecs compared as labelled settings, so the review step
 * can list "Field status: value Done, closed -> opened" before anything is saved. Pure; re-exported
 * by ./logic with the rest of the builder's logic.
 */
import type { Direction, Spec } from "./logic";

const MB = 1024 * 1024;

export interface Change {
  /** Where, for a person: "Field title: direction", "Status value In Progress". */
  what: string;
  kind: "added" | "removed" | "changed";
  before?: string;
  after?: string;
}

const DIRECTIONS: Record<Direction, string> = {
  both: "A ↔ B (both ways)", a_to_b: "A → B (A to B only)", b_to_a: "A ← B (B to A only)", none: "not synced",
};

export function directionText(direction: Direction): string {
  return DIRECTIONS[direction];
}

function show(value: unknown): string {
  if (value === null || value === undefined || value === "") return "none";
  if (Array.isArray(value)) return value.length ? value.join(", ") : "none";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/**
 * A spec as labelled leaves: lists are keyed by what identifies their entries (a field
 * mapping by its A field, a type mapping by its types, a map entry by its key), so that
 * reordering is no change and an edit reads as "Field status: value In Progress".
 */
function leaves(spec: Spec): Map<string, string> {
  const out = new Map<string, string>();
  const put = (what: string, value: unknown) => out.set(what, show(value));
  put("Side A", `connection ${spec.side_a.connection_id}, project ${spec.side_a.container}`);
  put("Side B", `connection ${spec.side_b.connection_id}, project ${spec.side_b.container}`);
  for (const t of spec.type_mappings) {
    const key = `Type mapping ${t.a_type} ↔ ${t.b_type}`;
    put(key, "mapped");
    put(`${key}: side A labels`, t.a_labels ?? []);
    put(`${key}: side B labels`, t.b_labels ?? []);
  }
  for (const m of spec.field_mappings ?? []) {
    const key = `Field ${m.a_field}`;
    put(`${key}: side B field`, m.b_field);
    put(`${key}: direction`, DIRECTIONS[m.direction ?? "both"]);
    for (const [a, b] of Object.entries(m.value_map ?? {})) put(`${key}: value ${a}`, b);
    for (const [b, a] of Object.entries(m.reverse_map ?? {})) put(`${key}: side B ${b} becomes on side A`, a);
    if (m.default_a !== null && m.default_a !== undefined) put(`${key}: default on side A`, m.default_a);
    if (m.default_b !== null && m.default_b !== undefined) put(`${key}: default on side B`, m.default_b);
  }
  const users = spec.users;
  put("Users matched by", users?.match ?? "email");
  for (const [a, b] of Object.entries(users?.map ?? {})) put(`User ${a}`, b);
  put("Default user on side A", users?.default_a);
  put("Default user on side B", users?.default_b);
  put("Comments", spec.comments?.enabled ?? true ? DIRECTIONS[spec.comments?.direction ?? "both"] : "off");
  put("Attachments", spec.attachments?.enabled ? `up to ${(spec.attachments.max_bytes ?? 10 * MB) / MB} MB` : "off");
  for (const side of ["a", "b"] as const) {
    put(`Side ${side.toUpperCase()} filter: types`, spec.filters?.[side]?.types ?? []);
    put(`Side ${side.toUpperCase()} filter: labels`, spec.filters?.[side]?.labels ?? []);
  }
  const start = spec.start ?? { mode: "new", since: null };
  put("Start point", start.mode === "since" ? `updated since ${start.since}` : start.mode === "all" ? "full history" : "new items only");
  put("Conflict policy", spec.conflict_policy ?? "hold");
  put("Poll interval (seconds)", spec.schedule?.interval_seconds ?? 60);
  put("Delete policy", spec.delete_policy ?? "ignore");
  return out;
}

/** What changes from `before` to `after`, in `after`'s order, removals last. Empty: nothing. */
export function specDiff(before: Spec, after: Spec): Change[] {
  const old = leaves(before);
  const now = leaves(after);
  const changes: Change[] = [];
  for (const [what, value] of now) {
    const was = old.get(what);
    if (was === undefined) {
      if (value !== "none") changes.push({ what, kind: "added", after: value });
    } else if (was !== value) {
      changes.push({ what, kind: "changed", before: was, after: value });
    }
  }
  for (const [what, value] of old) {
    if (!now.has(what) && value !== "none") changes.push({ what, kind: "removed", before: value });
  }
  return changes;
}
