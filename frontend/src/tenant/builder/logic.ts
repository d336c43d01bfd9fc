/**
 * The integration builder's logic, free of React and of the network so that it can be
 * unit-tested: the form state the six steps edit, its conversion to and from the API's
 * IntegrationSpec, the merging of what both apps describe and what the API suggests into that
 * state (never overwriting a choice a person made), validation per step, where an API
 * validation error belongs, and the diff an edit makes.
 *
 * Contract with the API (appliance/sync/spec.py): a field mapping's direction is one of
 * "both" | "a_to_b" | "b_to_a"; the builder adds "none" for a field shown but not synced, which
 * is simply left out of the spec. A value map maps A values to B values; where several A values
 * share a B value, `reverse_map` (B value -> A value) says which one a change on B becomes, and
 * without a choice the API takes the first of them in sorted order (see `reverseChoice`).
 */
import type { Schemas } from "../../api/client";
import { reverseMapOf } from "./reverseMap";

export type Spec = Schemas["IntegrationSpec"];
export type Description = Schemas["ContainerDescription"];
export type RemoteUser = Schemas["RemoteUser"];
export type ValueSuggestion = Schemas["ValueSuggestion"];
export type UserSuggestion = Schemas["UserSuggestion"];
export type Suggestions = Schemas["Suggestions"];

export type Direction = "both" | "a_to_b" | "b_to_a" | "none";
export type SideKey = "a" | "b";

export interface SideForm {
  connectionId: string;
  container: string;
  /** The container as the app names it ("Widgets (acme/widgets)"), kept in the spec for display. */
  label?: string;
}

export interface TypeRow {
  aType: string;
  bType: string;
  aLabels: string[];
  bLabels: string[];
}

export interface ValuePair {
  a: string;
  /** "" while not mapped. */
  b: string;
  /** Why the API suggested it ("same_name", ...); absent when a person chose it. */
  reason?: string;
  /** A suggested B value not applied (when editing): shown as a hint until a person takes it. */
  suggested?: string;
}

export interface FieldRow {
  aField: string;
  /** "" while no B field is chosen. */
  bField: string;
  direction: Direction;
  /** Used only when the row's fields have a finite set of values (see valueDomain). */
  values: ValuePair[];
  defaultA: string;
  defaultB: string;
  /** B value -> the A value a change on side B becomes (spec reverse_map), for shared B values. */
  reverse?: Record<string, string>;
  /** Suggested reverse choices not applied (when editing): hints until a person takes them. */
  reverseSuggested?: Record<string, string>;
}

export interface UserPair {
  /** The A user's handle (e-mail, else login, else id). */
  a: string;
  /** The B user's handle; "" while not mapped. */
  b: string;
  reason?: string;
  suggested?: string;
}

export interface FormState {
  name: string;
  sideA: SideForm;
  sideB: SideForm;
  types: TypeRow[];
  fields: FieldRow[];
  users: { match: "email" | "login"; pairs: UserPair[]; defaultA: string; defaultB: string };
  comments: { enabled: boolean; direction: Exclude<Direction, "none"> };
  attachments: { enabled: boolean; maxMegabytes: number };
  filters: Record<SideKey, { types: string[]; labels: string[] }>;
  /** `since` is a date ("YYYY-MM-DD", taken as 00:00 UTC) or a full ISO timestamp from a stored spec. */
  start: { mode: "new" | "since" | "all"; since: string };
  conflictPolicy: NonNullable<Spec["conflict_policy"]>;
  intervalSeconds: number;
  deletePolicy: NonNullable<Spec["delete_policy"]>;
}

export const STEPS = ["Sides", "Types", "Fields", "Values", "Options", "Review"] as const;
export type Errors = Record<string, string>;

const MB = 1024 * 1024;
const USER_FIELDS = new Set(["assignees", "reporter"]);

