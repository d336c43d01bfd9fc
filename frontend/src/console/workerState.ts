import type { Schemas } from "../api/client";

type WorkerState = Schemas["Worker"]["state"];

/** Badge colour of a tenant worker's state; the badge always carries the state's name too. */
export const WORKER_COLOR: Record<WorkerState, string> = {
  running: "green",
  starting: "blue",
  standby: "gray",
  stopping: "gray",
  stopped: "gray",
  backoff: "orange",
  failed: "red",
};

export const TENANT_COLOR: Record<Schemas["TenantOut"]["state"], string> = {
  active: "green",
  disabled: "gray",
  deleting: "orange",
};

/** The last error a worker reported, as one line ("" when none). */
export function lastError(worker: Schemas["Worker"] | null): string {
  if (!worker) {
    return "";
  }
  return [worker.reason, worker.last_exit].filter(Boolean).join(" · ");
}
