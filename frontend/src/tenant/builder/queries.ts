/**
 * What the builder asks the appliance: connections, the containers a connection sees, a
 * container's description, its users, value-map suggestions, and the integration itself.
 * Discovery calls reach the apps (through the appliance), so their results are cached for the
 * session of the builder and not refetched on focus.
 */
import { useQuery } from "@tanstack/react-query";
import { api, unwrap, type Schemas } from "../../api/client";
import { useAllConnections } from "../../lib/connections";
import type { Description, RemoteUser, Suggestions } from "./logic";

export type { Connection } from "../../lib/connections";
export type Container = Schemas["Container"];

const DISCOVERY = { staleTime: 5 * 60_000, refetchOnWindowFocus: false, retry: false } as const;

/** Every connection of the tenant (shared with the other pages). */
export const useConnections = useAllConnections;

export function useContainers(connectionId: string) {
  return useQuery({
    queryKey: ["builder", "containers", connectionId],
    queryFn: () => unwrap(api.GET("/api/v1/connections/{id}/containers", { params: { path: { id: Number(connectionId) } } })),
    enabled: connectionId !== "",
    ...DISCOVERY,
  });
}

export function useDescription(connectionId: string, container: string) {
  return useQuery({
    queryKey: ["builder", "describe", connectionId, container],
    queryFn: (): Promise<Description> =>
      unwrap(api.GET("/api/v1/connections/{id}/containers/{container}", { params: { path: { id: Number(connectionId), container } } })),
    enabled: connectionId !== "" && container !== "",
    ...DISCOVERY,
  });
}

/** The people who can be assigned in a container (up to the API's 200; `truncated` says when there are more). */
export function useUsers(connectionId: string, container: string, enabled: boolean) {
  return useQuery({
    queryKey: ["builder", "users", connectionId, container],
    queryFn: () =>
      unwrap(api.GET("/api/v1/connections/{id}/containers/{container}/users", {
        params: { path: { id: Number(connectionId), container }, query: { limit: 200 } },
      })),
    enabled: enabled && connectionId !== "" && container !== "",
    ...DISCOVERY,
  });
}

export interface SuggestInput {
  statuses?: [Description["statuses"], Description["statuses"]];
  names?: [string[], string[]];
  users?: [RemoteUser[], RemoteUser[]];
}

/** The API's suggested pairs for one set of values (statuses with categories, or plain names) and users. */
export function suggest(input: SuggestInput): Promise<Suggestions> {
  return unwrap(api.POST("/api/v1/integrations/suggest", {
    body: {
      a: { statuses: input.statuses?.[0] ?? [], priorities: input.names?.[0] ?? [], users: input.users?.[0] ?? [] },
      b: { statuses: input.statuses?.[1] ?? [], priorities: input.names?.[1] ?? [], users: input.users?.[1] ?? [] },
    },
  }));
}

export function useIntegration(id: number | null) {
  return useQuery({
    queryKey: ["integrations", id],
    queryFn: () => unwrap(api.GET("/api/v1/integrations/{id}", { params: { path: { id: id as number } } })),
    enabled: id !== null,
    refetchOnWindowFocus: false,
  });
}
