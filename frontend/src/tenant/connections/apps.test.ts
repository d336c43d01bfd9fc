import { describe, expect, it } from "vitest";
import type { Schemas } from "../../api/client";
import { appOf, createBody, credentialProblems, EMPTY_CREDENTIAL, fieldAliases, methodOf, rotateBody, settingsPatch, type ConnectionValues } from "./apps";

function values(over: Partial<ConnectionValues>): ConnectionValues {
  return { app: "jira-cloud", name: " Jira prod ", base_url: " https://acme.atlassian.net ", status_scope: "status", method: "api_token", ...EMPTY_CREDENTIAL, ...over };
}

function connection(over: Partial<Schemas["ConnectionOut"]>): Schemas["ConnectionOut"] {
  return {
    id: 7, name: "Jira prod", kind: "jira", base_url: "https://acme.atlassian.net", options: {}, credential_fields: [], account: null,
    last_test: null, used_by: [], created_at: "2026-01-01T00:00:00Z", updated_at: "2026-01-01T00:00:00Z", ...over,
  };
}

describe("createBody", () => {
  it("sends Jira Cloud's e-mail and API token, and nothing else, as the auth", () => {
    const body = createBody(values({ email: " ann@example.com ", api_token: "s3cret ", token: "left over" }));
    expect(body).toEqual({
      kind: "jira", name: "Jira prod", base_url: "https://acme.atlassian.net", flavor: "cloud",
      auth: { email: "ann@example.com", api_token: "s3cret ", token: null, username: null, password: null },
    });
  });

  it("sends a Data Center personal access token as server flavour", () => {
    const body = createBody(values({ app: "jira-dc", method: "pat", token: "pat-1" }));
    expect(body).toMatchObject({ kind: "jira", flavor: "server", auth: { token: "pat-1", email: null, username: null } });
  });

  it("sends Data Center user name and password", () => {
    const body = createBody(values({ app: "jira-dc", method: "basic", username: "ann", password: "pw" }));
    expect(body).toMatchObject({ auth: { username: "ann", password: "pw", token: null } });
  });

  it("sends GitLab's token and status scope at the top level", () => {
    const body = createBody(values({ app: "gitlab", method: "gitlab_token", base_url: "https://gitlab.example.com", token: " glpat-x ", status_scope: "" }));
    expect(body).toEqual({ kind: "gitlab", name: "Jira prod", base_url: "https://gitlab.example.com", token: "glpat-x", status_scope: "" });
  });
});

describe("credentialProblems", () => {
  it("names each empty input of the chosen method only", () => {
    expect(credentialProblems({ method: "api_token", ...EMPTY_CREDENTIAL, email: "a@b.c" })).toEqual({ api_token: "Enter the API token" });
    expect(credentialProblems({ method: "basic", ...EMPTY_CREDENTIAL, token: "ignored" })).toEqual({ username: "Enter the user name", password: "Enter the password" });
    expect(credentialProblems({ method: "gitlab_token", ...EMPTY_CREDENTIAL, token: "t" })).toEqual({});
  });
});

describe("appOf and methodOf", () => {
  it.each([
    [{ kind: "gitlab", options: {}, base_url: "https://gitlab.example.com" }, "gitlab"],
    [{ kind: "jira", options: { flavor: "cloud" }, base_url: "https://jira.example.com" }, "jira-cloud"],
    [{ kind: "jira", options: { flavor: "server" }, base_url: "https://x.atlassian.net" }, "jira-dc"],
    [{ kind: "jira", options: {}, base_url: "https://x.atlassian.net" }, "jira-cloud"],
    [{ kind: "jira", options: {}, base_url: "http://127.0.0.1:8080" }, "jira-dc"],
  ] as const)("%j is %s", (stored, app) => {
    expect(appOf(stored)).toBe(app);
  });

  it("reads the method from the credential's fields", () => {
    expect(methodOf({ kind: "jira", credential_fields: ["api_token", "email"] }, "jira-cloud")).toBe("api_token");
    expect(methodOf({ kind: "jira", credential_fields: ["password", "username"] }, "jira-dc")).toBe("basic");
    expect(methodOf({ kind: "jira", credential_fields: ["token"] }, "jira-dc")).toBe("pat");
    expect(methodOf({ kind: "jira", credential_fields: [] }, "jira-dc")).toBe("pat");
    expect(methodOf({ kind: "gitlab", credential_fields: ["token"] }, "gitlab")).toBe("gitlab_token");
  });
});

describe("settingsPatch", () => {
  it("is empty when nothing changed (a trailing slash is no change)", () => {
    expect(settingsPatch(connection({ options: { flavor: "cloud" } }), values({ name: "Jira prod", base_url: "https://acme.atlassian.net/" }))).toEqual({});
  });

  it("sends only what changed", () => {
    expect(settingsPatch(connection({ options: { flavor: "cloud" } }), values({ name: "Jira", app: "jira-dc" }))).toEqual({ name: "Jira", flavor: "server" });
  });

  it("pins an auto-detected Jira edition once saved", () => {
    expect(settingsPatch(connection({}), values({ name: "Jira prod" }))).toEqual({ flavor: "cloud" });
  });

  it("compares GitLab's status scope with the API's default", () => {
    const gitlab = connection({ kind: "gitlab", base_url: "https://gitlab.example.com" });
    const same = { app: "gitlab" as const, name: "Jira prod", base_url: "https://gitlab.example.com" };
    expect(settingsPatch(gitlab, values({ ...same, status_scope: "status" }))).toEqual({});
    expect(settingsPatch(gitlab, values({ ...same, status_scope: "" }))).toEqual({ status_scope: "" });
  });
});

describe("rotateBody and fieldAliases", () => {
  it("rotates Jira with auth and GitLab with token", () => {
    expect(rotateBody("gitlab", { method: "gitlab_token", ...EMPTY_CREDENTIAL, token: " t2 " })).toEqual({ token: "t2" });
    expect(rotateBody("jira", { method: "pat", ...EMPTY_CREDENTIAL, token: "t3" })).toEqual({ auth: { token: "t3", email: null, api_token: null, username: null, password: null } });
  });

  it("puts the API's auth errors on the inputs", () => {
    expect(fieldAliases("basic")).toMatchObject({ auth: "username", "auth.password": "password" });
    expect(fieldAliases("api_token").auth).toBe("email");
  });
});
