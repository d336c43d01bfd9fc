/**
 * A run's status and counts in words: badges that say what the colour means, the progress
 * line of a run still going (counts so far, rate, time running), and how far its poll of a
 * side has got (a run polls side A, then side B).
 */
import type { Schemas } from "../../api/client";
import { formatCount, formatDuration } from "../../lib/format";
import type { SideNames } from "./sides";

type Run = Schemas["RunOut"];
type PollProgress = Schemas["RunProgress"];

export const RUN_STATUS: Record<Run["status"], { label: string; color: string }> = {
  running: { label: "Running", color: "blue" },
  ok: { label: "OK", color: "green" },
  partial: { label: "Partly failed", color: "yellow" },
  failed: { label: "Failed", color: "red" },
};

export const STATE: Record<Schemas["IntegrationOut"]["state"], { label: string; color: string }> = {
  active: { label: "Active", color: "green" },
  paused: { label: "Paused", color: "yellow" },
  disabled: { label: "Disabled", color: "gray" },
};

export const TRIGGER: Record<string, string> = {
  schedule: "Schedule",
  manual: "Sync now",
  webhook: "Webhook",
};

/** Seconds a run has taken: its duration when it ended, else the time since it started. */
export function runSeconds(run: Pick<Run, "duration_seconds" | "started_at" | "finished_at">, now: number): number {
  if (run.duration_seconds !== null && run.duration_seconds !== undefined) {
    return run.duration_seconds;
  }
  const end = run.finished_at ? new Date(run.finished_at).getTime() : now;
  return Math.max(0, (end - new Date(run.started_at).getTime()) / 1000);
}

/** Items looked at per second so far; null until a second has passed. */
export function itemsPerSecond(run: Run, now: number): number | null {
  const seconds = runSeconds(run, now);
  return seconds >= 1 ? run.items_seen / seconds : null;
}

/** The counts of a run as label/value pairs, in the order the page shows them. */
export function runCounts(run: Run): { label: string; value: string }[] {
  return [
    { label: "Items looked at", value: String(run.items_seen) },
    { label: "Created", value: String(run.items_created) },
    { label: "Updated", value: String(run.items_updated) },
    { label: "Comments copied", value: String(run.comments_created) },
    { label: "Conflicts", value: String(run.conflicts) },
    { label: "Errors", value: String(run.errors) },
    { label: "API calls", value: String(run.api_calls) },
    { label: "Rate-limit waits", value: run.rate_limit_wait_seconds ? formatDuration(run.rate_limit_wait_seconds) : "0 s" },
  ];
}

/** "412 items looked at: 400 created, 12 updated, 0 errors · 6.9 items/s · running for 1 min 0 s" */
export function progressLine(run: Run, now: number): string {
  const rate = itemsPerSecond(run, now);
  const parts = [
    `${run.items_seen} ${run.items_seen === 1 ? "item" : "items"} looked at: ${run.items_created} created, ${run.items_updated} updated, ${run.errors} ${run.errors === 1 ? "error" : "errors"}`,
  ];
  if (rate !== null) {
    parts.push(`${rate < 10 ? rate.toFixed(1) : Math.round(rate)} items/s`);
  }
  parts.push(`running for ${formatDuration(runSeconds(run, now))}`);
  return parts.join(" · ");
}

/**
 * How far the poll of a side has got, in whole percent (0-100), or null when the app gave no
 * total. Rounded down, so 100 means done; capped, since items changed during the poll are
 * looked at too and can take the count past the total counted at its start.
 */
export function pollPercent(progress: Pick<PollProgress, "items_done" | "items_total">): number | null {
  const { items_done: done, items_total: total } = progress;
  if (total === null || total === undefined) {
    return null;
  }
  if (total <= 0) {
    return 100;
  }
  return Math.min(100, Math.floor((done * 100) / total));
}

/**
 * An estimate of time left, rounded as far as an estimate deserves: "less than a minute",
 * "about 3 min", and past the hour to 5 minutes ("about 1 h 20 min").
 */
export function timeLeftText(seconds: number): string {
  if (seconds < 60) {
    return "less than a minute";
  }
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) {
    return `about ${minutes} min`;
  }
  return `about ${formatDuration(Math.round(seconds / 300) * 300)}`;
}

/**
 * The poll's progress in words, naming the side as the page's header does:
 * "Side A (Jira · PROJ): 1,200 of about 5,000 changed items · about 3 min left", or
 * "Side A (Jira · PROJ): 1,200 changed items so far" when the app gave no total.
 */
export function pollLine(progress: PollProgress, sides: SideNames): string {
  const side = sides[progress.side];
  const label = `Side ${progress.side.toUpperCase()}`;
  // The app's name (the connection's, between two apps of a kind); none while it is unknown.
  const names = side.name === label ? [side.container] : [side.name, side.container];
  const where = `${label} (${names.join(" · ")})`;
  const done = formatCount(progress.items_done);
  const total = progress.items_total;
  if (total === null || total === undefined) {
    return `${where}: ${done} changed ${progress.items_done === 1 ? "item" : "items"} so far`;
  }
  const parts = [`${where}: ${done} of about ${formatCount(total)} changed ${total === 1 ? "item" : "items"}`];
  if (progress.seconds_left !== null && progress.seconds_left !== undefined) {
    parts.push(`${timeLeftText(progress.seconds_left)} left`);
  }
  return parts.join(" · ");
}
