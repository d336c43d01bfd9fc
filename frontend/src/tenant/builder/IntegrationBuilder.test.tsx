/**
 * The builder on screen, against an in-memory API: what a person does step by step and what
 * the appliance is sent as a result. (The real appliance is driven by the browser tests.)
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { Route } from "react-router";
import { renderAt } from "../../testing/renderAt";

type Handler = (method: string, path: string, body: unknown) => [number, unknown] | undefined;
const net = vi.hoisted(() => {
  // openapi-fetch takes fetch and Request when the client module loads; relative URLs need a base here.
  const Base = globalThis.Request;
  class RelativeRequest extends Base {
    constructor(input: RequestInfo | URL, init?: RequestInit) {
      super(typeof input === "string" && input.startsWith("/") ? `http://tandem.test${input}` : input, init);
    }
  }
  globalThis.Request = RelativeRequest as typeof Request;
  const state = { handler: null as null | Handler, calls: [] as { method: string; path: string; body: unknown }[] };
  globalThis.fetch = (async (request: Request) => {
    const url = new URL(request.url);
    const text = request.method === "GET" ? "" : await request.text();
    const body = text ? JSON.parse(text) : undefined;
    state.calls.push({ method: request.method, path: url.pathname, body });
    const answer = state.handler?.(request.method, url.pathname, body);
    const [status, data] = answer ?? [404, { error: { code: "not_found", message: `no ${url.pathname}`, details: {} } }];
    return new Response(JSON.stringify(data), { status, headers: { "Content-Type": "application/json" } });
  }) as typeof fetch;
  return state;
});

import { IntegrationBuilder } from "./IntegrationBuilder";
import type { Description, Spec } from "./logic";

const jira: Description = {
  id: "10000", key: "PROJ", name: "Project", url: "", item_types: ["Bug"],
  fields: [
    { id: "title", name: "Summary", type: "string", required: true, options: null, custom: false, writable: true },
    { id: "status", name: "Status", type: "option", required: false, options: ["To Do", "Done"], custom: false, writable: true },
  ],
  statuses: [{ name: "To Do", category: "todo" }, { name: "Done", category: "done" }], priorities: [], labels: [],
};
const gitlab: Description = {
  id: "7", key: "acme/widgets", name: "Widgets", url: "", item_types: ["issue"],
  fields: [
    { id: "title", name: "Title", type: "string", required: true, options: null, custom: false, writable: true },
    { id: "status", name: "Status", type: "option", required: false, options: ["opened", "closed"], custom: false, writable: true },
  ],
  statuses: [{ name: "opened", category: "todo" }, { name: "closed", category: "done" }], priorities: [], labels: ["bug"],
};
const connection = (id: number, name: string, kind: string) => ({
  id, name, kind, base_url: `http://${kind}.test`, options: {}, credential_fields: ["token"], account: null, last_test: null,
  used_by: [], created_at: "2026-01-01T00:00:00Z", updated_at: "2026-01-01T00:00:00Z",
});
const stored = (spec: Spec, enabled: boolean) => ({
  id: 5, name: "Jira to GitLab", enabled, paused: false, state: enabled ? "active" : "disabled", spec,
  webhook_urls: { a: "", b: "" }, open_conflicts: 0, failing_items: 0, last_run: null,
  created_at: "2026-01-01T00:00:00Z", updated_at: "2026-01-01T00:00:00Z",
});

/** The appliance as the builder sees it; `integration` is what POST/PATCH stored. */
function appliance(options: { rejectCreate?: boolean; existing?: Spec } = {}) {
  let integration: ReturnType<typeof stored> | null = options.existing ? stored(options.existing, true) : null;
  net.handler = (method, path, body) => {
    const b = body as { name?: string; spec?: Spec; enabled?: boolean };
    if (method === "GET" && path === "/api/v1/connections") return [200, { items: [connection(1, "Jira", "jira"), connection(2, "GitLab", "gitlab")], next_cursor: null }];
    if (method === "GET" && path === "/api/v1/connections/1/containers") return [200, { containers: [{ id: "10000", key: "PROJ", name: "Project", url: "" }] }];
    if (method === "GET" && path === "/api/v1/connections/2/containers") return [200, { containers: [{ id: "7", key: "acme/widgets", name: "Widgets", url: "" }] }];
    if (method === "GET" && path === "/api/v1/connections/1/containers/10000") return [200, jira];
    if (method === "GET" && path === "/api/v1/connections/2/containers/7") return [200, gitlab];
    if (method === "POST" && path === "/api/v1/integrations/suggest") {
      return [200, {
        statuses: { pairs: [{ a: "To Do", b: "opened", reason: "same_category" }, { a: "Done", b: "closed", reason: "same_category" }],
          unmapped_a: [], unmapped_b: [], value_map: {}, reverse_map: {} },
        priorities: { pairs: [], unmapped_a: [], unmapped_b: [], value_map: {}, reverse_map: {} },
        users: { pairs: [], unmapped_a: [], unmapped_b: [], map: {} },
      }];
    }
    if (method === "POST" && path === "/api/v1/integrations") {
      if (options.rejectCreate) {
        return [422, { error: { code: "validation_error", message: "spec.field_mappings.1.b_field: gitlab has no field 'status'",
          details: { fields: [{ field: "spec.field_mappings.1.b_field", message: "gitlab has no field 'status'" }] } } }];
      }
      integration = { ...stored(b.spec!, b.enabled!), name: b.name! };
      return [201, integration];
    }
    if (method === "GET" && path === "/api/v1/integrations/5") return [200, integration];
    if (method === "PATCH" && path === "/api/v1/integrations/5") {
      integration = { ...integration!, ...(b.name ? { name: b.name } : {}), ...(b.spec ? { spec: b.spec } : {}) };
      return [200, integration];
    }
    if (method === "POST" && path === "/api/v1/integrations/5/preview") {
      return [200, { creates: [{ side: "b", source: "PROJ-1", type: "issue", fields: { title: "Checkout fails" } }], updates: [], links: [], conflicts: [] }];
    }
    if (method === "POST" && path === "/api/v1/integrations/5/enable") return [200, { ...integration!, enabled: true, state: "active" }];
    return undefined;
  };
}

