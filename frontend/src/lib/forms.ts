import { ApiError } from "../api/client";

/**
 * Map an API validation error onto a Mantine form's fields. `prefix` is stripped from the
 * API's field paths ("body." or a nested model); `aliases` maps API names to form paths.
 * Returns the problems no field took (to show above the form), or null when all were placed.
 */
export function applyApiErrors(
  error: unknown,
  setFieldError: (path: string, message: string) => void,
  known: readonly string[],
  aliases: Record<string, string> = {},
): string | null {
  if (!(error instanceof ApiError)) {
    return error instanceof Error ? error.message : String(error);
  }
  const rest: string[] = [];
  for (const problem of error.fields) {
    const path = aliases[problem.field] ?? problem.field.replace(/^body\./, "");
    if (known.includes(path)) {
      setFieldError(path, problem.message);
    } else {
      rest.push(`${problem.field}: ${problem.message}`);
    }
  }
  if (error.fields.length === 0) {
    return error.message;
  }
  return rest.length ? rest.join("; ") : null;
}

/** Whether the form itself shows an API error (a 409 clash or problems placed on its fields),
 * so that no alert above the form repeats it. */
export function shownOnForm(error: unknown): boolean {
  return error instanceof ApiError && (error.status === 409 || error.fields.length > 0);
}
