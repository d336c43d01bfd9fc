/**
 * The integration page on screen against an in-memory API: what a viewer and an editor see
 * and what the appliance is sent when an editor resolves a conflict or retries an item.
 * (The real appliance is driven by the browser tests.)
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { Route } from "react-router";
import { renderAt } from "../../testing/renderAt";

type Handler = (method: string, path: string, body: unknown) => [number, unknown] | undefined;
const net = vi.hoisted(() => {
  // openapi-fetch takes fetch and Request when the client module loads; relative URLs need a base here.
  const Base = globalThis.Request;
  class RelativeRequest extends Base {
    constructor(input: RequestInfo | URL, init?: RequestInit) {
      super(typeof input === "string" && input.startsWith("/") ? `http://acme.tandem.test${input}` : input, init);
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
    return new Response(status === 204 ? null : JSON.stringify(data), { status, headers: { "Content-Type": "application/json" } });
  }) as typeof fetch;
  return state;
});

import { RequireSignIn } from "../../auth";
import { IntegrationPage } from "./IntegrationPage";

const at = "2026-11-28T10:00:00Z";
const run = {
  id: 3, trigger: "schedule", status: "ok", started_at: at, finished_at: at, duration_seconds: 2.5, items_seen: 6, items_created: 3,
  items_updated: 0, comments_created: 0, conflicts: 1, errors: 1, api_calls: 12, retries: 0, rate_limit_wait_seconds: 0, error: null,
  progress: null,
};
const integration = {
  id: 5, name: "Bugs", enabled: true, paused: false, state: "active",
  spec: { side_a: { connection_id: 1, container: "PROJ" }, side_b: { connection_id: 2, container: "acme/widgets" }, type_mappings: [] },
  webhook_urls: { a: "https://acme.tandem.test/api/v1/hooks/5/s?side=a", b: "https://acme.tandem.test/api/v1/hooks/5/s?side=b" },
  open_conflicts: 1, failing_items: 1, last_run: run, created_at: at, updated_at: at,
};
const overview = {
  id: 5, name: "Bugs", state: "active", current_run: null, last_run: run, next_run_at: null, last_success_at: at, lag_seconds: 42,
  links: { total: 3, active: 2, conflict: 1, error: 0, deleted: 0 }, open_conflicts: 1, failing_items: 1, pending_webhooks: 0,
  last_24h: { runs: 1, failed_runs: 0, items_created: 3, items_updated: 0, comments_created: 0, errors: 1, api_calls: 12, rate_limit_wait_seconds: 0 },
};
const conflict = {
  id: 11, link_id: 2, a_key: "PROJ-2", b_key: "#6", field: "labels", a_value: ["ui", "safari"], b_value: ["ui", "checkout"],
  base_value: ["ui"], state: "open", resolution: null, resolved_value: null, resolved_by: null, created_at: at, resolved_at: null, applied_at: null,
};
const failed = {
  side: "b", item_id: "9", item_key: "#9", attempts: 4, error: "GitLab refused the label", first_failed_at: at, last_failed_at: at,
  next_attempt_at: "2099-01-01T00:00:00Z",
};
const connection = (id: number, name: string, kind: string) => ({ id, name, kind });

function appliance(role: "viewer" | "editor", status: object = overview) {
  net.handler = (method, path, body) => {
    const get = method === "GET";
    if (get && path === "/api/v1/me") {
      return [200, { id: 1, email: `${role}@acme.example`, display_name: "", role, realm: "tenant", tenant: "acme", csrf_token: "t" }];
    }
    if (get && path === "/api/v1/connections") return [200, { items: [connection(1, "Jira DC", "jira"), connection(2, "GitLab", "gitlab")], next_cursor: null }];
    if (get && path === "/api/v1/integrations/5") return [200, integration];
    if (get && path === "/api/v1/integrations/5/overview") return [200, status];
    if (get && path === "/api/v1/integrations/5/conflicts") return [200, { items: [conflict], next_cursor: null }];
    if (get && path === "/api/v1/integrations/5/errors") return [200, { items: [failed], next_cursor: null }];
    if (method === "POST" && path === "/api/v1/integrations/5/conflicts/11/resolve") {
      return [200, { ...conflict, state: "resolved", resolution: "value", resolved_value: (body as { value: unknown }).value }];
    }
    if (method === "POST" && path === "/api/v1/integrations/5/items/retry") return [200, { ...failed, next_attempt_at: at }];
    return undefined;
  };
}

function show(path: string) {
  renderAt(path, <Route path="/integrations/:id/*" element={<IntegrationPage />} />,
    (routes) => <RequireSignIn>{routes}</RequireSignIn>);
}

const sent = (method: string, path: string) => net.calls.filter((c) => c.method === method && c.path === path).map((c) => c.body);

beforeEach(() => {
  net.calls.length = 0;
});
afterEach(cleanup);
vi.setConfig({ testTimeout: 20_000 });

describe("a viewer", () => {
  it("sees the conflict's values and the failed items, and no control that changes anything", async () => {
    appliance("viewer");
    show("/integrations/5/conflicts");
    const card = await screen.findByRole("article", { name: "labels of PROJ-2 ⇄ #6" });
    expect(within(card).getByText("ui, safari")).toBeTruthy();
    expect(within(card).getByText("ui, checkout")).toBeTruthy();
    expect(screen.getByRole("tab", { name: /Conflicts/, selected: true })).toBeTruthy();
    for (const name of ["Sync now", "Pause", "Edit", "Delete", "Resolve"]) {
      expect(screen.queryByRole("button", { name: new RegExp(`^${name}`) }), name).toBeNull();
    }
    expect(screen.queryByRole("link", { name: "Edit" })).toBeNull();
    fireEvent.click(screen.getByRole("tab", { name: /Failed items/ }));
    expect(await screen.findByText("GitLab refused the label")).toBeTruthy();
    expect(screen.queryByRole("button", { name: /Retry/ })).toBeNull();
  });
});

describe("an editor", () => {
  it("resolves a list field with a typed merged value, sent as a list", async () => {
    appliance("editor");
    show("/integrations/5/conflicts");
    const card = await screen.findByRole("article", { name: "labels of PROJ-2 ⇄ #6" });
    expect(screen.getByRole("button", { name: "Sync now" })).toBeTruthy();
    fireEvent.click(within(card).getByRole("button", { name: "Resolve labels of PROJ-2" }));
    expect(await within(card).findByText("Choose which value wins")).toBeTruthy();
    expect(sent("POST", "/api/v1/integrations/5/conflicts/11/resolve")).toEqual([]);
    fireEvent.click(within(card).getByRole("radio", { name: "Type my own value" }));
    fireEvent.change(within(card).getByRole("textbox", { name: "Merged value" }), { target: { value: "ui, safari, checkout" } });
    fireEvent.click(within(card).getByRole("button", { name: "Resolve labels of PROJ-2" }));
    await waitFor(() => expect(sent("POST", "/api/v1/integrations/5/conflicts/11/resolve")).toEqual([{ value: ["ui", "safari", "checkout"] }]));
  });

  it("keeps one side's value by sending only the side", async () => {
    appliance("editor");
    show("/integrations/5/conflicts");
    const card = await screen.findByRole("article", { name: "labels of PROJ-2 ⇄ #6" });
    fireEvent.click(within(card).getByRole("radio", { name: "GitLab's value" }));
    fireEvent.click(within(card).getByRole("button", { name: "Resolve labels of PROJ-2" }));
    await waitFor(() => expect(sent("POST", "/api/v1/integrations/5/conflicts/11/resolve")).toEqual([{ side: "b" }]));
  });

  it("retries a failed item", async () => {
    appliance("editor");
    show("/integrations/5/failed");
    fireEvent.click(await screen.findByRole("button", { name: "Retry #9" }));
    await waitFor(() => expect(sent("POST", "/api/v1/integrations/5/items/retry")).toEqual([{ side: "b", item_id: "9" }]));
  });
});

describe("a run that polls a side", () => {
  const polling = (progress: object) => ({
    ...overview,
    current_run: { ...run, id: 4, status: "running", finished_at: null, duration_seconds: null, items_seen: 1200, items_created: 40, progress },
  });
  const poll = { side: "a", started_at: at, items_done: 1200, items_total: 5000, items_per_second: 10, seconds_left: 190 };

  it("shows how far the poll has got when the app counted its items", async () => {
    appliance("viewer", polling(poll));
    show("/integrations/5/conflicts");
    const words = "Side A (Jira · PROJ): 1,200 of about 5,000 changed items · about 3 min left";
    expect(await screen.findByText(words)).toBeTruthy();
    const bar = screen.getByRole("progressbar", { name: "Run in progress" });
    expect(bar.getAttribute("aria-valuenow")).toBe("24");
    expect(bar.getAttribute("aria-valuemin")).toBe("0");
    expect(bar.getAttribute("aria-valuemax")).toBe("100");
    expect(bar.getAttribute("aria-valuetext")).toBe(`24%: ${words}`);
  });

  it("shows a bar that only says it is going when the app gave no total", async () => {
    appliance("viewer", polling({ ...poll, items_total: null, seconds_left: null }));
    show("/integrations/5/conflicts");
    const words = "Side A (Jira · PROJ): 1,200 changed items so far";
    expect(await screen.findByText(words)).toBeTruthy();
    const bar = screen.getByRole("progressbar", { name: "Run in progress" });
    expect(bar.hasAttribute("aria-valuenow")).toBe(false);
    expect(bar.getAttribute("aria-valuetext")).toBe(words);
  });
});
