import { describe, expect, it } from "vitest";
import { itemsPerSecond, progressLine, runCounts, runSeconds } from "./runs";

const started = "2026-11-28T10:00:00Z";
const run = {
  id: 7, trigger: "schedule", status: "running" as const, started_at: started, finished_at: null, duration_seconds: null,
  items_seen: 412, items_created: 400, items_updated: 12, comments_created: 30, conflicts: 0, errors: 1, api_calls: 900,
  retries: 2, rate_limit_wait_seconds: 0, error: null,
};
const now = new Date(started).getTime() + 60_000;

describe("a run in progress", () => {
  it("has run since it started and states its progress so far", () => {
    expect(runSeconds(run, now)).toBe(60);
    expect(itemsPerSecond(run, now)).toBeCloseTo(6.87, 2);
    expect(progressLine(run, now)).toBe("412 items looked at: 400 created, 12 updated, 1 error · 6.9 items/s · running for 1 min 0 s");
  });

  it("gives no rate in its first second", () => {
    expect(itemsPerSecond({ ...run, items_seen: 0 }, new Date(started).getTime() + 500)).toBeNull();
    expect(progressLine({ ...run, items_seen: 1, items_created: 1, items_updated: 0, errors: 0 }, new Date(started).getTime() + 500)).toBe(
      "1 item looked at: 1 created, 0 updated, 0 errors · running for 500 ms",
    );
  });
});

describe("a finished run", () => {
  it("takes its recorded duration and lists its counts", () => {
    const done = { ...run, status: "ok" as const, finished_at: "2026-11-28T10:05:00Z", duration_seconds: 299.5, rate_limit_wait_seconds: 12.5 };
    expect(runSeconds(done, now)).toBe(299.5);
    expect(runCounts(done)).toContainEqual({ label: "Rate-limit waits", value: "12.5 s" });
    expect(runCounts(done)).toContainEqual({ label: "API calls", value: "900" });
    expect(runCounts({ ...done, rate_limit_wait_seconds: 0 })).toContainEqual({ label: "Rate-limit waits", value: "0 s" });
  });
});
