/**
 * The overview tab: activity charts, the last 24 hours in figures, and the webhook URLs to
 * register with each app (the fast path; the poll stays the safety net).
 */
import type { UseQueryResult } from "@tanstack/react-query";
import { Code, CopyButton, Button, Group, Paper, SimpleGrid, Stack, Table, Text, Title } from "@mantine/core";
import type { Schemas } from "../../api/client";
import { can, useMe } from "../../auth";
import { formatDuration } from "../../lib/format";
import { ActivityCharts } from "./ActivityCharts";
import { useSideNames } from "./queries";

export function OverviewTab({ id, integration, overview }: {
  id: number;
  integration: Schemas["IntegrationOut"];
  overview: UseQueryResult<Schemas["Overview"]>;
}) {
  const sides = useSideNames(integration.spec)!;
  // The URLs hold the webhook secret: shown to those who may set the integration up.
  const showHooks = can(useMe(), "editor");
  const day = overview.data?.last_24h;
  return (
    <Stack gap="lg">
      <ActivityCharts id={id} />
      <SimpleGrid cols={{ base: 1, lg: 2 }} spacing="md">
        {day ? (
          <Paper withBorder p="md" radius="md" component="section" aria-labelledby="day-title">
            <Title order={3} size="h5" id="day-title" mb="xs">
              Last 24 hours
            </Title>
            <Table>
              <Table.Tbody>
                {[
                  ["Runs", `${day.runs} (${day.failed_runs} failed)`],
                  ["Items created", day.items_created],
                  ["Items updated", day.items_updated],
                  ["Comments copied", day.comments_created],
                  ["Item errors", day.errors],
                  ["API calls", day.api_calls],
                  ["Rate-limit waits", day.rate_limit_wait_seconds ? formatDuration(day.rate_limit_wait_seconds) : "none"],
                  ["Webhook deliveries waiting", overview.data?.pending_webhooks ?? 0],
                ].map(([label, value]) => (
                  <Table.Tr key={label}>
                    <Table.Th scope="row" fw={500}>
                      {label}
                    </Table.Th>
                    <Table.Td>{value}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Paper>
        ) : null}
        {showHooks ? (
        <Paper withBorder p="md" radius="md" component="section" aria-labelledby="hooks-title">
          <Title order={3} size="h5" id="hooks-title" mb="xs">
            Webhooks
          </Title>
          <Text size="sm" c="dimmed" mb="sm">
            Register these URLs with each app so changes arrive within a second; without them, changes arrive on the next scheduled poll
            (every {integration.spec.schedule?.interval_seconds ?? 60} s).
          </Text>
          <Stack gap="sm">
            {(["a", "b"] as const).map((side) => (
              <div key={side}>
                <Text size="sm" fw={500}>
                  Side {side.toUpperCase()}: {sides[side].app} · {sides[side].container} ({sides[side].connection})
                </Text>
                <Group gap="xs" wrap="nowrap">
                  <Code style={{ overflowWrap: "anywhere", flex: 1 }}>{integration.webhook_urls[side]}</Code>
                  <CopyButton value={integration.webhook_urls[side]}>
                    {({ copied, copy }) => (
                      <Button size="xs" variant="light" onClick={copy} style={{ flexShrink: 0 }} aria-label={`Copy the webhook URL of side ${side.toUpperCase()}`}>
                        {copied ? "Copied" : "Copy"}
                      </Button>
                    )}
                  </CopyButton>
                </Group>
              </div>
            ))}
          </Stack>
        </Paper>
        ) : null}
      </SimpleGrid>
    </Stack>
  );
}