function show(path: string) {
  renderAt(path, [
    <Route key="new" path="/integrations/new" element={<IntegrationBuilder />} />,
    <Route key="edit" path="/integrations/:id/edit" element={<IntegrationBuilder />} />,
    <Route key="page" path="/integrations/:id" element={<p>Integration page</p>} />,
  ]);
}

const pick = async (label: string, value: string) => {
  const select = await screen.findByLabelText(label, {}, { timeout: 5000 });
  await waitFor(() => expect(Array.from((select as HTMLSelectElement).options).map((o) => o.value)).toContain(value));
  fireEvent.change(select, { target: { value } });
};
const next = () => fireEvent.click(screen.getByRole("button", { name: "Next" }));
const sent = (method: string, path: string) => net.calls.filter((c) => c.method === method && c.path === path);

async function chooseSides() {
  await pick("Side A connection", "1");
  await pick("Side A project", "10000");
  await pick("Side B connection", "2");
  await pick("Side B project", "7");
  await screen.findAllByText(/item types, 2 fields/);
}

beforeEach(() => {
  net.calls.length = 0;
});
afterEach(cleanup);

// Mantine renders a lot for jsdom; a whole walk through the six steps takes a few seconds.
vi.setConfig({ testTimeout: 20_000 });

describe("the builder", () => {
  it("builds, saves disabled, previews and enables a new integration", async () => {
    appliance();
    show("/integrations/new");
    await chooseSides();
    next();
    expect((await screen.findByLabelText("Side B type, row 1") as HTMLSelectElement).value).toBe("issue");
    next();
    await pick("Direction of Summary", "a_to_b");
    expect(screen.getAllByText("A → B (A to B only)").length).toBeGreaterThan(0);
    next();
    await waitFor(() => expect((screen.getByLabelText("Status on side B for Done") as HTMLSelectElement).value).toBe("closed"));
    next();
    fireEvent.click(screen.getByLabelText("Full history"));
    next();
    fireEvent.change(screen.getByLabelText(/Integration name/), { target: { value: "Jira to GitLab" } });
    fireEvent.click(screen.getByRole("button", { name: "Save and preview" }));

    expect(await screen.findByText(/would create 1 item/)).toBeTruthy();
    const [create] = sent("POST", "/api/v1/integrations");
    const body = create.body as { name: string; enabled: boolean; spec: Spec };
    expect(body.enabled).toBe(false);
    // The label the app gave the project travels with the spec, for display.
    expect(body.spec.side_b).toEqual({ connection_id: 2, container: "7", label: "Widgets (acme/widgets)" });
    expect(body.spec.type_mappings).toEqual([{ a_type: "Bug", b_type: "issue", a_labels: [], b_labels: ["bug"] }]);
    expect(body.spec.field_mappings?.map((m) => [m.a_field, m.direction, m.value_map])).toEqual([
      ["title", "a_to_b", null], ["status", "both", { "To Do": "opened", Done: "closed" }],
    ]);
    expect(body.spec.start).toEqual({ mode: "all", since: null });
    expect(screen.getByText("Checkout fails")).toBeTruthy();

    fireEvent.click(screen.getByRole("button", { name: "Enable" }));
    expect(await screen.findByText("Integration page")).toBeTruthy();
    expect(sent("POST", "/api/v1/integrations/5/enable")).toHaveLength(1);
  });

  it("does not leave a step with a problem, and says which", async () => {
    appliance();
    show("/integrations/new");
    await screen.findByLabelText("Side A connection");
    next();
    expect(screen.getAllByText("Choose a connection").length).toBeGreaterThan(2);
    expect(screen.getByLabelText("Side A connection")).toBeTruthy();
    expect(screen.queryByLabelText("Side A type, row 1")).toBeNull();
  });

  it("puts the API's refusal next to the field, on its step", async () => {
    appliance({ rejectCreate: true });
    show("/integrations/new");
    await chooseSides();
    for (let step = 0; step < 5; step++) next();
    fireEvent.change(await screen.findByLabelText(/Integration name/), { target: { value: "X" } });
    fireEvent.click(screen.getByRole("button", { name: "Save and preview" }));
    expect(await screen.findByText("gitlab has no field 'status'")).toBeTruthy();
    expect(screen.getByLabelText("Side B field for Status")).toBeTruthy();
    expect(sent("POST", "/api/v1/integrations/5/preview")).toHaveLength(0);
  });

  it("shows what an edit changes, previews it unsaved, and saves only the name and spec", async () => {
    const spec: Spec = {
      side_a: { connection_id: 1, container: "10000" }, side_b: { connection_id: 2, container: "7" },
      type_mappings: [{ a_type: "Bug", b_type: "issue", a_labels: [], b_labels: ["bug"] }],
      field_mappings: [{ a_field: "status", b_field: "status", direction: "both", value_map: { "To Do": "opened", Done: "closed" }, default_a: null, default_b: null }],
      conflict_policy: "hold", delete_policy: "ignore",
    };
    appliance({ existing: spec });
    show("/integrations/5/edit");
    fireEvent.click(await screen.findByRole("button", { name: /^Step 4: Values\b/ }));
    await pick("Status on side B for Done", "opened");
    // To Do and Done now share "opened": what a change to "opened" on side B becomes is chosen here.
    const reverse = await screen.findByLabelText("When side B is opened, side A becomes") as HTMLSelectElement;
    expect(reverse.value).toBe("Done");           // the API's default: the first in sorted order
    fireEvent.change(reverse, { target: { value: "To Do" } });
    fireEvent.click(screen.getByRole("button", { name: /^Step 6: Review\b/ }));
    expect(await screen.findByText("Field status: value Done")).toBeTruthy();
    expect(screen.getByText("closed")).toBeTruthy();
    expect(screen.getByText("Field status: side B opened becomes on side A")).toBeTruthy();

    fireEvent.click(screen.getByRole("button", { name: "Preview changes" }));
    expect(await screen.findByText(/would create 1 item/)).toBeTruthy();
    const [previewed] = sent("POST", "/api/v1/integrations/5/preview");
    expect((previewed.body as { spec: Spec }).spec.field_mappings?.[0]).toMatchObject({
      value_map: { "To Do": "opened", Done: "opened" }, reverse_map: { opened: "To Do" } });
    expect(sent("PATCH", "/api/v1/integrations/5")).toHaveLength(0);

    fireEvent.click(screen.getByRole("button", { name: "Save changes" }));
    expect(await screen.findByText("Integration page")).toBeTruthy();
    const [patch] = sent("PATCH", "/api/v1/integrations/5");
    expect(Object.keys(patch.body as object).sort()).toEqual(["name", "spec"]);
    expect((patch.body as { spec: Spec }).spec.field_mappings?.[0]).toMatchObject({
      value_map: { "To Do": "opened", Done: "opened" }, reverse_map: { opened: "To Do" } });
  });
});
