/**
 * Where the API's validation errors belong in the builder: a field path of the API
 * ("spec.field_mappings.1.b_field") as a form path of ./logic's FormState ("fields.4.bField"),
 * and the step that shows it. Pure; re-exported by ./logic.
 */

/** The step a form path belongs to (for jumping to the first error). */
export function stepOf(path: string): number {
  const head = path.split(".")[0];
  const steps: Record<string, number> = {
    sideA: 0, sideB: 0, types: 1, fields: 2, values: 3, users: 3, start: 4, intervalSeconds: 4, attachments: 4,
    comments: 4, filters: 4, conflictPolicy: 4, deletePolicy: 4, name: 5,
  };
  return steps[head] ?? 5;
}

/**
 * The form path of an API validation error's field ("body.spec.field_mappings.1.b_field" ->
 * "fields.<row>.bField"), given the rows formToSpec reported; null when no field of the form matches.
 */
export function formPathOf(apiField: string, fieldRows: number[]): string | null {
  const parts = apiField.replace(/^body\./, "").split(".");
  if (parts[0] === "name") return "name";
  if (parts[0] !== "spec") return null;
  const [, section, second, third] = parts;
  const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  if (section === "side_a" || section === "side_b") {
    return `${section === "side_a" ? "sideA" : "sideB"}.${second === "connection_id" ? "connectionId" : "container"}`;
  }
  if (section === "type_mappings" && second !== undefined) return third ? `types.${second}.${camel(third)}` : `types.${second}.aType`;
  if (section === "type_mappings") return "types";
  if (section === "field_mappings" && second !== undefined) {
    const row = fieldRows[Number(second)];
    if (row === undefined) return "fields";
    return `fields.${row}.${third === "a_field" ? "aField" : "bField"}`;
  }
  if (section === "field_mappings") return "fields";
  if (section === "start") return "start.since";
  if (section === "schedule") return "intervalSeconds";
  if (section === "users") return "users.match";
  if (section === "attachments") return "attachments.maxMegabytes";
  if (section === "filters") return `filters.${second ?? "a"}`;
  return null;
}
