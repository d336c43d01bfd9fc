import { describe, expect, it } from "vitest";
import { editableValue, formatValue, parseMergedValue, valueKind } from "./values";

describe("formatValue", () => {
  it("shows nothing as (empty), lists comma-separated, objects as JSON", () => {
    expect(formatValue(null)).toBe("(empty)");
    expect(formatValue("")).toBe("(empty)");
    expect(formatValue([])).toBe("(empty)");
    expect(formatValue(["bug", "ui"])).toBe("bug, ui");
    expect(formatValue(3)).toBe("3");
    expect(formatValue({ name: "Ann" })).toBe('{\n  "name": "Ann"\n}');
  });
});

describe("parseMergedValue", () => {
  it("keeps text as typed for text fields", () => {
    expect(parseMergedValue("  Merged title ", ["A title", "B title"])).toEqual({ ok: true, value: "  Merged title " });
  });

  it("turns comma-separated text into a list for list fields", () => {
    expect(parseMergedValue("bug, ui,, backend ", [["bug"], null])).toEqual({ ok: true, value: ["bug", "ui", "backend"] });
    expect(parseMergedValue("  ", [["bug"], ["ui"]])).toEqual({ ok: true, value: [] });
  });

  it("reads numbers and refuses what is not one", () => {
    expect(parseMergedValue("5", [3, 8])).toEqual({ ok: true, value: 5 });
    expect(parseMergedValue("", [3, 8])).toEqual({ ok: true, value: null });
    expect(parseMergedValue("five", [3, 8])).toEqual({ ok: false, error: "Enter a number" });
  });

  it("reads yes/no for flags and JSON for structured values", () => {
    expect(parseMergedValue("Yes", [false, true])).toEqual({ ok: true, value: true });
    expect(parseMergedValue("maybe", [false])).toEqual({ ok: false, error: "Enter yes or no" });
    expect(parseMergedValue('{"login": "ann"}', [{ login: "bob" }])).toEqual({ ok: true, value: { login: "ann" } });
    expect(parseMergedValue("{oops", [{ login: "bob" }]).ok).toBe(false);
  });

  it("judges the kind from whichever side has a value", () => {
    expect(valueKind([null, 4])).toBe("number");
    expect(valueKind([null, null])).toBe("text");
    expect(valueKind([[{ id: 1 }]])).toBe("json");
  });

  it("round-trips the prefilled text of a value", () => {
    for (const value of [["bug", "ui"], 7, "Done", { login: "ann" }, true]) {
      expect(parseMergedValue(editableValue(value), [value])).toEqual({ ok: true, value });
    }
  });
});
