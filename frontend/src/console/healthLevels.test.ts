import { describe, expect, it } from "vitest";
import { certificateLevel } from "./healthLevels";

describe("certificateLevel", () => {
  it.each([
    [{ problem: "", days_left: 365 }, "ok"],
    [{ problem: "", days_left: 30 }, "ok"],
    [{ problem: "", days_left: 29 }, "warn"],
    [{ problem: "", days_left: null }, "warn"],
    [{ problem: "", days_left: 6 }, "fail"],
    [{ problem: "", days_left: -2 }, "fail"],
    [{ problem: "key does not match", days_left: 200 }, "fail"],
  ] as const)("%j is %s", (cert, level) => {
    expect(certificateLevel(cert)).toBe(level);
  });
});
