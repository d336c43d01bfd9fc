/**
 * The failed items tab: each item that failed, with its error and when the engine tries it
 * again (with backoff, while the rest flows on); editors can retry one now.
 */
import { useMutation } from "@tanstack/react-query";
import { Alert, Button, Table, Text } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { api, messageOf, unwrap, type Schemas } from "../../api/client";
import { can, useMe } from "../../auth";
import { QueryState } from "../../components/QueryState";
import { formatDateTime, formatRelative } from "../../lib/format";
import { useCursorList } from "../../lib/paging";
import { integrationKey, POLL_MS, useRefreshIntegration } from "./queries";
import { MoreButton } from "./RunsTab";
import type { SideNames } from "./sides";

type Failed = Schemas["ItemErrorOut"];

export function FailedTab({ id, sides }: { id: number; sides: SideNames }) {
  const editor = can(useMe(), "editor");
  const refresh = useRefreshIntegration(id);
  const list = useCursorList(
    [...integrationKey(id), "errors"],
    (cursor) => unwrap(api.GET("/api/v1/integrations/{id}/errors", { params: { path: { id }, query: { cursor, limit: 50 } } })),
    { refetchInterval: POLL_MS },
  );
  const retry = useMutation({
    mutationFn: (item: Failed) =>
      unwrap(api.POST("/api/v1/integrations/{id}/items/retry", { params: { path: { id } }, body: { side: item.side, item_id: item.item_id } })),
    onSuccess: (item) => {
      notifications.show({ title: "Retry queued", message: `${item.item_key || item.item_id} is tried again within seconds.` });
      refresh();
    },
  });
  const now = Date.now();
  return (
    <QueryState query={list.query} what="the failed items">
      {() =>
        list.items.length === 0 ? (
          <Text>No item is failing.</Text>
        ) : (
          <>
            {retry.isError ? (
              <Alert color="red" role="alert" title="Not retried" mb="sm">
                {messageOf(retry.error)}
              </Alert>
            ) : null}
            <Table.ScrollContainer minWidth={900}>
              <Table striped aria-label="Failed items" verticalSpacing="sm">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Item</Table.Th>
                    <Table.Th>Error</Table.Th>
                    <Table.Th>Attempts</Table.Th>
                    <Table.Th>Failing since</Table.Th>
                    <Table.Th>Next attempt</Table.Th>
                    {editor ? (
                      <Table.Th>
                        Action
                      </Table.Th>
                    ) : null}
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {list.items.map((item) => {
                    const name = item.item_key || item.item_id;
                    const retrying = retry.isPending && retry.variables?.side === item.side && retry.variables.item_id === item.item_id;
                    return (
                      <Table.Tr key={`${item.side}:${item.item_id}`}>
                        <Table.Td>
                          <Text fw={500}>{name}</Text>
                          <Text size="xs" c="dimmed">
                            {sides[item.side].app} (side {item.side.toUpperCase()})
                          </Text>
                        </Table.Td>
                        <Table.Td>
                          <Text size="sm" c="red.8" style={{ overflowWrap: "anywhere" }}>
                            {item.error}
                          </Text>
                        </Table.Td>
                        <Table.Td>{item.attempts}</Table.Td>
                        <Table.Td>
                          <time dateTime={item.first_failed_at} title={formatDateTime(item.first_failed_at)}>
                            {formatRelative(item.first_failed_at, now)}
                          </time>
                        </Table.Td>
                        <Table.Td>
                          <time dateTime={item.next_attempt_at} title={formatDateTime(item.next_attempt_at)}>
                            {new Date(item.next_attempt_at).getTime() <= now ? "now" : formatRelative(item.next_attempt_at, now)}
                          </time>
                        </Table.Td>
                        {editor ? (
                          <Table.Td>
                            <Button size="xs" onClick={() => retry.mutate(item)} loading={retrying} aria-label={`Retry ${name}`}>
                              Retry
                            </Button>
                          </Table.Td>
                        ) : null}
                      </Table.Tr>
                    );
                  })}
                </Table.Tbody>
              </Table>
            </Table.ScrollContainer>
            <MoreButton list={list} what="failed items" />
          </>
        )
      }
    </QueryState>
  );
}
