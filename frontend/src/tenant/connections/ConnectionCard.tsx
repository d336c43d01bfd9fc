import { useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Anchor, Badge, Button, Group, Paper, Stack, Text, Title } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { Link } from "react-router";
import { api, unwrap } from "../../api/client";
import { formatDateTime, formatRelative } from "../../lib/format";
import { ConfirmModal } from "../../shared/ConfirmModal";
import { APPS, appOf, type Connection } from "./apps";
import { EditConnectionModal } from "./EditConnectionModal";
import { RotateCredentialModal } from "./RotateCredentialModal";
import { TestProgress, TestResultView } from "./TestResultView";

/**
 * One connection: its app, address, account and last test, the integrations using it, and
 * (for editors) test, edit, rotate credential and delete. A region named after the
 * connection, so its buttons are found within it.
 */
export function ConnectionCard({ connection, editable }: { connection: Connection; editable: boolean }) {
  const client = useQueryClient();
  const [modal, setModal] = useState<"edit" | "rotate" | "delete" | null>(null);
  const test = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/connections/{id}/test", { params: { path: { id: connection.id } } })),
    onSettled: () => client.invalidateQueries({ queryKey: ["connections"] }),
  });
  const remove = useMutation({
    mutationFn: () => unwrap(api.DELETE("/api/v1/connections/{id}", { params: { path: { id: connection.id } } })),
    onSuccess: () => {
      setModal(null);
      notifications.show({ message: `Connection ${connection.name} deleted.` });
      client.invalidateQueries({ queryKey: ["connections"] });
    },
  });
  const app = APPS[appOf(connection)];
  const headingId = `connection-${connection.id}`;
  const last = connection.last_test;
  const host = connection.base_url.replace(/^https?:\/\//, "");
  return (
    <Paper withBorder p="md" component="section" aria-labelledby={headingId}>
      <Stack gap="sm">
        <Group justify="space-between" align="flex-start" wrap="nowrap">
          <Stack gap={2}>
            <Group gap="xs">
              <Title order={3} size="h4" id={headingId}>
                {connection.name}
              </Title>
              <Badge variant="light">{app.label}</Badge>
              {connection.kind === "jira" && !connection.options.flavor && (
                <Badge variant="outline" color="gray">
                  edition auto-detected
                </Badge>
              )}
            </Group>
            <Text size="sm" c="dimmed">
              {connection.base_url}
            </Text>
          </Stack>
          {editable && (
            <Group gap="xs" wrap="nowrap">
              <Button size="xs" onClick={() => test.mutate()} loading={test.isPending}>
                Test connection
              </Button>
              <Button size="xs" variant="default" onClick={() => setModal("edit")}>
                Edit
              </Button>
              <Button size="xs" variant="default" onClick={() => setModal("rotate")}>
                Rotate credential
              </Button>
              <Button size="xs" variant="light" color="red" onClick={() => setModal("delete")}>
                Delete
              </Button>
            </Group>
          )}
        </Group>
        <Group gap="xl" align="flex-start">
          <Stack gap={2}>
            <Text size="xs" c="dimmed">
              Account
            </Text>
            <Text size="sm">{connection.account ? `${connection.account.name}${connection.account.email ? ` (${connection.account.email})` : ""}` : "unknown until tested"}</Text>
          </Stack>
          <Stack gap={2}>
            <Text size="xs" c="dimmed">
              Credential
            </Text>
            <Text size="sm">{connection.credential_fields.length ? connection.credential_fields.join(" + ") : "cannot be read here: rotate it"}</Text>
          </Stack>
          <Stack gap={2}>
            <Text size="xs" c="dimmed">
              Last test
            </Text>
            {last ? (
              <Group gap={6}>
                <Badge color={last.ok ? "green" : "red"} variant="light">
                  {last.ok ? "passed" : "failed"}
                </Badge>
                <Text size="sm" title={formatDateTime(last.at)}>
                  {formatRelative(last.at)}
                </Text>
              </Group>
            ) : (
              <Text size="sm">never tested</Text>
            )}
          </Stack>
          <Stack gap={2}>
            <Text size="xs" c="dimmed">
              Used by
            </Text>
            {connection.used_by.length === 0 ? (
              <Text size="sm">no integration</Text>
            ) : (
              <Group gap="xs">
                {connection.used_by.map((integration) => (
                  <Anchor key={integration.id} component={Link} to={`/integrations/${integration.id}`} size="sm">
                    {integration.name}
                  </Anchor>
                ))}
              </Group>
            )}
          </Stack>
        </Group>
        {last && !last.ok && !test.data && !test.isPending && (
          <Text size="sm" c="red">
            Last test: {last.detail}
          </Text>
        )}
        {test.isPending && <TestProgress host={host} />}
        {test.data && !test.isPending && <TestResultView result={test.data} onDismiss={() => test.reset()} />}
        {test.isError && !test.isPending && (
          <Text size="sm" c="red" role="alert">
            The test could not run: {test.error.message}
          </Text>
        )}
      </Stack>
      {modal === "edit" && <EditConnectionModal connection={connection} opened onClose={() => setModal(null)} />}
      {modal === "rotate" && (
        <RotateCredentialModal
          connection={connection}
          opened
          onClose={() => setModal(null)}
          onRotated={() => {
            notifications.show({ message: `Credential of ${connection.name} replaced. Testing it…` });
            test.mutate();
          }}
        />
      )}
      <ConfirmModal
        opened={modal === "delete"}
        onClose={() => {
          setModal(null);
          remove.reset();
        }}
        title={`Delete connection ${connection.name}`}
        action="Delete connection"
        onConfirm={() => remove.mutate()}
        pending={remove.isPending}
        error={remove.error}
      >
        {connection.used_by.length
          ? `Integrations use it (${connection.used_by.map((i) => i.name).join(", ")}): the appliance will refuse until they are changed or deleted.`
          : "Its stored credential is deleted with it."}
      </ConfirmModal>
    </Paper>
  );
}
