/**
 * The tenant's start page: its integrations with their state, sides, last run, lag and the
 * items needing attention (failing items, held conflicts), refreshed while visible so a run
 * starting or ending shows without a reload. Editors get "New integration".
 */
import { Link } from "react-router";
import { useQueries } from "@tanstack/react-query";
import { Anchor, Badge, Button, Group, Paper, Stack, Table, Text, Title, VisuallyHidden } from "@mantine/core";
import { api, unwrap, type Schemas } from "../api/client";
import { can, useMe } from "../auth";
import { PageHeader } from "../components/PageHeader";
import { QueryState } from "../components/QueryState";
import { formatDateTime, formatDuration, formatRelative } from "../lib/format";
import { useCursorList } from "../lib/paging";
import { integrationKey, POLL_MS, useConnections } from "./integration/queries";
import { RUN_STATUS, STATE } from "./integration/runs";
import { sideNames } from "./integration/sides";
import { MoreButton } from "./integration/RunsTab";

type Integration = Schemas["IntegrationOut"];
type Overview = Schemas["Overview"];

export function IntegrationsPage() {
  const editor = can(useMe(), "editor");
  const list = useCursorList(
    ["integrations"],
    (cursor) => unwrap(api.GET("/api/v1/integrations", { params: { query: { cursor, limit: 50 } } })),
    { refetchInterval: POLL_MS * 2 },
  );
  const connections = useConnections();
  // Lag and a run in progress come with each integration's overview (the list does not carry them).
  const overviews = useQueries({
    queries: list.items.map((item) => ({
      queryKey: [...integrationKey(item.id), "overview"],
      queryFn: () => unwrap(api.GET("/api/v1/integrations/{id}/overview", { params: { path: { id: item.id } } })),
      refetchInterval: POLL_MS * 2,
    })),
  });
  const newButton = editor ? (
    <Button component={Link} to="/integrations/new">
      New integration
    </Button>
  ) : undefined;
  return (
    <>
      <PageHeader title="Integrations" description="What Tandem keeps in step between your apps." actions={newButton} />
      <QueryState query={list.query} what="the integrations">
        {() =>
          list.items.length === 0 ? (
            <Paper withBorder p="xl" radius="md">
              <Stack align="flex-start" gap="xs">
                <Title order={3} size="h4">
                  No integrations yet
                </Title>
                <Text>
                  An integration keeps the items of two projects in step, both ways.{" "}
                  {editor ? "Connect your apps under Connections, then create one here." : "An editor of this workspace can create one."}
                </Text>
              </Stack>
            </Paper>
          ) : (
            <>
              <Table.ScrollContainer minWidth={1000}>
                <Table striped highlightOnHover aria-label="Integrations" verticalSpacing="sm">
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>Name</Table.Th>
                      <Table.Th>State</Table.Th>
                      <Table.Th>Sides</Table.Th>
                      <Table.Th>Last run</Table.Th>
                      <Table.Th>Lag</Table.Th>
                      <Table.Th>Needs attention</Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {list.items.map((item, index) => (
                      <Row key={item.id} item={item} overview={overviews[index]?.data} connections={connections.data ?? []} />
                    ))}
                  </Table.Tbody>
                </Table>
              </Table.ScrollContainer>
              <MoreButton list={list} what="integrations" />
            </>
          )
        }
      </QueryState>
    </>
  );
}

function Row({ item, overview, connections }: { item: Integration; overview?: Overview; connections: Schemas["ConnectionOut"][] }) {
  const sides = sideNames(item.spec, connections);
  const state = STATE[item.state];
  const lastRun = overview ? overview.last_run : item.last_run;
  const running = overview?.current_run ?? (item.last_run?.status === "running" ? item.last_run : null);
  const failing = overview?.failing_items ?? item.failing_items;
  const conflicts = overview?.open_conflicts ?? item.open_conflicts;
  return (
    <Table.Tr>
      <Table.Td>
        <Anchor component={Link} to={`/integrations/${item.id}`} fw={600}>
          {item.name}
        </Anchor>
      </Table.Td>
      <Table.Td>
        <Group gap={6}>
          <Badge color={state.color} variant="light">
            {state.label}
          </Badge>
          {running ? (
            <Badge color="blue" variant="dot">
              Running · {running.items_seen} items
            </Badge>
          ) : null}
        </Group>
      </Table.Td>
      <Table.Td>
        <Text size="sm">
          {sides.a.app} · {sides.a.container}
        </Text>
        <Text size="sm">
          <span aria-hidden>⇄ </span>
          <VisuallyHidden>and </VisuallyHidden>
          {sides.b.app} · {sides.b.container}
        </Text>
      </Table.Td>
      <Table.Td>
        {lastRun && lastRun.status !== "running" ? (
          <Group gap={6}>
            <Badge color={RUN_STATUS[lastRun.status].color} variant="light">
              {RUN_STATUS[lastRun.status].label}
            </Badge>
            <time dateTime={lastRun.finished_at ?? lastRun.started_at} title={formatDateTime(lastRun.finished_at ?? lastRun.started_at)}>
              {formatRelative(lastRun.finished_at ?? lastRun.started_at)}
            </time>
          </Group>
        ) : (
          <Text size="sm" c="dimmed">
            {running ? "First run going" : "No run yet"}
          </Text>
        )}
      </Table.Td>
      <Table.Td>{overview ? (overview.lag_seconds === null ? "—" : formatDuration(overview.lag_seconds)) : "…"}</Table.Td>
      <Table.Td>
        {failing || conflicts ? (
          <Group gap={6}>
            {failing ? (
              <Badge color="red" variant="light" component={Link} to={`/integrations/${item.id}/failed`} style={{ cursor: "pointer" }}>
                {failing} failing {failing === 1 ? "item" : "items"}
              </Badge>
            ) : null}
            {conflicts ? (
              <Badge color="orange" variant="light" component={Link} to={`/integrations/${item.id}/conflicts`} style={{ cursor: "pointer" }}>
                {conflicts} {conflicts === 1 ? "conflict" : "conflicts"}
              </Badge>
            ) : null}
          </Group>
        ) : (
          <Text size="sm" c="dimmed">
            Nothing
          </Text>
        )}
      </Table.Td>
    </Table.Tr>
  );
}
