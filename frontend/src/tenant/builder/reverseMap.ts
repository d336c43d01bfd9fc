/**
 * Reverse choices of a value map: where several side A values map to one side B value ("To Do"
 * and "Backlog" -> "opened"), which A value a change on side B becomes (the spec's
 * `reverse_map`, B value -> A value). Without a choice the API takes the first of those A values
 * in sorted order; a suggestion proposes one by status category. Pure; re-exported by ./logic.
 */
import type { FieldRow, ValuePair } from "./logic";

/**
 * B values that more than one A value maps to, each with those A values in sorted order (the
 * order the API picks its default from: code-point order, as Python's sorted()).
 */
export function sharedTargets(pairs: ValuePair[]): [string, string[]][] {
  const byB = new Map<string, string[]>();
  for (const p of pairs) if (p.b !== "") byB.set(p.b, [...(byB.get(p.b) ?? []), p.a]);
  return [...byB].filter(([, as]) => as.length > 1).map(([b, as]) => [b, [...as].sort()]);
}

/** The A value a change to `b` on side B becomes: the row's choice when it is one of `as`, else the first of `as` (the API's rule). */
export function reverseChoice(row: FieldRow, b: string, as: string[]): string {
  const chosen = row.reverse?.[b];
  return chosen !== undefined && as.includes(chosen) ? chosen : as[0];
}

/**
 * The row's reverse_map as the API takes it: choices for B values the value map produces only
 * when they name one of the A values mapping there (a choice left behind by an edited pair is
 * dropped); entries for B values outside the map (from a stored spec) are kept.
 */
export function reverseMapOf(row: FieldRow): Record<string, string> {
  const sources = new Map<string, string[]>();
  for (const p of row.values) if (p.b !== "") sources.set(p.b, [...(sources.get(p.b) ?? []), p.a]);
  return Object.fromEntries(Object.entries(row.reverse ?? {}).filter(([b, a]) => !sources.has(b) || sources.get(b)!.includes(a)));
}

/**
 * Reverse choices (B value -> A value) after a suggestion: a person's (or the stored) choices
 * stay; the suggested ones for other B values are taken (`apply`, on a new integration) or kept
 * as hints (`reverseSuggested`, when editing, so that visiting the step changes nothing stored).
 */
export function mergeReverseSuggestion(existing: Record<string, string> | undefined, suggested: Record<string, string>,
  apply = true): Pick<FieldRow, "reverse" | "reverseSuggested"> {
  const reverse = { ...(existing ?? {}) };
  const hints: Record<string, string> = {};
  for (const [b, a] of Object.entries(suggested)) {
    if (b in reverse) continue;
    if (apply) reverse[b] = a;
    else hints[b] = a;
  }
  return { reverse, reverseSuggested: apply ? undefined : hints };
}
