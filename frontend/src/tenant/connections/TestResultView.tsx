import { useEffect, useState } from "react";
import { Alert, Anchor, Badge, Button, Group, Loader, Progress, Stack, Table, Text } from "@mantine/core";
import type { Schemas } from "../../api/client";
import { formatDateTime } from "../../lib/format";

type TestResult = Schemas["TestResult"];
const SHOWN = 20;

/** While a test runs: what it is doing and for how long (the API allows it up to a minute). */
export function TestProgress({ host }: { host: string }) {
  const [seconds, setSeconds] = useState(0);
  useEffect(() => {
    const started = Date.now();
    const timer = window.setInterval(() => setSeconds(Math.floor((Date.now() - started) / 1000)), 500);
    return () => window.clearInterval(timer);
  }, []);
  return (
    <Stack gap={4} role="status" aria-live="polite">
      <Group gap="xs">
        <Loader size="xs" aria-hidden />
        <Text size="sm">
          Testing connection: signing in to {host} and listing what the credential can see… {seconds > 0 && `${seconds} s`}
        </Text>
      </Group>
      <Progress value={100} animated striped aria-label="Testing connection" />
    </Stack>
  );
}

/** What a test saw: the account, the containers (projects) and the permissions, or why it failed. */
export function TestResultView({ result, onDismiss }: { result: TestResult; onDismiss: () => void }) {
  const [all, setAll] = useState(false);
  const containers = all ? result.containers : result.containers.slice(0, SHOWN);
  return (
    <Alert
      color={result.ok ? "green" : "red"}
      role={result.ok ? "status" : "alert"}
      title={result.ok ? "Connection works" : "Connection failed"}
      withCloseButton
      closeButtonLabel="Dismiss the test result"
      onClose={onDismiss}
    >
      <Stack gap="sm">
        <Text size="sm">{result.detail}</Text>
        <Text size="xs" c="dimmed">
          Tested {formatDateTime(result.tested_at)}
        </Text>
        {result.account && (
          <Text size="sm">
            Signed in as <b>{result.account.name}</b>
            {result.account.email && ` (${result.account.email})`}
            {result.account.login && ` · login ${result.account.login}`}
          </Text>
        )}
        {result.permissions.length > 0 && (
          <Group gap={4} aria-label="Permissions">
            <Text size="sm">Permissions:</Text>
            {result.permissions.map((permission) => (
              <Badge key={permission} variant="outline" color="gray" tt="none">
                {permission}
              </Badge>
            ))}
          </Group>
        )}
        {result.ok && (
          <>
            <Text size="sm">
              {result.containers.length === 0 ? "It sees no projects: check the account's access." : `It sees ${result.containers.length} project(s):`}
            </Text>
            {result.containers.length > 0 && (
              <Table withTableBorder aria-label="Projects the credential can see" bg="var(--mantine-color-body)">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Key</Table.Th>
                    <Table.Th>Name</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {containers.map((container) => (
                    <Table.Tr key={container.id}>
                      <Table.Td>{container.key}</Table.Td>
                      <Table.Td>
                        {container.url ? (
                          <Anchor href={container.url} target="_blank" rel="noreferrer">
                            {container.name}
                          </Anchor>
                        ) : (
                          container.name
                        )}
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            )}
            {result.containers.length > SHOWN && (
              <Button size="xs" variant="subtle" w="fit-content" onClick={() => setAll(!all)}>
                {all ? `Show the first ${SHOWN}` : `Show all ${result.containers.length} projects`}
              </Button>
            )}
          </>
        )}
      </Stack>
    </Alert>
  );
}
