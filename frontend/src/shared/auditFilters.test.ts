import { describe, expect, it } from "vitest";
import { auditQuery, describeDetails, NO_FILTERS } from "./auditFilters";

describe("auditQuery", () => {
  it("leaves out empty and blank filters", () => {
    expect(auditQuery(NO_FILTERS)).toEqual({});
    expect(auditQuery({ action: "  ", actor: "", target: "\t" })).toEqual({});
  });

  it("trims what is kept", () => {
    expect(auditQuery({ action: " login. ", actor: "Ann@Example.com ", target: "" })).toEqual({ action: "login.", actor: "Ann@Example.com" });
  });
});

describe("describeDetails", () => {
  it("reads strings plainly and other values as JSON", () => {
    expect(describeDetails({ role: "editor", token_id: 4, fields: ["a", "b"], ok: false })).toBe('role: editor · token_id: 4 · fields: ["a","b"] · ok: false');
  });

  it("is empty without details", () => {
    expect(describeDetails({})).toBe("");
  });
});
