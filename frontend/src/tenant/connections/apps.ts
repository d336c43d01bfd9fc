/**
 * What the connection forms know about each app: the choices a person makes (app, auth
 * method) and how they become the API's bodies (appliance/web/endpoints/connections.py:
 * JiraConnectionCreate, GitLabConnectionCreate, ConnectionPatch, JiraAuth).
 */
import type { Schemas } from "../../api/client";

export type App = "jira-cloud" | "jira-dc" | "gitlab";
export type AuthMethod = "api_token" | "pat" | "basic" | "gitlab_token";
export type Connection = Schemas["ConnectionOut"];

export interface AppInfo {
  label: string;
  kind: Connection["kind"];
  urlExample: string;
  methods: { value: AuthMethod; label: string }[];
}

export const APPS: Record<App, AppInfo> = {
  "jira-cloud": {
    label: "Jira Cloud",
    kind: "jira",
    urlExample: "https://acme.atlassian.net",
    methods: [{ value: "api_token", label: "E-mail and API token" }],
  },
  "jira-dc": {
    label: "Jira Data Center",
    kind: "jira",
    urlExample: "https://jira.example.com",
    methods: [
      { value: "pat", label: "Personal access token" },
      { value: "basic", label: "User name and password" },
    ],
  },
  gitlab: {
    label: "GitLab",
    kind: "gitlab",
    urlExample: "https://gitlab.example.com",
    methods: [{ value: "gitlab_token", label: "Access token (api scope)" }],
  },
};

/** The credential inputs of each method, as the form names them. */
export const CREDENTIAL_FIELDS: Record<AuthMethod, { field: CredentialField; label: string; secret: boolean; description?: string }[]> = {
  api_token: [
    { field: "email", label: "Account e-mail", secret: false },
    { field: "api_token", label: "API token", secret: true, description: "Made at id.atlassian.com → Security → API tokens." },
  ],
  pat: [{ field: "token", label: "Personal access token", secret: true, description: "Profile → Personal Access Tokens in Jira." }],
  basic: [
    { field: "username", label: "User name", secret: false },
    { field: "password", label: "Password", secret: true },
  ],
  gitlab_token: [{ field: "token", label: "Access token", secret: true, description: "A personal, group or project access token with the api scope." }],
};

export type CredentialField = "email" | "api_token" | "token" | "username" | "password";

export interface CredentialValues {
  method: AuthMethod;
  email: string;
  api_token: string;
  token: string;
  username: string;
  password: string;
}

export interface ConnectionValues extends CredentialValues {
  app: App;
  name: string;
  base_url: string;
  status_scope: string;
}

export const EMPTY_CREDENTIAL: Omit<CredentialValues, "method"> = { email: "", api_token: "", token: "", username: "", password: "" };

/** Which app a stored connection is: Jira's flavour, or a guess from its address when auto-detected. */
export function appOf(connection: Pick<Connection, "kind" | "options" | "base_url">): App {
  if (connection.kind === "gitlab") {
    return "gitlab";
  }
  const flavor = connection.options.flavor;
  if (flavor === "cloud") {
    return "jira-cloud";
  }
  if (flavor === "server") {
    return "jira-dc";
  }
  return /\.atlassian\.net(?:[:/]|$)/i.test(connection.base_url) ? "jira-cloud" : "jira-dc";
}

/** The auth method a stored credential was made with, from the fields it has set. */
export function methodOf(connection: Pick<Connection, "kind" | "credential_fields">, app: App): AuthMethod {
  if (connection.kind === "gitlab") {
    return "gitlab_token";
  }
  const fields = connection.credential_fields;
  if (fields.includes("api_token")) {
    return "api_token";
  }
  if (fields.includes("username")) {
    return "basic";
  }
  if (fields.includes("token")) {
    return "pat";
  }
  return APPS[app].methods[0].value;
}

/** A problem with each credential input that is empty; the API words the rest. */
export function credentialProblems(values: CredentialValues): Partial<Record<CredentialField, string>> {
  const problems: Partial<Record<CredentialField, string>> = {};
  for (const { field, label } of CREDENTIAL_FIELDS[values.method]) {
    if (!values[field].trim()) {
      problems[field] = `Enter the ${/^[A-Z][a-z]/.test(label) ? label[0].toLowerCase() + label.slice(1) : label}`;
    }
  }
  return problems;
}

/** The JiraAuth of a Jira method: exactly the method's fields, the rest null (the API wants one shape). */
export function jiraAuth(values: CredentialValues): Schemas["JiraAuth"] {
  const auth: Schemas["JiraAuth"] = { email: null, api_token: null, token: null, username: null, password: null };
  for (const { field } of CREDENTIAL_FIELDS[values.method]) {
    // Secrets are taken as typed (a password may end in a space); names are trimmed.
    auth[field] = field === "email" || field === "username" ? values[field].trim() : values[field];
  }
  return auth;
}

/** POST /api/v1/connections's body. */
export function createBody(values: ConnectionValues): Schemas["ConnectionCreate"] {
  const common = { name: values.name.trim(), base_url: values.base_url.trim() };
  if (values.app === "gitlab") {
    return { kind: "gitlab", ...common, token: values.token.trim(), status_scope: values.status_scope.trim() };
  }
  return { kind: "jira", ...common, flavor: values.app === "jira-cloud" ? "cloud" : "server", auth: jiraAuth(values) };
}

/**
 * PATCH's body rotating the credential: `auth` for Jira, `token` for GitLab. The API
 * changes only the fields sent (a null name would be refused), hence a partial body.
 */
export function rotateBody(kind: Connection["kind"], values: CredentialValues): Partial<Schemas["ConnectionPatch"]> {
  return kind === "gitlab" ? { token: values.token.trim() } : { auth: jiraAuth(values) };
}

/** PATCH's body for the settings that differ from `connection` (nothing when none does). */
export function settingsPatch(connection: Connection, values: Pick<ConnectionValues, "app" | "name" | "base_url" | "status_scope">): Partial<Schemas["ConnectionPatch"]> {
  const patch: Partial<Schemas["ConnectionPatch"]> = {};
  if (values.name.trim() !== connection.name) {
    patch.name = values.name.trim();
  }
  if (values.base_url.trim().replace(/\/+$/, "") !== connection.base_url) {
    patch.base_url = values.base_url.trim();
  }
  if (connection.kind === "jira") {
    const flavor = values.app === "jira-cloud" ? "cloud" : "server";
    if (connection.options.flavor !== flavor) {
      patch.flavor = flavor;
    }
  } else {
    const scope = values.status_scope.trim();
    if (scope !== statusScopeOf(connection)) {
      patch.status_scope = scope;
    }
  }
  return patch;
}

/** GitLab's scoped-label prefix of statuses; the API's default when none was set. */
export const DEFAULT_STATUS_SCOPE = "status";

export function statusScopeOf(connection: Pick<Connection, "options">): string {
  const scope = connection.options.status_scope;
  return typeof scope === "string" ? scope : DEFAULT_STATUS_SCOPE;
}

/** Where the API's field paths land in these forms ("auth.email" -> "email"; "auth" on the first credential input). */
export function fieldAliases(method: AuthMethod): Record<string, string> {
  return {
    "auth.email": "email",
    "auth.api_token": "api_token",
    "auth.token": "token",
    "auth.username": "username",
    "auth.password": "password",
    auth: CREDENTIAL_FIELDS[method][0].field,
  };
}
