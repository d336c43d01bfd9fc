/**
 * The integration page's data, kept fresh while the page is visible: react-query polls every
 * POLL_MS (and stops while the tab is hidden), so a run's progress, arriving items and new
 * conflicts show up without a reload. Every key starts with integrationKey(id), so one
 * invalidation after an action refreshes the whole page.
 */
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, unwrap } from "../../api/client";
import { useAllConnections } from "../../lib/connections";
import { sideNames, type SideNames } from "./sides";

export const POLL_MS = 4000;

export const integrationKey = (id: number) => ["integration", id] as const;

export function useIntegration(id: number) {
  return useQuery({
    queryKey: [...integrationKey(id), "detail"],
    queryFn: () => unwrap(api.GET("/api/v1/integrations/{id}", { params: { path: { id } } })),
    refetchInterval: POLL_MS,
  });
}

export function useOverview(id: number) {
  return useQuery({
    queryKey: [...integrationKey(id), "overview"],
    queryFn: () => unwrap(api.GET("/api/v1/integrations/{id}/overview", { params: { path: { id } } })),
    refetchInterval: POLL_MS,
  });
}

export function useSeries(id: number, hours: number) {
  return useQuery({
    queryKey: [...integrationKey(id), "series", hours],
    queryFn: () => unwrap(api.GET("/api/v1/integrations/{id}/series", { params: { path: { id }, query: { hours } } })),
    refetchInterval: hours <= 24 ? POLL_MS * 2 : 60_000,
    placeholderData: (previous) => previous,
  });
}

/** The tenant's connections (to name the sides). */
export const useConnections = useAllConnections;

/** The sides' names, once the integration is loaded ("Side A"/"Side B" until the connections are). */
export function useSideNames(spec: Parameters<typeof sideNames>[0] | undefined): SideNames | null {
  const connections = useConnections();
  return spec ? sideNames(spec, connections.data ?? []) : null;
}

/** Refresh everything on the integration's page (after an action). */
export function useRefreshIntegration(id: number) {
  const client = useQueryClient();
  return () => client.invalidateQueries({ queryKey: integrationKey(id) });
}
