import { describe, expect, it } from "vitest";
import { ApiError } from "../api/client";
import { applyApiErrors, shownOnForm } from "./forms";

describe("API errors on a form", () => {
  const invalid = new ApiError(422, "invalid", "Invalid body", { fields: [{ field: "body.email", message: "not an e-mail" }, { field: "body.extra", message: "unknown" }] });

  it("places field problems on known fields and returns the rest for an alert", () => {
    const placed: Record<string, string> = {};
    expect(applyApiErrors(invalid, (path, message) => (placed[path] = message), ["email"])).toBe("body.extra: unknown");
    expect(placed).toEqual({ email: "not an e-mail" });
  });

  it("tells which errors the form itself shows", () => {
    expect(shownOnForm(invalid)).toBe(true);
    expect(shownOnForm(new ApiError(409, "conflict", "A user with this e-mail exists."))).toBe(true);
    expect(shownOnForm(new ApiError(500, "internal", "Something failed"))).toBe(false);
    expect(shownOnForm(new Error("network down"))).toBe(false);
  });
});
