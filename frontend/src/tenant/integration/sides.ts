/**
 * How the panel names an integration's two sides: by the app ("Jira", "GitLab"), or by the
 * connection's name when both sides are the same kind of app (Jira <-> Jira), where the app
 * name alone would not tell them apart.
 */
import type { Schemas } from "../../api/client";

export type Side = "a" | "b";
export type Connection = Pick<Schemas["ConnectionOut"], "id" | "name" | "kind">;
type Spec = Pick<Schemas["IntegrationSpec"], "side_a" | "side_b">;

export interface SideInfo {
  /** Short name used in sentences and arrows: "Jira", "GitLab", or the connection's name. */
  name: string;
  /** The app's name ("Jira"), or "Side A" when the connection is gone. */
  app: string;
  /** The project or repository on that side. */
  container: string;
  connection: string;
}

export type SideNames = Record<Side, SideInfo>;

const APP_NAME: Record<Connection["kind"], string> = { jira: "Jira", gitlab: "GitLab" };

export function sideNames(spec: Spec, connections: readonly Connection[]): SideNames {
  const find = (id: number) => connections.find((c) => c.id === id);
  const a = find(spec.side_a.connection_id);
  const b = find(spec.side_b.connection_id);
  const sameKind = !!a && !!b && a.kind === b.kind;
  const info = (side: Side, connection: Connection | undefined, container: string): SideInfo => {
    // `container` is the label the builder stored ("Widgets (acme/widgets)"), else the app's id.
    const fallback = `Side ${side.toUpperCase()}`;
    const app = connection ? APP_NAME[connection.kind] ?? connection.kind : fallback;
    return {
      name: connection ? (sameKind ? connection.name : app) : fallback,
      app,
      container,
      connection: connection?.name ?? `connection ${side === "a" ? spec.side_a.connection_id : spec.side_b.connection_id}`,
    };
  };
  return { a: info("a", a, spec.side_a.label ?? spec.side_a.container),
    b: info("b", b, spec.side_b.label ?? spec.side_b.container) };
}

/** "Jira → GitLab" for a direction the API names "a_to_b"; "" for none. */
export function directionText(direction: string, sides: SideNames): string {
  if (direction === "a_to_b") {
    return `${sides.a.name} → ${sides.b.name}`;
  }
  if (direction === "b_to_a") {
    return `${sides.b.name} → ${sides.a.name}`;
  }
  return "";
}

/**
 * An item's address in its app as a link target, or null when it is not an http(s) URL (the
 * address comes from the app's data; anything else, like a javascript: URL, is not followed).
 */
export function itemHref(url: string | null | undefined): string | null {
  if (!url) {
    return null;
  }
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
  } catch {
    return null;
  }
}
