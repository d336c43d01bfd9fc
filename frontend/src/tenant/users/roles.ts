import type { Schemas } from "../../api/client";

export type Role = Schemas["UserOut"]["role"];

/** The roles as the panel offers them, with what each may do (the API enforces it). */
export const ROLES: { value: Role; label: string; description: string }[] = [
  { value: "viewer", label: "Viewer", description: "sees connections, integrations and their history" },
  { value: "editor", label: "Editor", description: "also adds connections and builds, runs and fixes integrations" },
  { value: "admin", label: "Admin", description: "also manages users, roles and everyone's API tokens" },
];

export const ROLE_OPTIONS = ROLES.map(({ value, label }) => ({ value, label }));
