import { useQuery } from "@tanstack/react-query";
import { api, unwrap, type Schemas } from "../api/client";

export type Connection = Schemas["ConnectionOut"];

/** The query key every page shares for "all the tenant's connections" (an array). */
export const ALL_CONNECTIONS = ["connections", "all"] as const;

/** Every connection of the tenant, all pages (a tenant has few). One cache entry for the
 * builder, the integration pages and the start page; invalidating ["connections"] refreshes it. */
export function useAllConnections() {
  return useQuery({
    queryKey: ALL_CONNECTIONS,
    queryFn: async () => {
      const all: Connection[] = [];
      let cursor: string | undefined;
      do {
        const page = await unwrap(api.GET("/api/v1/connections", { params: { query: { limit: 200, cursor } } }));
        all.push(...page.items);
        cursor = page.next_cursor ?? undefined;
      } while (cursor);
      return all;
    },
    staleTime: 30_000,
  });
}
