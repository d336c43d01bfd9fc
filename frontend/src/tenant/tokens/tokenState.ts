import type { Schemas } from "../../api/client";

export type TokenState = "active" | "revoked" | "expired";

/** A token's state in words: revoked wins over expired (it was a decision, not the calendar). */
export function tokenState(token: Pick<Schemas["TokenOut"], "active" | "revoked_at">): TokenState {
  if (token.revoked_at) {
    return "revoked";
  }
  return token.active ? "active" : "expired";
}

export const TOKEN_COLOR: Record<TokenState, string> = { active: "green", revoked: "gray", expired: "orange" };