export function emptyForm(): FormState {
  return {
    name: "",
    sideA: { connectionId: "", container: "" },
    sideB: { connectionId: "", container: "" },
    types: [],
    fields: [],
    users: { match: "email", pairs: [], defaultA: "", defaultB: "" },
    comments: { enabled: true, direction: "both" },
    attachments: { enabled: false, maxMegabytes: 10 },
    filters: { a: { types: [], labels: [] }, b: { types: [], labels: [] } },
    start: { mode: "new", since: "" },
    conflictPolicy: "hold",
    intervalSeconds: 60,
    deletePolicy: "ignore",
  };
}

const text = (value: unknown): string => (value === null || value === undefined ? "" : String(value));

// --- spec <-> form -------------------------------------------------------------------------------

/** The form for a stored integration. */
export function specToForm(spec: Spec, name: string): FormState {
  const form = emptyForm();
  form.name = name;
  form.sideA = { connectionId: String(spec.side_a.connection_id), container: spec.side_a.container, label: spec.side_a.label ?? undefined };
  form.sideB = { connectionId: String(spec.side_b.connection_id), container: spec.side_b.container, label: spec.side_b.label ?? undefined };
  form.types = spec.type_mappings.map((t) => ({
    aType: t.a_type, bType: t.b_type, aLabels: [...(t.a_labels ?? [])], bLabels: [...(t.b_labels ?? [])],
  }));
  form.fields = (spec.field_mappings ?? []).map((m) => ({
    aField: m.a_field,
    bField: m.b_field,
    direction: m.direction ?? "both",
    values: Object.entries(m.value_map ?? {}).map(([a, b]) => ({ a, b: text(b) })),
    defaultA: text(m.default_a),
    defaultB: text(m.default_b),
    reverse: Object.fromEntries(Object.entries(m.reverse_map ?? {}).map(([b, a]) => [b, text(a)])),
  }));
  const users = spec.users;
  if (users) {
    form.users = {
      match: users.match ?? "email",
      pairs: Object.entries(users.map ?? {}).map(([a, b]) => ({ a, b })),
      defaultA: users.default_a ?? "",
      defaultB: users.default_b ?? "",
    };
  }
  if (spec.comments) form.comments = { enabled: spec.comments.enabled ?? true, direction: spec.comments.direction ?? "both" };
  if (spec.attachments) {
    form.attachments = { enabled: spec.attachments.enabled ?? false, maxMegabytes: (spec.attachments.max_bytes ?? 10 * MB) / MB };
  }
  for (const side of ["a", "b"] as const) {
    const filter = spec.filters?.[side];
    form.filters[side] = { types: [...(filter?.types ?? [])], labels: [...(filter?.labels ?? [])] };
  }
  if (spec.start) form.start = { mode: spec.start.mode ?? "new", since: spec.start.since ?? "" };
  form.conflictPolicy = spec.conflict_policy ?? "hold";
  form.intervalSeconds = spec.schedule?.interval_seconds ?? 60;
  form.deletePolicy = spec.delete_policy ?? "ignore";
  return form;
}

/** A date ("YYYY-MM-DD") as 00:00 UTC, or a stored timestamp unchanged. */
export function sinceTimestamp(since: string): string {
  return /^\d{4}-\d{2}-\d{2}$/.test(since) ? `${since}T00:00:00Z` : since;
}

/** Does this row's data have a value map (both fields chosen and synced, not a user field)? */
function mapsValues(row: FieldRow): boolean {
  return row.values.some((p) => p.b !== "") || row.defaultA !== "" || row.defaultB !== "";
}

/**
 * The spec the form describes, and for each spec field mapping the form row it came from
 * (to place API errors such as "spec.field_mappings.2.b_field" next to the right row).
 * Rows with direction "none" or without a B field are left out; value pairs without a B value
 * are left out of the value map (the default, or the value unchanged, applies to them).
 */
