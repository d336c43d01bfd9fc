/**
 * Step 1: the two sides, each a connection and one of the projects it sees. Choosing a
 * project asks the app to describe it (item types, fields, statuses); that is shown here
 * with its progress, so that a wrong credential or an unreachable app shows up at once.
 * Changing a side forgets the mappings made for the old one.
 */
import { Anchor, Badge, Card, Group, Loader, NativeSelect, SimpleGrid, Stack, Text, Title } from "@mantine/core";
import { Link } from "react-router";
import { ErrorNote, QueryState } from "../../components/QueryState";
import type { Errors, FormState } from "./logic";
import type { Change } from "./IntegrationBuilder";
import { useConnections, useContainers, type Connection, type useDescription } from "./queries";

type DescQuery = ReturnType<typeof useDescription>;

interface Props {
  form: FormState;
  change: Change;
  errors: Errors;
  descA: DescQuery;
  descB: DescQuery;
}

const KIND = { jira: "Jira", gitlab: "GitLab" } as const;

export function SidesStep({ form, change, errors, descA, descB }: Props) {
  const connections = useConnections();
  return (
    <QueryState query={connections} what="connections">
      {(list) =>
        list.length === 0 ? (
          <Text>
            There are no connections yet. <Anchor component={Link} to="/connections">Add a connection</Anchor> to each app first.
          </Text>
        ) : (
          <SimpleGrid cols={2} spacing="lg">
            <SidePicker side="A" list={list} form={form} change={change} errors={errors} description={descA} />
            <SidePicker side="B" list={list} form={form} change={change} errors={errors} description={descB} />
          </SimpleGrid>
        )
      }
    </QueryState>
  );
}

function SidePicker({ side, list, form, change, errors, description }: {
  side: "A" | "B"; list: Connection[]; form: FormState; change: Change; errors: Errors; description: DescQuery;
}) {
  const key = side === "A" ? "sideA" : "sideB";
  const value = form[key];
  const containers = useContainers(value.connectionId);
  const connection = list.find((c) => String(c.id) === value.connectionId);

  // A different side means different types, fields and values: the rows made for the old one go.
  const setSide = (connectionId: string, container: string) =>
    change((draft) => {
      const chosen = (containers.data?.containers ?? []).find((c) => c.id === container);
      draft[key] = { connectionId, container, label: chosen ? `${chosen.name} (${chosen.key})` : undefined };
      draft.types = [];
      draft.fields = [];
      draft.users.pairs = [];
      draft.filters[side === "A" ? "a" : "b"] = { types: [], labels: [] };
    });

  const options = containers.data?.containers ?? [];
  // A stored container may be given by key or id; keep it selectable even before the list loads.
  const known = options.some((c) => c.id === value.container);
  return (
    <Card withBorder padding="md">
      <Stack gap="sm">
        <Title order={3} size="h4">Side {side}</Title>
        <NativeSelect
          label={`Side ${side} connection`}
          value={value.connectionId}
          onChange={(e) => setSide(e.currentTarget.value, "")}
          error={errors[`${key}.connectionId`]}
          description={connection ? `${KIND[connection.kind]} at ${connection.base_url}` : "One of this workspace's connections"}
          data={[{ value: "", label: "Choose a connection" }, ...list.map((c) => ({ value: String(c.id), label: c.name }))]}
        />
        {value.connectionId !== "" && containers.isPending && (
          <Group gap="xs" role="status">
            <Loader size="xs" aria-hidden />
            <Text size="sm">Asking {connection?.name ?? "the app"} which projects it sees…</Text>
          </Group>
        )}
        {containers.isError && (
          <ErrorNote error={containers.error} title={`Could not list the projects of ${connection?.name ?? "this connection"}`}
            onRetry={() => containers.refetch()} />
        )}
        <NativeSelect
          label={`Side ${side} project`}
          description={connection?.kind === "gitlab" ? "A GitLab project (repository)" : connection ? "A Jira project" : undefined}
          value={value.container}
          disabled={value.connectionId === "" || containers.isPending}
          onChange={(e) => setSide(value.connectionId, e.currentTarget.value)}
          error={errors[`${key}.container`]}
          data={[{ value: "", label: containers.isPending && value.connectionId ? "Loading…" : "Choose a project" },
            ...(value.container && !known ? [{ value: value.container, label: value.container }] : []),
            ...options.map((c) => ({ value: c.id, label: `${c.name} (${c.key})` }))]}
        />
        {value.container !== "" && <DescriptionSummary description={description} />}
      </Stack>
    </Card>
  );
}

function DescriptionSummary({ description }: { description: DescQuery }) {
  if (description.isPending) {
    return (
      <Group gap="xs" role="status">
        <Loader size="xs" aria-hidden />
        <Text size="sm">Reading its item types, fields and statuses…</Text>
      </Group>
    );
  }
  if (description.isError) {
    return <ErrorNote error={description.error} title="Could not read the project" onRetry={() => description.refetch()} />;
  }
  const d = description.data;
  return (
    <Group gap="xs" aria-label={`${d.name} described`}>
      <Badge variant="light" color="green">Read</Badge>
      <Text size="sm">
        {d.item_types.length} item types, {d.fields.length} fields, {d.statuses.length} statuses, {d.priorities.length} priorities
      </Text>
    </Group>
  );
}
