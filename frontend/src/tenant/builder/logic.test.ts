import { describe, expect, it } from "vitest";
import {
  applyHints, comparable, emptyForm, formPathOf, formToSpec, mergeFieldRows, mergeReverseSuggestion, mergeUserSuggestion,
  mergeValueSuggestion, reverseChoice, sharedTargets, specDiff, specToForm, stepOf, suggestFieldRows, suggestTypeRows,
  unmappedValues, validateStep, valueDomain,
  type Description, type FieldRow, type FormState, type Spec,
} from "./logic";

const jira: Description = {
  id: "10000", key: "PROJ", name: "Project", url: "http://jira/browse/PROJ",
  item_types: ["Bug", "Task", "Story"],
  fields: [
    { id: "title", name: "Summary", type: "string", required: true, options: null, custom: false, writable: true },
    { id: "status", name: "Status", type: "option", required: false, options: ["To Do", "In Progress", "Done"], custom: false, writable: true },
    { id: "priority", name: "Priority", type: "option", required: false, options: null, custom: false, writable: true },
    { id: "reporter", name: "Reporter", type: "user", required: false, options: null, custom: false, writable: true },
    { id: "customfield_10010", name: "Team", type: "string", required: false, options: null, custom: true, writable: true },
  ],
  statuses: [{ name: "To Do", category: "todo" }, { name: "In Progress", category: "in_progress" }, { name: "Done", category: "done" }],
  priorities: ["High", "Low"],
  labels: [],
};

const gitlab: Description = {
  id: "7", key: "group/app", name: "App", url: "http://gitlab/group/app",
  item_types: ["issue", "incident", "task"],
  fields: [
    { id: "title", name: "Title", type: "string", required: true, options: null, custom: false, writable: true },
    { id: "status", name: "Status", type: "option", required: false, options: ["opened", "closed"], custom: false, writable: true },
    { id: "labels", name: "Labels", type: "labels", required: false, options: ["priority::high", "frontend"], custom: false, writable: true },
    { id: "reporter", name: "Author", type: "user", required: false, options: null, custom: false, writable: false },
  ],
  statuses: [{ name: "opened", category: "todo" }, { name: "closed", category: "done" }],
  priorities: [],
  labels: ["priority::high", "frontend"],
};

function filled(): FormState {
  const form = emptyForm();
  form.name = "Jira to GitLab";
  form.sideA = { connectionId: "1", container: "10000" };
  form.sideB = { connectionId: "2", container: "7" };
  form.types = [{ aType: "Bug", bType: "issue", aLabels: [], bLabels: ["bug"] }];
  form.fields = [
    { aField: "title", bField: "title", direction: "both", values: [], defaultA: "", defaultB: "" },
    { aField: "status", bField: "status", direction: "a_to_b", values: [{ a: "To Do", b: "opened" }, { a: "Done", b: "" }], defaultA: "To Do", defaultB: "" },
    { aField: "customfield_10010", bField: "", direction: "none", values: [], defaultA: "", defaultB: "" },
    { aField: "priority", bField: "labels", direction: "none", values: [{ a: "High", b: "p1" }], defaultA: "", defaultB: "" },
  ];
  form.users.pairs = [{ a: "ann@example.com", b: "ann" }, { a: "bob@example.com", b: "" }];
  form.users.match = "login";
  return form;
}

describe("spec <-> form", () => {
  it("leaves out rows that are not synced and value pairs without a B value", () => {
    const { spec, fieldRows } = formToSpec(filled());
    expect(spec.field_mappings?.map((m) => m.a_field)).toEqual(["title", "status"]);
    expect(fieldRows).toEqual([0, 1]);
    expect(spec.field_mappings?.[0].value_map).toBeNull();
    expect(spec.field_mappings?.[1]).toMatchObject({ direction: "a_to_b", value_map: { "To Do": "opened" }, default_a: "To Do", default_b: null });
    expect(spec.users).toEqual({ match: "login", map: { "ann@example.com": "ann" }, default_a: null, default_b: null });
    expect(spec.side_a).toEqual({ connection_id: 1, container: "10000" });
    expect(spec.start).toEqual({ mode: "new", since: null });
  });

  it("keeps the sides' labels (display only) through a round trip, and leaves them out when unknown", () => {
    const form = filled();
    form.sideB = { connectionId: "2", container: "7", label: "Widgets (acme/widgets)" };
    const { spec } = formToSpec(form);
    expect(spec.side_b).toEqual({ connection_id: 2, container: "7", label: "Widgets (acme/widgets)" });
    expect(specToForm(spec, "x").sideB.label).toBe("Widgets (acme/widgets)");
    expect(formToSpec(filled()).spec.side_a).not.toHaveProperty("label");
  });

  it("turns a start date into a UTC timestamp, only when the mode is 'since'", () => {
    const form = filled();
    form.start = { mode: "since", since: "2026-03-01" };
    expect(formToSpec(form).spec.start).toEqual({ mode: "since", since: "2026-03-01T00:00:00Z" });
    form.start.mode = "all";
    expect(formToSpec(form).spec.start).toEqual({ mode: "all", since: null });
  });

  it("round-trips a stored spec through the form unchanged", () => {
    const stored: Spec = formToSpec(filled()).spec;
    stored.attachments = { enabled: true, max_bytes: 5 * 1024 * 1024 };
    stored.start = { mode: "since", since: "2026-01-02T03:04:05+01:00" };
    stored.filters = { a: { types: ["Bug"], labels: ["x"] }, b: { types: [], labels: [] } };
    const again = formToSpec(specToForm(stored, "n")).spec;
    expect(again).toEqual(stored);
    expect(specDiff(stored, again)).toEqual([]);
  });
});

