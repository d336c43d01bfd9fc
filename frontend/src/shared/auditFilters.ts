/**
 * The audit log's filters as the API takes them (GET /api/v1/audit: action, actor, target),
 * and how an entry's details read on one line.
 */

export interface AuditFilters {
  action: string;
  actor: string;
  target: string;
}

export const NO_FILTERS: AuditFilters = { action: "", actor: "", target: "" };

/** Families of actions per realm; a value ending in "." matches every action that starts so. */
export const ACTION_SUGGESTIONS: Record<"console" | "tenant", string[]> = {
  console: ["login.", "login.failure", "login.lockout", "logout", "user.", "token.", "tenant.", "tenant.create", "tenant.disable", "tenant.enable", "tenant.delete"],
  tenant: ["login.", "login.failure", "login.lockout", "logout", "user.", "user.role_change", "token.", "connection.", "integration."],
};

/** The query parameters for `filters`: trimmed, empty ones left out (the API would 422 on none). */
export function auditQuery(filters: AuditFilters): Partial<AuditFilters> {
  const query: Partial<AuditFilters> = {};
  for (const key of ["action", "actor", "target"] as const) {
    const value = filters[key].trim();
    if (value) {
      query[key] = value;
    }
  }
  return query;
}

/** `{"role": "editor", "was": "viewer"}` -> `role: editor · was: viewer`; nested values as JSON. */
export function describeDetails(details: Record<string, unknown>): string {
  return Object.entries(details)
    .map(([key, value]) => `${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(" · ");
}
