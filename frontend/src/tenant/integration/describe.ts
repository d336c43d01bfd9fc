/**
 * An event of an item's history in words: what happened, to which fields, which way, and why
 * (the engine's own reason, e.g. "status: changed on A only").
 */
import type { Schemas } from "../../api/client";
import { directionText, type SideNames } from "./sides";

type Event = Pick<Schemas["EventOut"], "action" | "direction" | "fields" | "detail" | "item_key">;

const ACTION_LABEL: Record<string, string> = {
  created: "Created",
  linked: "Linked",
  updated: "Updated",
  conflict: "Conflict held",
  deleted: "Deleted",
  comment: "Comment copied",
  comment_edited: "Comment edited",
  comment_deleted: "Comment deleted",
  attachment: "Attachment copied",
  attachment_deleted: "Attachment deleted",
  attachment_skipped: "Attachment skipped",
  error: "Failed",
};

export interface EventDescription {
  /** What happened, e.g. "Updated". */
  label: string;
  /** The fields it concerned, e.g. "title, status" ("" when none). */
  what: string;
  /** Which way, e.g. "Jira → GitLab" ("" when it went no way, like a held conflict). */
  way: string;
  /** Why, in the engine's words. */
  why: string;
  /** Colour of the event's badge; the label carries the meaning, the colour only repeats it. */
  color: string;
}

export function describeEvent(event: Event, sides: SideNames): EventDescription {
  const label = ACTION_LABEL[event.action] ?? humanise(event.action);
  const color = event.action === "error" ? "red" : event.action === "conflict" ? "orange" : event.action.endsWith("deleted") ? "gray" : "blue";
  return { label, what: event.fields.join(", "), way: directionText(event.direction, sides), why: event.detail, color };
}

/** One line for lists and screen readers: "Updated title, status (Jira → GitLab): title: changed on A". */
export function eventSentence(event: Event, sides: SideNames): string {
  const d = describeEvent(event, sides);
  const head = [d.label, d.what].filter(Boolean).join(" ");
  const way = d.way ? ` (${d.way})` : "";
  return d.why ? `${head}${way}: ${d.why}` : `${head}${way}`;
}

function humanise(action: string): string {
  const words = action.replace(/_/g, " ").trim();
  return words ? words[0].toUpperCase() + words.slice(1) : "Event";
}