export function formToSpec(form: FormState): { spec: Spec; fieldRows: number[] } {
  const fieldRows: number[] = [];
  const fieldMappings: NonNullable<Spec["field_mappings"]> = [];
  form.fields.forEach((row, index) => {
    if (row.direction === "none" || !row.aField || !row.bField) return;
    fieldRows.push(index);
    const valueMap = Object.fromEntries(row.values.filter((p) => p.b !== "").map((p) => [p.a, p.b]));
    const reverse = reverseMapOf(row);
    fieldMappings.push({
      a_field: row.aField,
      b_field: row.bField,
      direction: row.direction,
      value_map: mapsValues(row) ? valueMap : null,
      reverse_map: mapsValues(row) && Object.keys(reverse).length > 0 ? reverse : null,
      default_a: row.defaultA || null,
      default_b: row.defaultB || null,
    });
  });
  const spec: Spec = {
    side_a: { connection_id: Number(form.sideA.connectionId), container: form.sideA.container, ...(form.sideA.label ? { label: form.sideA.label } : {}) },
    side_b: { connection_id: Number(form.sideB.connectionId), container: form.sideB.container, ...(form.sideB.label ? { label: form.sideB.label } : {}) },
    type_mappings: form.types.map((t) => ({ a_type: t.aType, b_type: t.bType, a_labels: t.aLabels, b_labels: t.bLabels })),
    field_mappings: fieldMappings,
    users: {
      match: form.users.match,
      map: Object.fromEntries(form.users.pairs.filter((p) => p.b !== "").map((p) => [p.a, p.b])),
      default_a: form.users.defaultA || null,
      default_b: form.users.defaultB || null,
    },
    comments: { enabled: form.comments.enabled, direction: form.comments.direction },
    attachments: { enabled: form.attachments.enabled, max_bytes: Math.round(form.attachments.maxMegabytes * MB) },
    filters: { a: { ...form.filters.a }, b: { ...form.filters.b } },
    start: { mode: form.start.mode, since: form.start.mode === "since" ? sinceTimestamp(form.start.since) : null },
    conflict_policy: form.conflictPolicy,
    schedule: { interval_seconds: form.intervalSeconds },
    delete_policy: form.deletePolicy,
  };
  return { spec, fieldRows };
}

// --- what the apps described -> suggested rows -----------------------------------------------

const sameName = (x: string, y: string) => comparable(x) === comparable(y);

/** Names compared as the API's suggestions compare them: case, spaces, "-", "_" and a "scope::" prefix ignored. */
export function comparable(name: string): string {
  const bare = name.includes("::") ? name.slice(name.lastIndexOf("::") + 2) : name;
  return bare.replace(/[\s_-]+/g, "").toLowerCase();
}

/**
 * A type mapping per A item type: the B type of the same name, else B's first type with a
 * label naming the A type (GitLab has one kind of issue and tells kinds apart by label:
 * Bug <-> issue labelled "bug").
 */
export function suggestTypeRows(aTypes: string[], bTypes: string[]): TypeRow[] {
  if (bTypes.length === 0) return [];
  return aTypes.map((aType) => {
    const same = bTypes.find((b) => sameName(aType, b));
    return same
      ? { aType, bType: same, aLabels: [], bLabels: [] }
      : { aType, bType: bTypes[0], aLabels: [], bLabels: [aType.toLowerCase().replace(/\s+/g, "-")] };
  });
}

/** Which way a field can flow given what each side may write. */
function directionFor(aWritable: boolean, bWritable: boolean): Direction {
  if (aWritable && bWritable) return "both";
  if (bWritable) return "a_to_b";
  if (aWritable) return "b_to_a";
  return "none";
}

/**
 * A row per A field: the B field with the same key (canonical keys are shared, e.g. "status"),
 * synced both ways where both sides can write it, one way where only one can.
 */
export function suggestFieldRows(a: Description, b: Description): FieldRow[] {
  return a.fields.map((field) => {
    const partner = b.fields.find((f) => f.id === field.id);
    return {
      aField: field.id,
      bField: partner ? partner.id : "",
      direction: partner ? directionFor(field.writable, partner.writable) : "none",
      values: [],
      defaultA: "",
      defaultB: "",
    };
  });
}

