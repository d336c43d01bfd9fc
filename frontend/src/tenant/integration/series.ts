/**
 * The series endpoint's buckets shaped for the charts: one row per bucket with a readable time
 * label, and the totals over the range that the charts' headings and text summaries state
 * (a chart alone says nothing to a screen reader).
 */
import type { Schemas } from "../../api/client";

type Series = Pick<Schemas["Series"], "bucket_seconds" | "buckets" | "hours">;

/** The ranges the page offers, in hours, with their labels. */
export const RANGES: { value: string; hours: number; label: string; words: string }[] = [
  { value: "1", hours: 1, label: "1 h", words: "the last hour" },
  { value: "24", hours: 24, label: "24 h", words: "the last 24 hours" },
  { value: "168", hours: 168, label: "7 days", words: "the last 7 days" },
  { value: "720", hours: 720, label: "30 days", words: "the last 30 days" },
];

export interface ChartRow {
  time: string;
  created: number;
  updated: number;
  comments: number;
  errors: number;
  failedRuns: number;
  apiCalls: number;
  waitSeconds: number;
  /** Lag at the bucket's end in minutes; null before the first successful run. */
  lagMinutes: number | null;
}

export interface SeriesTotals {
  runs: number;
  failedRuns: number;
  items: number;
  comments: number;
  errors: number;
  apiCalls: number;
  waitSeconds: number;
}

/**
 * A bucket's label: the time of day for buckets within a day's span, the date with the time
 * for longer ranges of sub-day buckets, the date alone for day buckets. `timeZone` is for
 * tests; the page uses the browser's.
 */
export function bucketLabel(start: string, bucketSeconds: number, hours: number, timeZone?: string): string {
  const date = new Date(start);
  if (bucketSeconds >= 86400) {
    return new Intl.DateTimeFormat("en", { month: "short", day: "numeric", timeZone }).format(date);
  }
  const time: Intl.DateTimeFormatOptions = { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone };
  if (hours <= 24) {
    return new Intl.DateTimeFormat("en", time).format(date);
  }
  return new Intl.DateTimeFormat("en", { ...time, month: "short", day: "numeric" }).format(date);
}

export function chartRows(series: Series, timeZone?: string): ChartRow[] {
  return series.buckets.map((b) => ({
    time: bucketLabel(b.start, series.bucket_seconds, series.hours, timeZone),
    created: b.items_created,
    updated: b.items_updated,
    comments: b.comments_created,
    errors: b.errors,
    failedRuns: b.failed_runs,
    apiCalls: b.api_calls,
    waitSeconds: round(b.rate_limit_wait_seconds, 1),
    lagMinutes: b.lag_seconds === null ? null : round(b.lag_seconds / 60, 1),
  }));
}

export function seriesTotals(series: Series): SeriesTotals {
  const totals: SeriesTotals = { runs: 0, failedRuns: 0, items: 0, comments: 0, errors: 0, apiCalls: 0, waitSeconds: 0 };
  for (const b of series.buckets) {
    totals.runs += b.runs;
    totals.failedRuns += b.failed_runs;
    totals.items += b.items_synced;
    totals.comments += b.comments_created;
    totals.errors += b.errors;
    totals.apiCalls += b.api_calls;
    totals.waitSeconds += b.rate_limit_wait_seconds;
  }
  totals.waitSeconds = round(totals.waitSeconds, 1);
  return totals;
}

/** The bucket size in words, for the charts' captions: "5-minute", "1-hour", "1-day". */
export function bucketWords(bucketSeconds: number): string {
  if (bucketSeconds >= 86400 && bucketSeconds % 86400 === 0) {
    return `${bucketSeconds / 86400}-day`;
  }
  if (bucketSeconds >= 3600 && bucketSeconds % 3600 === 0) {
    return `${bucketSeconds / 3600}-hour`;
  }
  return `${Math.round(bucketSeconds / 60)}-minute`;
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** "1 run", "3 runs": a count with its noun. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