describe("suggestions from what the apps describe", () => {
  it("maps a type by name, else to B's first type with a label naming it", () => {
    expect(suggestTypeRows(["Bug", "Task"], gitlab.item_types)).toEqual([
      { aType: "Bug", bType: "issue", aLabels: [], bLabels: ["bug"] },
      { aType: "Task", bType: "task", aLabels: [], bLabels: [] },
    ]);
    expect(suggestTypeRows(["Bug"], [])).toEqual([]);
  });

  it("pairs fields by key and syncs one way when one side cannot write", () => {
    const rows = suggestFieldRows(jira, gitlab);
    const by = Object.fromEntries(rows.map((r) => [r.aField, [r.bField, r.direction]]));
    expect(by).toEqual({
      title: ["title", "both"], status: ["status", "both"], priority: ["", "none"],
      reporter: ["reporter", "b_to_a"], customfield_10010: ["", "none"],
    });
  });

  it("keeps a person's rows and adds new ones as not synced when editing", () => {
    const existing: FieldRow[] = [{ aField: "priority", bField: "labels", direction: "a_to_b", values: [], defaultA: "", defaultB: "" }];
    const suggested = suggestFieldRows(jira, gitlab);
    const merged = mergeFieldRows(existing, suggested, false);
    expect(merged[0]).toBe(existing[0]);
    expect(merged.map((r) => r.aField)).toEqual(["priority", "title", "status", "reporter", "customfield_10010"]);
    expect(merged.slice(1).every((r) => r.direction === "none")).toBe(true);
    const fresh = mergeFieldRows([], suggested, true);
    expect(fresh.find((r) => r.aField === "title")?.direction).toBe("both");
  });

  it("does not suggest a B field a person already maps from another A field", () => {
    const existing: FieldRow[] = [{ aField: "customfield_10010", bField: "title", direction: "both", values: [], defaultA: "", defaultB: "" }];
    const merged = mergeFieldRows(existing, suggestFieldRows(jira, gitlab), true);
    expect(merged.find((r) => r.aField === "title")).toMatchObject({ bField: "", direction: "none" });
  });

  it("knows which rows map values, and between which", () => {
    const row = (aField: string, bField: string): FieldRow => ({ aField, bField, direction: "both", values: [], defaultA: "", defaultB: "" });
    expect(valueDomain(row("status", "status"), jira, gitlab)).toEqual({ kind: "status", aValues: ["To Do", "In Progress", "Done"], bValues: ["opened", "closed"] });
    expect(valueDomain(row("priority", "labels"), jira, gitlab)).toEqual({ kind: "names", aValues: ["High", "Low"], bValues: ["priority::high", "frontend"] });
    expect(valueDomain(row("title", "title"), jira, gitlab)).toBeNull();
    expect(valueDomain(row("reporter", "reporter"), jira, gitlab)).toBeNull();
    expect(valueDomain({ ...row("status", "status"), direction: "none" }, jira, gitlab)).toBeNull();
  });

  it("fills value pairs from suggestions without overriding a person's choice", () => {
    const existing = [{ a: "Done", b: "opened" }, { a: "Retired", b: "closed" }];
    const merged = mergeValueSuggestion(existing, ["To Do", "In Progress", "Done"], {
      pairs: [{ a: "To Do", b: "opened", reason: "same_category" }, { a: "Done", b: "closed", reason: "same_category" }],
      unmapped_a: ["In Progress"], unmapped_b: [], value_map: { "To Do": "opened", Done: "closed" }, reverse_map: {},
    });
    expect(merged).toEqual([
      { a: "To Do", b: "opened", reason: "same_category" },
      { a: "In Progress", b: "" },
      { a: "Done", b: "opened" },
      { a: "Retired", b: "closed" },
    ]);
    expect(unmappedValues(merged, ["opened", "closed", "triage"])).toEqual({ a: ["In Progress"], b: ["triage"] });
  });

  it("only hints at suggestions when editing, until a person takes them", () => {
    const suggestion = {
      pairs: [{ a: "To Do", b: "opened", reason: "same_category" as const }],
      unmapped_a: [], unmapped_b: [], value_map: { "To Do": "opened" }, reverse_map: {},
    };
    const hinted = mergeValueSuggestion([{ a: "Done", b: "closed" }], ["To Do", "Done"], suggestion, false);
    expect(hinted).toEqual([{ a: "To Do", b: "", reason: "same_category", suggested: "opened" }, { a: "Done", b: "closed" }]);
    const form = filled();
    form.fields[1].values = hinted;
    // A hint is not part of the spec: visiting the step changes nothing stored.
    expect(formToSpec(form).spec.field_mappings?.[1].value_map).toEqual({ Done: "closed" });
    expect(applyHints(hinted).map((p) => [p.a, p.b])).toEqual([["To Do", "opened"], ["Done", "closed"]]);
  });

  it("pairs users by handle and keeps an explicit choice", () => {
    const ann = { id: "1", name: "Ann", email: "ann@example.com", login: null };
    const bob = { id: "2", name: "Bob", email: null, login: "bob" };
    const annB = { id: "9", name: "Ann", email: null, login: "ann" };
    const merged = mergeUserSuggestion([{ a: "bob", b: "robert" }], [ann, bob], {
      pairs: [{ a: ann, b: annB, reason: "same_name" }, { a: bob, b: annB, reason: "same_name" }],
      unmapped_a: [], unmapped_b: [], map: {},
    });
    expect(merged).toEqual([{ a: "ann@example.com", b: "ann", reason: "same_name" }, { a: "bob", b: "robert" }]);
  });

  it("compares names as the API does", () => {
    expect(comparable("status::In Progress")).toBe(comparable("in_progress"));
    expect(comparable("Done")).not.toBe(comparable("Closed"));
  });
});