/**
 * The rows a person sees: the existing ones unchanged (their choices win), then a suggested
 * row for every A field not yet in them. On a fresh integration (`fresh`) the suggestions keep
 * their direction; when editing, new rows come in as "none" so that describing a container
 * never silently adds a mapping to a stored integration.
 */
export function mergeFieldRows(existing: FieldRow[], suggested: FieldRow[], fresh: boolean): FieldRow[] {
  const usedA = new Set(existing.map((r) => r.aField));
  const usedB = new Set(existing.filter((r) => r.direction !== "none").map((r) => r.bField));
  const added = suggested
    .filter((r) => !usedA.has(r.aField))
    .map((r) => {
      const taken = r.bField !== "" && usedB.has(r.bField);
      return { ...r, bField: taken ? "" : r.bField, direction: fresh && !taken ? r.direction : ("none" as Direction) };
    });
  return [...existing, ...added];
}

export interface ValueDomain {
  kind: "status" | "names";
  aValues: string[];
  bValues: string[];
}

function valuesOf(description: Description, fieldId: string): string[] | null {
  if (fieldId === "status") return description.statuses.map((s) => s.name);
  if (fieldId === "priority" && description.priorities.length > 0) return description.priorities;
  const field = description.fields.find((f) => f.id === fieldId);
  return field?.options && field.options.length > 0 ? field.options : null;
}

/**
 * The values a synced row maps between, when both of its fields have a finite set of values
 * (statuses, priorities, option fields, labels); null for free text, numbers, dates and users.
 */
export function valueDomain(row: FieldRow, a: Description, b: Description): ValueDomain | null {
  if (row.direction === "none" || !row.bField || USER_FIELDS.has(row.aField) || USER_FIELDS.has(row.bField)) return null;
  const aValues = valuesOf(a, row.aField);
  const bValues = valuesOf(b, row.bField);
  if (!aValues || !bValues) return null;
  return { kind: row.aField === "status" && row.bField === "status" ? "status" : "names", aValues, bValues };
}

/**
 * A value pair for every A value the app reports (in its order), each keeping the B value a
 * person chose, else taking the suggested one (`apply`, on a new integration) or carrying it
 * as a hint (when editing, so that visiting the step changes nothing stored); pairs for A
 * values the app no longer reports are kept after them (a stored map is never dropped silently).
 */
export function mergeValueSuggestion(existing: ValuePair[], aValues: string[], suggestion: ValueSuggestion, apply = true): ValuePair[] {
  const chosen = new Map(existing.map((p) => [p.a, p]));
  const suggested = new Map<string, { b: string; reason: string }>();
  for (const pair of suggestion.pairs) {
    if (!suggested.has(pair.a)) suggested.set(pair.a, { b: pair.b, reason: pair.reason });
  }
  const rows: ValuePair[] = aValues.map((a) => {
    const own = chosen.get(a);
    if (own && own.b !== "") return own;
    const hint = suggested.get(a);
    if (!hint) return { a, b: "" };
    return apply ? { a, b: hint.b, reason: hint.reason } : { a, b: "", reason: hint.reason, suggested: hint.b };
  });
  const reported = new Set(aValues);
  return [...rows, ...existing.filter((p) => !reported.has(p.a))];
}

/** Every hint taken: pairs without a B value get their suggested one. */
export function applyHints<T extends { b: string; suggested?: string }>(pairs: T[]): T[] {
  return pairs.map((p) => (p.b === "" && p.suggested ? { ...p, b: p.suggested, suggested: undefined } : p));
}

/** A values without a B value, and B values no A value maps to (what the values step shows as unmapped). */
export function unmappedValues(pairs: ValuePair[], bValues: string[]): { a: string[]; b: string[] } {
  const used = new Set(pairs.map((p) => p.b).filter((b) => b !== ""));
  return { a: pairs.filter((p) => p.b === "").map((p) => p.a), b: bValues.filter((b) => !used.has(b)) };
}

/** How Users.map names a person (as the API's suggestions do): e-mail, else login, else id. */
export function handleOf(user: RemoteUser): string {
  return user.email || user.login || user.id;
}

