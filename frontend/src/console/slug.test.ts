import { describe, expect, it } from "vitest";
import { slugFromName, slugProblem } from "./slug";

describe("slugProblem", () => {
  it.each(["acme", "a", "0", "acme-corp", "a1-b2", "x".repeat(40), "ab-c--d"])("accepts %s", (slug) => {
    expect(slugProblem(slug)).toBeNull();
  });

  it.each([
    ["", "Enter a slug"],
    ["x".repeat(41), "At most 40 characters"],
    ["Acme", "Use lower case (acme)"],
    ["-acme", "may not come first or last"],
    ["acme-", "may not come first or last"],
    ["ac_me", "Only a-z, 0-9 and '-'"],
    ["acmé", "Only a-z, 0-9 and '-'"],
    ["ac me", "Only a-z, 0-9 and '-'"],
    ["xn--acme", "reserved for internationalised names"],
    ["www", "is reserved"],
    ["console", "is reserved"],
    ["pg-acme", "May not start with 'pg-'"],
  ])("refuses %j", (slug, message) => {
    expect(slugProblem(slug)).toContain(message);
  });
});

describe("slugFromName", () => {
  it.each([
    ["ACME Corp.", "acme-corp"],
    ["  Globex  ", "globex"],
    ["Société Générale", "societe-generale"],
    ["a_b c", "a-b-c"],
    ["---", ""],
  ])("%j -> %j", (name, slug) => {
    expect(slugFromName(name)).toBe(slug);
  });

  it("keeps a long name within 40 characters and never ends in '-'", () => {
    const slug = slugFromName("word ".repeat(20));
    expect(slug.length).toBeLessThanOrEqual(40);
    expect(slug.endsWith("-")).toBe(false);
    expect(slugProblem(slug)).toBeNull();
  });
});