describe("which A value a change on side B becomes", () => {
  const shared = (): FormState => {
    const form = filled();
    form.fields[1].direction = "both";
    form.fields[1].values = [{ a: "To Do", b: "opened" }, { a: "Backlog", b: "opened" }, { a: "Done", b: "closed" }];
    return form;
  };

  it("lists the B values several A values share, with the API's default (first in sorted order)", () => {
    const row = shared().fields[1];
    expect(sharedTargets(row.values)).toEqual([["opened", ["Backlog", "To Do"]]]);
    expect(reverseChoice(row, "opened", ["Backlog", "To Do"])).toBe("Backlog");
    expect(reverseChoice({ ...row, reverse: { opened: "To Do" } }, "opened", ["Backlog", "To Do"])).toBe("To Do");
    expect(reverseChoice({ ...row, reverse: { opened: "Done" } }, "opened", ["Backlog", "To Do"])).toBe("Backlog");
  });

  it("sends a choice as reverse_map only while it names an A value of its group", () => {
    const form = shared();
    expect(formToSpec(form).spec.field_mappings?.[1].reverse_map).toBeNull();
    form.fields[1].reverse = { opened: "To Do" };
    expect(formToSpec(form).spec.field_mappings?.[1].reverse_map).toEqual({ opened: "To Do" });
    form.fields[1].values[0].b = "closed";    // "To Do" no longer maps to "opened": the choice is dropped
    expect(formToSpec(form).spec.field_mappings?.[1].reverse_map).toBeNull();
  });

  it("takes the suggested choice on a new integration and only hints at it when editing", () => {
    const form = shared();
    Object.assign(form.fields[1], mergeReverseSuggestion(undefined, { opened: "To Do" }, true));
    expect(formToSpec(form).spec.field_mappings?.[1].reverse_map).toEqual({ opened: "To Do" });
    const edited = shared();
    edited.fields[1].reverse = {};
    Object.assign(edited.fields[1], mergeReverseSuggestion({}, { opened: "To Do" }, false));
    expect(edited.fields[1].reverseSuggested).toEqual({ opened: "To Do" });
    expect(formToSpec(edited).spec.field_mappings?.[1].reverse_map).toBeNull();
    // A person's choice is never replaced by a suggestion.
    expect(mergeReverseSuggestion({ opened: "Backlog" }, { opened: "To Do" }, true).reverse).toEqual({ opened: "Backlog" });
  });

  it("round-trips a stored reverse_map and lists a changed choice as an edit", () => {
    const form = shared();
    form.fields[1].reverse = { opened: "To Do" };
    const stored = formToSpec(form).spec;
    expect(formToSpec(specToForm(stored, "n")).spec).toEqual(stored);
    form.fields[1].reverse = { opened: "Backlog" };
    expect(specDiff(stored, formToSpec(form).spec)).toEqual([
      { what: "Field status: side B opened becomes on side A", kind: "changed", before: "To Do", after: "Backlog" }]);
  });
});