/** A pair for every A user: a person's choice kept, else the suggested partner (as a hint unless `apply`), else unmapped. */
export function mergeUserSuggestion(existing: UserPair[], aUsers: RemoteUser[], suggestion: UserSuggestion, apply = true): UserPair[] {
  const chosen = new Map(existing.map((p) => [p.a, p]));
  const suggested = new Map(suggestion.pairs.map((p) => [handleOf(p.a), { b: handleOf(p.b), reason: p.reason }]));
  const handles = aUsers.map(handleOf);
  const rows: UserPair[] = handles.map((a) => {
    const own = chosen.get(a);
    if (own && own.b !== "") return own;
    const hint = suggested.get(a);
    if (!hint) return { a, b: "" };
    return apply ? { a, b: hint.b, reason: hint.reason } : { a, b: "", reason: hint.reason, suggested: hint.b };
  });
  const listed = new Set(handles);
  return [...rows, ...existing.filter((p) => !listed.has(p.a))];
}

// --- validation ------------------------------------------------------------------------------

/**
 * What is wrong in step `step` (index into STEPS), keyed by the form path the message belongs
 * next to ("sideA.container", "types.0.bType", "fields.3.bField", "start.since", "name").
 * Empty: the step may be left. The API validates again; this catches what a person can fix here.
 */
export function validateStep(step: number, form: FormState): Errors {
  const errors: Errors = {};
  if (step === 0) {
    for (const [key, side] of [["sideA", form.sideA], ["sideB", form.sideB]] as const) {
      if (!side.connectionId) errors[`${key}.connectionId`] = "Choose a connection";
      else if (!side.container) errors[`${key}.container`] = "Choose a project";
    }
    if (form.sideA.connectionId && form.sideA.connectionId === form.sideB.connectionId && form.sideA.container
        && form.sideA.container === form.sideB.container) {
      errors["sideB.container"] = "Side B is the same project as side A; choose another";
    }
  } else if (step === 1) {
    if (form.types.length === 0) errors.types = "Map at least one item type";
    form.types.forEach((t, i) => {
      if (!t.aType) errors[`types.${i}.aType`] = "Choose a side A type";
      if (!t.bType) errors[`types.${i}.bType`] = "Choose a side B type";
    });
  } else if (step === 2) {
    const active = form.fields.map((r, i) => [r, i] as const).filter(([r]) => r.direction !== "none");
    for (const [row, i] of active) {
      if (!row.bField) errors[`fields.${i}.bField`] = "Choose a side B field, or set the direction to Not synced";
    }
    const seen = new Map<string, number>();
    for (const [row, i] of active) {
      if (!row.bField) continue;
      const first = seen.get(row.bField);
      if (first !== undefined) errors[`fields.${i}.bField`] = `Side B field ${row.bField} is mapped twice (also row ${first + 1})`;
      else seen.set(row.bField, i);
    }
    if (active.length === 0) errors.fields = "Sync at least one field";
  } else if (step === 4) {
    if (form.start.mode === "since") {
      if (!form.start.since) errors["start.since"] = "Give the date to start from";
      else if (Number.isNaN(Date.parse(sinceTimestamp(form.start.since)))) errors["start.since"] = "Not a date";
    }
    if (!(form.intervalSeconds >= 5)) errors.intervalSeconds = "At least 5 seconds";
    if (form.attachments.enabled && !(form.attachments.maxMegabytes > 0)) errors["attachments.maxMegabytes"] = "More than 0 MB";
  } else if (step === 5) {
    if (!form.name.trim()) errors.name = "Give the integration a name";
    else if (form.name.trim().length > 100) errors.name = "At most 100 characters";
  }
  return errors;
}

// Placing API errors lives in ./apiErrors, the edit diff in ./diff, reverse choices in
// ./reverseMap (kept apart for size).
export { formPathOf, stepOf } from "./apiErrors";
export { directionText, specDiff, type Change } from "./diff";
export { mergeReverseSuggestion, reverseChoice, sharedTargets } from "./reverseMap";
