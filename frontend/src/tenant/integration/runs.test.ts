import { describe, expect, it } from "vitest";
import { itemsPerSecond, pollLine, pollPercent, progressLine, runCounts, runSeconds, timeLeftText } from "./runs";
import type { SideNames } from "./sides";

const started = "2026-11-28T10:00:00Z";
const run = {
  id: 7, trigger: "schedule", status: "running" as const, started_at: started, finished_at: null, duration_seconds: null,
  items_seen: 412, items_created: 400, items_updated: 12, comments_created: 30, conflicts: 0, errors: 1, api_calls: 900,
  retries: 2, rate_limit_wait_seconds: 0, error: null, progress: null,
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

describe("the poll of a side", () => {
  const sides: SideNames = {
    a: { name: "Jira", app: "Jira", container: "ACME project", connection: "Jira DC" },
    b: { name: "GitLab", app: "GitLab", container: "acme/widgets", connection: "GitLab" },
  };
  const poll = { side: "a" as const, started_at: started, items_done: 1200, items_total: 5000, items_per_second: 10, seconds_left: 190 };

  it("says how far it has got of the total the app counted, and the time left", () => {
    expect(pollPercent(poll)).toBe(24);
    expect(pollLine(poll, sides)).toBe("Side A (Jira · ACME project): 1,200 of about 5,000 changed items · about 3 min left");
  });

  it("counts what it has done when the app gave no total", () => {
    const open = { ...poll, items_total: null, seconds_left: null };
    expect(pollPercent(open)).toBeNull();
    expect(pollLine(open, sides)).toBe("Side A (Jira · ACME project): 1,200 changed items so far");
    expect(pollLine({ ...open, items_done: 1 }, sides)).toBe("Side A (Jira · ACME project): 1 changed item so far");
  });

  it("gives no time left in its first seconds", () => {
    expect(pollLine({ ...poll, items_per_second: null, seconds_left: null }, sides)).toBe("Side A (Jira · ACME project): 1,200 of about 5,000 changed items");
  });

  it("stops at 100% when items changed during the poll take it past the total", () => {
    expect(pollPercent({ items_done: 5200, items_total: 5000 })).toBe(100);
    expect(pollPercent({ items_done: 4999, items_total: 5000 })).toBe(99);
    expect(pollPercent({ items_done: 0, items_total: 0 })).toBe(100);
  });

  it("names side B as the page does", () => {
    expect(pollLine({ ...poll, side: "b", items_done: 3, items_total: 40, seconds_left: 20 }, sides)).toBe(
      "Side B (GitLab · acme/widgets): 3 of about 40 changed items · less than a minute left",
    );
  });

  it("names the connection between two apps of a kind, and no app while the connections load", () => {
    const twoJiras: SideNames = { ...sides, a: { ...sides.a, name: "Jira DC" } };
    expect(pollLine({ ...poll, items_total: null }, twoJiras)).toBe("Side A (Jira DC · ACME project): 1,200 changed items so far");
    const loading: SideNames = { ...sides, a: { ...sides.a, name: "Side A", app: "Side A" } };
    expect(pollLine({ ...poll, items_total: null }, loading)).toBe("Side A (ACME project): 1,200 changed items so far");
  });

  it.each([
    [59, "less than a minute"],
    [90, "about 2 min"],
    [185, "about 3 min"],
    [3540, "about 59 min"],
    [4700, "about 1 h 20 min"],
  ])("rounds %d s left to %s", (seconds, words) => {
    expect(timeLeftText(seconds)).toBe(words);
  });
});
