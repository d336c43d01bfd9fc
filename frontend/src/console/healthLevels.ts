import type { Schemas } from "../api/client";

/** One scale for every health signal, the doctor's ok / warn / fail. */
export type Level = "ok" | "warn" | "fail";

export const LEVEL_COLOR: Record<Level, string> = { ok: "green", warn: "yellow", fail: "red" };
export const LEVEL_LABEL: Record<Level, string> = { ok: "ok", warn: "warning", fail: "failing" };

/** Certificate renewal lead times: a month's notice, then a week's alarm. */
export const CERT_WARN_DAYS = 30;
export const CERT_FAIL_DAYS = 7;

/** How worrying a served certificate is: unusable or expiring within a week fails,
 * within a month (or an unreadable expiry) warns. */
export function certificateLevel(cert: Pick<Schemas["Certificate"], "problem" | "days_left">): Level {
  if (cert.problem || (cert.days_left !== null && cert.days_left < CERT_FAIL_DAYS)) {
    return "fail";
  }
  if (cert.days_left === null || cert.days_left < CERT_WARN_DAYS) {
    return "warn";
  }
  return "ok";
}