describe("validation per step", () => {
  it("requires both sides and refuses the same project twice", () => {
    const form = emptyForm();
    expect(validateStep(0, form)).toEqual({ "sideA.connectionId": "Choose a connection", "sideB.connectionId": "Choose a connection" });
    form.sideA = { connectionId: "1", container: "" };
    form.sideB = { connectionId: "1", container: "10000" };
    expect(Object.keys(validateStep(0, form))).toEqual(["sideA.container"]);
    form.sideA.container = "10000";
    expect(validateStep(0, form)["sideB.container"]).toMatch(/same project/);
    expect(validateStep(0, filled())).toEqual({});
  });

  it("needs a type mapping with both types", () => {
    const form = filled();
    expect(validateStep(1, form)).toEqual({});
    form.types = [];
    expect(validateStep(1, form)).toHaveProperty("types");
    form.types = [{ aType: "Bug", bType: "", aLabels: [], bLabels: [] }];
    expect(validateStep(1, form)).toEqual({ "types.0.bType": "Choose a side B type" });
  });

  it("flags a synced row without a B field and a B field mapped twice", () => {
    const form = filled();
    expect(validateStep(2, form)).toEqual({});
    form.fields[2] = { ...form.fields[2], direction: "both" };
    expect(Object.keys(validateStep(2, form))).toEqual(["fields.2.bField"]);
    form.fields[2] = { ...form.fields[2], bField: "title" };
    expect(validateStep(2, form)["fields.2.bField"]).toMatch(/mapped twice \(also row 1\)/);
    form.fields = form.fields.map((r) => ({ ...r, direction: "none" }));
    expect(validateStep(2, form)).toHaveProperty("fields");
  });

  it("checks the start date, the interval and the name", () => {
    const form = filled();
    form.start = { mode: "since", since: "" };
    form.intervalSeconds = 2;
    expect(Object.keys(validateStep(4, form)).sort()).toEqual(["intervalSeconds", "start.since"]);
    form.start.since = "not a date";
    expect(validateStep(4, form)["start.since"]).toBe("Not a date");
    form.name = "  ";
    expect(validateStep(5, form)).toEqual({ name: "Give the integration a name" });
  });
});

describe("API errors find their field", () => {
  it("maps spec paths to form paths and steps", () => {
    expect(formPathOf("body.spec.side_b.connection_id", [])).toBe("sideB.connectionId");
    expect(formPathOf("spec.type_mappings.0.b_type", [])).toBe("types.0.bType");
    // The second field mapping in the spec came from form row 4 (rows 1-3 were not synced).
    expect(formPathOf("spec.field_mappings.1.b_field", [0, 4])).toBe("fields.4.bField");
    expect(formPathOf("spec.start", [])).toBe("start.since");
    expect(formPathOf("name", [])).toBe("name");
    expect(formPathOf("spec", [])).toBeNull();
    expect(stepOf("fields.4.bField")).toBe(2);
    expect(stepOf("start.since")).toBe(4);
  });
});

describe("what an edit changes", () => {
  const before = formToSpec(filled()).spec;

  it("names each changed, added and removed setting", () => {
    const form = filled();
    form.fields[1].values[0].b = "closed";
    form.fields[0].direction = "b_to_a";
    form.conflictPolicy = "newest";
    form.types.push({ aType: "Task", bType: "task", aLabels: [], bLabels: [] });
    form.users.pairs = [];
    const changes = specDiff(before, formToSpec(form).spec);
    expect(changes).toEqual([
      { what: "Type mapping Task ↔ task", kind: "added", after: "mapped" },
      { what: "Field title: direction", kind: "changed", before: "A ↔ B (both ways)", after: "A ← B (B to A only)" },
      { what: "Field status: value To Do", kind: "changed", before: "opened", after: "closed" },
      { what: "Conflict policy", kind: "changed", before: "hold", after: "newest" },
      { what: "User ann@example.com", kind: "removed", before: "ann" },
    ]);
  });

  it("ignores the order of mappings", () => {
    const form = filled();
    form.fields.reverse();
    expect(specDiff(before, formToSpec(form).spec)).toEqual([]);
  });
});
