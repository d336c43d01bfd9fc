import { describe, expect, it } from "vitest";
import { describeEvent, eventSentence } from "./describe";
import { directionText, itemHref, sideNames } from "./sides";

const connections = [
  { id: 1, name: "Jira DC", kind: "jira" as const },
  { id: 2, name: "GitLab", kind: "gitlab" as const },
  { id: 3, name: "Partner Jira", kind: "jira" as const },
];
const spec = (a: number, b: number) => ({ side_a: { connection_id: a, container: "PROJ" }, side_b: { connection_id: b, container: "acme/web" } });
const sides = sideNames(spec(1, 2), connections);

describe("sideNames", () => {
  it("names sides by their app, or by connection when both are the same app", () => {
    expect([sides.a.name, sides.b.name, sides.a.container]).toEqual(["Jira", "GitLab", "PROJ"]);
    const twoJiras = sideNames(spec(1, 3), connections);
    expect([twoJiras.a.name, twoJiras.b.name, twoJiras.b.app]).toEqual(["Jira DC", "Partner Jira", "Jira"]);
  });

  it("falls back to the side's letter when the connection is unknown", () => {
    const gone = sideNames(spec(1, 99), connections);
    expect([gone.b.name, gone.b.connection]).toEqual(["Side B", "connection 99"]);
  });
});

describe("directionText", () => {
  it("turns the API's direction into an arrow between the apps", () => {
    expect(directionText("a_to_b", sides)).toBe("Jira → GitLab");
    expect(directionText("b_to_a", sides)).toBe("GitLab → Jira");
    expect(directionText("", sides)).toBe("");
  });
});

describe("describeEvent", () => {
  it("says what changed, which way and why", () => {
    const event = { action: "updated", direction: "b_to_a" as const, fields: ["title", "status"], detail: "title: changed on B only", item_key: "#5" };
    expect(describeEvent(event, sides)).toEqual({
      label: "Updated", what: "title, status", way: "GitLab → Jira", why: "title: changed on B only", color: "blue",
    });
    expect(eventSentence(event, sides)).toBe("Updated title, status (GitLab → Jira): title: changed on B only");
  });

  it("marks conflicts and errors, which go no way", () => {
    const conflict = { action: "conflict", direction: "" as const, fields: ["status"], detail: "changed on both sides", item_key: "PROJ-2" };
    expect(eventSentence(conflict, sides)).toBe("Conflict held status: changed on both sides");
    expect(describeEvent({ ...conflict, action: "error", fields: [] }, sides).color).toBe("red");
  });

  it("reads an action it does not know as words", () => {
    const event = { action: "drift_healed", direction: "" as const, fields: [], detail: "", item_key: "PROJ-1" };
    expect(eventSentence(event, sides)).toBe("Drift healed");
  });
});

describe("itemHref", () => {
  it("follows only http(s) addresses", () => {
    expect(itemHref("https://jira.corp.example/browse/PROJ-1")).toBe("https://jira.corp.example/browse/PROJ-1");
    expect(itemHref("javascript:alert(1)")).toBeNull();
    expect(itemHref("not a url")).toBeNull();
    expect(itemHref("")).toBeNull();
  });
});
