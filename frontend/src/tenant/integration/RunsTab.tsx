/**
 * The runs tab: newest first, each with its counts (items, API calls, errors, rate-limit
 * waits, duration); a run still going shows its counts so far, refreshed by polling.
 */
import { Badge, Button, Group, Table, Text } from "@mantine/core";
import { api, unwrap } from "../../api/client";
import { QueryState } from "../../components/QueryState";
import { formatDateTime, formatDuration, formatRelative } from "../../lib/format";
import { useCursorList } from "../../lib/paging";
import { integrationKey, POLL_MS } from "./queries";
import { RUN_STATUS, runSeconds, TRIGGER } from "./runs";

export function RunsTab({ id }: { id: number }) {
  const list = useCursorList(
    [...integrationKey(id), "runs"],
    (cursor) => unwrap(api.GET("/api/v1/integrations/{id}/runs", { params: { path: { id }, query: { cursor, limit: 25 } } })),
    { refetchInterval: POLL_MS },
  );
  const now = Date.now();
  return (
    <QueryState query={list.query} what="the runs">
      {() =>
        list.items.length === 0 ? (
          <Text>No runs yet. A run starts when the integration is enabled, on its schedule, or with "Sync now".</Text>
        ) : (
          <>
            <Table.ScrollContainer minWidth={1000}>
              <Table striped highlightOnHover aria-label="Runs">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Started</Table.Th>
                    <Table.Th>Trigger</Table.Th>
                    <Table.Th>Status</Table.Th>
                    <Table.Th>Duration</Table.Th>
                    <Table.Th>Items</Table.Th>
                    <Table.Th>Comments</Table.Th>
                    <Table.Th>Conflicts</Table.Th>
                    <Table.Th>Errors</Table.Th>
                    <Table.Th>API calls</Table.Th>
                    <Table.Th>Retries</Table.Th>
                    <Table.Th>Rate-limit waits</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {list.items.map((run) => (
                    <Table.Tr key={run.id}>
                      <Table.Td>
                        <time dateTime={run.started_at} title={formatDateTime(run.started_at)}>
                          {formatRelative(run.started_at, now)}
                        </time>
                      </Table.Td>
                      <Table.Td>{TRIGGER[run.trigger] ?? run.trigger}</Table.Td>
                      <Table.Td>
                        <Badge color={RUN_STATUS[run.status].color} variant="light">
                          {RUN_STATUS[run.status].label}
                        </Badge>
                        {run.error ? (
                          <Text size="xs" c="red.8" maw={260}>
                            {run.error}
                          </Text>
                        ) : null}
                      </Table.Td>
                      <Table.Td>
                        {formatDuration(runSeconds(run, now))}
                        {run.status === "running" ? " so far" : ""}
                      </Table.Td>
                      <Table.Td>
                        <span title={`${run.items_created} created, ${run.items_updated} updated of ${run.items_seen} looked at`}>
                          {run.items_seen} seen · {run.items_created} created · {run.items_updated} updated
                        </span>
                      </Table.Td>
                      <Table.Td>{run.comments_created}</Table.Td>
                      <Table.Td>{run.conflicts}</Table.Td>
                      <Table.Td>{run.errors}</Table.Td>
                      <Table.Td>{run.api_calls}</Table.Td>
                      <Table.Td>{run.retries}</Table.Td>
                      <Table.Td>{run.rate_limit_wait_seconds ? formatDuration(run.rate_limit_wait_seconds) : "none"}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </Table.ScrollContainer>
            <MoreButton list={list} what="runs" />
          </>
        )
      }
    </QueryState>
  );
}

/** "Load more" under a cursor-paged list, while there is more. */
export function MoreButton({ list, what }: { list: { hasMore: boolean; more: () => unknown; loadingMore: boolean }; what: string }) {
  if (!list.hasMore) {
    return null;
  }
  return (
    <Group justify="center" mt="sm">
      <Button variant="default" onClick={() => list.more()} loading={list.loadingMore}>
        Load more {what}
      </Button>
    </Group>
  );
}
