/**
 * A tenant slug checked as it is typed, by the rules of appliance/identifiers.py
 * validate_slug (the API decides; its 422 message replaces this one when they differ).
 * Returns the problem in the words the API uses, or null when the slug would be accepted.
 */

export const SLUG_MAX = 40;

const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;

/** Host labels the appliance keeps for itself (appliance.identifiers.RESERVED_SLUGS). */
export const RESERVED_SLUGS: ReadonlySet<string> = new Set([
  "admin", "administrator", "api", "app", "assets", "auth", "cluster", "console", "dashboard",
  "default", "docs", "ftp", "health", "help", "imap", "internal", "localhost", "login", "mail",
  "metrics", "ns1", "ns2", "panel", "pop", "postgres", "public", "ready", "root", "smtp", "sso",
  "static", "status", "support", "system", "tandem", "webhook", "webhooks", "www",
]);

export function slugProblem(slug: string): string | null {
  if (!slug) {
    return "Enter a slug: it names the tenant's host";
  }
  if (slug.length > SLUG_MAX) {
    return `At most ${SLUG_MAX} characters (this has ${slug.length})`;
  }
  if (slug !== slug.toLowerCase()) {
    return `Use lower case (${slug.toLowerCase()})`;
  }
  if (!SLUG.test(slug)) {
    if (slug.startsWith("-") || slug.endsWith("-")) {
      return "A '-' may not come first or last";
    }
    return "Only a-z, 0-9 and '-', as in a DNS label";
  }
  if (slug.slice(2, 4) === "--") {
    return "'--' in the third and fourth place is reserved for internationalised names";
  }
  if (RESERVED_SLUGS.has(slug)) {
    return `"${slug}" is reserved`;
  }
  if (slug.startsWith("pg-")) {
    return "May not start with 'pg-'";
  }
  return null;
}

/**
 * A slug suggested from a display name ("ACME Corp." -> "acme-corp"), offered until the
 * slug field is edited by hand. May still be reserved: slugProblem says so.
 */
export function slugFromName(name: string): string {
  return name
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+/, "")
    .slice(0, SLUG_MAX)
    .replace(/-+$/, "");
}
