import { describe, expect, it } from "vitest";
import { bucketLabel, bucketWords, chartRows, plural, seriesTotals } from "./series";

const bucket = (start: string, extra: Partial<Record<string, number | null>> = {}) => ({
  start,
  runs: 1,
  failed_runs: 0,
  items_synced: 5,
  items_created: 3,
  items_updated: 2,
  comments_created: 4,
  errors: 0,
  api_calls: 20,
  retries: 0,
  rate_limit_wait_seconds: 0.25,
  lag_seconds: 90 as number | null,
  ...extra,
});

describe("chartRows", () => {
  it("gives each bucket a time label and the chart's figures, lag in minutes", () => {
    const rows = chartRows(
      {
        hours: 1,
        bucket_seconds: 60,
        buckets: [bucket("2026-11-28T09:05:00Z", { lag_seconds: null }), bucket("2026-11-28T09:06:00Z", { errors: 2, failed_runs: 1 })],
      },
      "UTC",
    );
    expect(rows).toEqual([
      { time: "09:05", created: 3, updated: 2, comments: 4, errors: 0, failedRuns: 0, apiCalls: 20, waitSeconds: 0.3, lagMinutes: null },
      { time: "09:06", created: 3, updated: 2, comments: 4, errors: 2, failedRuns: 1, apiCalls: 20, waitSeconds: 0.3, lagMinutes: 1.5 },
    ]);
  });
});

describe("bucketLabel", () => {
  it("shows the time of day within a day, the date too beyond, the date alone for day buckets", () => {
    expect(bucketLabel("2026-11-28T14:30:00Z", 900, 24, "UTC")).toBe("14:30");
    expect(bucketLabel("2026-11-28T14:00:00Z", 10800, 168, "UTC")).toBe("Nov 28, 14:00");
    expect(bucketLabel("2026-11-28T00:00:00Z", 86400, 720, "UTC")).toBe("Nov 28");
  });
});

describe("seriesTotals", () => {
  it("sums the buckets the charts' summaries state", () => {
    const totals = seriesTotals({
      hours: 24,
      bucket_seconds: 1800,
      buckets: [bucket("2026-11-28T09:00:00Z"), bucket("2026-11-28T09:30:00Z", { errors: 3, failed_runs: 1, items_synced: 0, rate_limit_wait_seconds: 1.26 })],
    });
    expect(totals).toEqual({ runs: 2, failedRuns: 1, items: 5, comments: 8, errors: 3, apiCalls: 40, waitSeconds: 1.5 });
  });

  it("is all zeros for a range with no runs", () => {
    expect(seriesTotals({ hours: 1, bucket_seconds: 60, buckets: [] })).toEqual({
      runs: 0, failedRuns: 0, items: 0, comments: 0, errors: 0, apiCalls: 0, waitSeconds: 0,
    });
  });
});

describe("bucketWords", () => {
  it("names the bucket size", () => {
    expect(bucketWords(60)).toBe("1-minute");
    expect(bucketWords(900)).toBe("15-minute");
    expect(bucketWords(7200)).toBe("2-hour");
    expect(bucketWords(86400)).toBe("1-day");
  });
});

describe("plural", () => {
  it("counts with the right noun form", () => {
    expect(plural(1, "run")).toBe("1 run");
    expect(plural(0, "failed run")).toBe("0 failed runs");
  });
});
