import { describe, expect, it } from "vitest";
import { tokenState } from "./tokenState";

describe("tokenState", () => {
  it.each([
    [{ active: true, revoked_at: null }, "active"],
    [{ active: false, revoked_at: null }, "expired"],
    [{ active: false, revoked_at: "2026-01-01T00:00:00Z" }, "revoked"],
  ] as const)("%j is %s", (token, state) => {
    expect(tokenState(token)).toBe(state);
  });
});
