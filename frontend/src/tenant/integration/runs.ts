/**
 * A run's status and counts in words: badges that say what the colour means, and the
 * progress line of a run still going (counts so far, rate, time running).
 */
import type { Schemas } from "../../api/client";
import { formatDuration } from "../../lib/format";

type Run = Schemas["RunOut"];

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
