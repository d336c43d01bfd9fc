/** Dates, durations and counts as people read them; the full timestamp stays available as a title. */

const RELATIVE = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
const ABSOLUTE = new Intl.DateTimeFormat("en", { dateStyle: "medium", timeStyle: "medium" });
const COUNT = new Intl.NumberFormat("en", { maximumFractionDigits: 0 });

/** A count with thousands separators: 1200 -> "1,200". */
export function formatCount(value: number): string {
  return COUNT.format(value);
}

export function formatDateTime(value: string | null | undefined): string {
  return value ? ABSOLUTE.format(new Date(value)) : "—";
}

export function formatRelative(value: string | null | undefined, now: number = Date.now()): string {
  if (!value) {
    return "never";
  }
  const seconds = Math.round((new Date(value).getTime() - now) / 1000);
  const steps: [number, Intl.RelativeTimeFormatUnit][] = [
    [60, "second"],
    [60, "minute"],
    [24, "hour"],
    [30, "day"],
    [12, "month"],
  ];
  let amount = seconds;
  for (const [size, unit] of steps) {
    if (Math.abs(amount) < size) {
      return RELATIVE.format(amount, unit);
    }
    amount = Math.round(amount / size);
  }
  return RELATIVE.format(amount, "year");
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) {
    return "—";
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return `${seconds.toFixed(1)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  return minutes < 60 ? `${minutes} min ${Math.round(seconds % 60)} s` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
