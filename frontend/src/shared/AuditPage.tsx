import { useState } from "react";
import { Autocomplete, Button, Group, Stack, Table, Text, TextInput } from "@mantine/core";
import { useDebouncedValue } from "@mantine/hooks";
import { api, unwrap } from "../api/client";
import { boot } from "../boot";
import { PageHeader } from "../components/PageHeader";
import { QueryState } from "../components/QueryState";
import { formatDateTime, formatRelative } from "../lib/format";
import { useCursorList } from "../lib/paging";
import { ACTION_SUGGESTIONS, auditQuery, describeDetails, NO_FILTERS, type AuditFilters } from "./auditFilters";
import { LoadMore } from "../components/LoadMore";

/**
 * The realm's audit log (the cluster's on the console, the tenant's on its host), newest
 * first, filtered by action (a prefix when it ends in "."), actor and target.
 */
export function AuditPage() {
  const [filters, setFilters] = useState<AuditFilters>(NO_FILTERS);
  const [applied] = useDebouncedValue(filters, 400);
  const query = auditQuery(applied);
  const list = useCursorList(["audit", query], (cursor) => unwrap(api.GET("/api/v1/audit", { params: { query: { cursor, limit: 100, ...query } } })));
  const set = (key: keyof AuditFilters) => (value: string) => setFilters((current) => ({ ...current, [key]: value }));
  const filtered = Object.keys(query).length > 0;
  return (
    <>
      <PageHeader
        title="Audit log"
        description={boot.realm === "tenant" ? "Sign-ins and every change to users, tokens, connections and integrations in this workspace." : "Console sign-ins, cluster admins and every change to tenants."}
        actions={
          <Button variant="default" onClick={() => list.query.refetch()} loading={list.query.isRefetching && !list.loadingMore}>
            Refresh
          </Button>
        }
      />
      <Stack>
        <Group align="flex-end" role="search" aria-label="Filter the audit log">
          <Autocomplete
            label="Action"
            description='Ending in "." matches a family, e.g. login.'
            data={ACTION_SUGGESTIONS[boot.realm]}
            value={filters.action}
            onChange={set("action")}
            w={240}
          />
          <TextInput label="Actor" description="Who did it (e-mail address)" value={filters.actor} onChange={(event) => set("actor")(event.currentTarget.value)} w={240} />
          <TextInput label="Target" description="What it was done to" value={filters.target} onChange={(event) => set("target")(event.currentTarget.value)} w={240} />
          {filtered && (
            <Button variant="subtle" onClick={() => setFilters(NO_FILTERS)}>
              Clear filters
            </Button>
          )}
        </Group>
        <QueryState query={list.query} what="the audit log">
          {() =>
            list.items.length === 0 ? (
              <Text c="dimmed">{filtered ? "No entries match these filters." : "No entries yet."}</Text>
            ) : (
              <Table.ScrollContainer minWidth={1000}>
                <Table striped aria-label="Audit log entries">
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>When</Table.Th>
                      <Table.Th>Actor</Table.Th>
                      <Table.Th>Action</Table.Th>
                      <Table.Th>Target</Table.Th>
                      <Table.Th>From</Table.Th>
                      <Table.Th>Details</Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {list.items.map((entry) => (
                      <Table.Tr key={entry.id}>
                        <Table.Td title={formatDateTime(entry.at)} style={{ whiteSpace: "nowrap" }}>
                          {formatRelative(entry.at)}
                        </Table.Td>
                        <Table.Td>{entry.actor}</Table.Td>
                        <Table.Td>
                          <Text size="sm" ff="monospace">
                            {entry.action}
                          </Text>
                        </Table.Td>
                        <Table.Td>{entry.target || "—"}</Table.Td>
                        <Table.Td>{entry.client_addr ?? "—"}</Table.Td>
                        <Table.Td maw={420}>
                          <Text size="sm" style={{ wordBreak: "break-word" }}>
                            {describeDetails(entry.details)}
                          </Text>
                        </Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              </Table.ScrollContainer>
            )
          }
        </QueryState>
        <LoadMore list={list} label="Load older entries" />
      </Stack>
    </>
  );
}
