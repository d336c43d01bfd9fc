/**
 * Where the integration stands, above every tab: last run, next run, lag, the counts a person
 * acts on, and, while a run goes, its progress (counts so far, refreshed by the page's polling).
 */
import type { ReactNode } from "react";
import type { UseQueryResult } from "@tanstack/react-query";
import { Badge, Group, Paper, Progress, SimpleGrid, Stack, Text, Title } from "@mantine/core";
import type { Schemas } from "../../api/client";
import { QueryState } from "../../components/QueryState";
import { formatDateTime, formatDuration, formatRelative } from "../../lib/format";
import { pollLine, pollPercent, progressLine, RUN_STATUS, TRIGGER } from "./runs";
import type { SideNames } from "./sides";

type Overview = Schemas["Overview"];

/** `sides` names the integration's sides (the page has them from the integration it loaded). */
export function StatusSummary({ overview, sides }: { overview: UseQueryResult<Overview>; sides: SideNames }) {
  return (
    <QueryState query={overview} what="the integration's status">
      {(o) => (
        <Stack gap="sm">
          <SimpleGrid cols={{ base: 2, md: 4 }} spacing="sm" component="dl" aria-label="Status" m={0}>
            <Fact label="Last run">
              {o.last_run ? (
                <Group gap={6} component="span">
                  <Badge color={RUN_STATUS[o.last_run.status].color} variant="light" component="span">
                    {RUN_STATUS[o.last_run.status].label}
                  </Badge>
                  <time dateTime={o.last_run.finished_at ?? o.last_run.started_at} title={formatDateTime(o.last_run.finished_at)}>
                    {formatRelative(o.last_run.finished_at ?? o.last_run.started_at)}
                  </time>
                </Group>
              ) : (
                "No run yet"
              )}
            </Fact>
            <Fact label="Next run">
              {o.current_run ? (
                "Running now"
              ) : o.next_run_at ? (
                <time dateTime={o.next_run_at} title={formatDateTime(o.next_run_at)}>
                  {formatRelative(o.next_run_at)}
                </time>
              ) : o.state === "active" ? (
                "Being scheduled"
              ) : (
                `None (${o.state})`
              )}
            </Fact>
            <Fact label="Lag">
              {o.lag_seconds === null ? (
                "No successful run yet"
              ) : (
                <span title={`Changes made since ${formatDateTime(o.last_success_at)} have not been looked at yet`}>
                  {formatDuration(o.lag_seconds)}
                </span>
              )}
            </Fact>
            <Fact label="Linked items">
              {o.links.total}
              {o.open_conflicts || o.failing_items ? (
                <Text span size="sm" c="dimmed">
                  {" "}
                  · {o.open_conflicts} {o.open_conflicts === 1 ? "conflict" : "conflicts"} · {o.failing_items} failing
                </Text>
              ) : null}
            </Fact>
          </SimpleGrid>
          {o.last_run?.status === "failed" && o.last_run.error && !o.current_run ? (
            <Text size="sm" c="red.8" role="status">
              The last run failed: {o.last_run.error}
            </Text>
          ) : null}
          {o.current_run ? <RunProgress run={o.current_run} sides={sides} /> : null}
        </Stack>
      )}
    </QueryState>
  );
}

function Fact({ label, children }: { label: string; children: ReactNode }) {
  return (
    <Paper withBorder p="sm" radius="md">
      <Text component="dt" size="xs" c="dimmed" tt="uppercase" fw={600}>
        {label}
      </Text>
      <Text component="dd" m={0} fw={500}>
        {children}
      </Text>
    </Paper>
  );
}

/**
 * A run in progress: the run's counts so far and, while it polls a side, how far that poll has
 * got. When the app counted the poll's changed items at its start, the bar shows the share
 * done (per side: it starts again for side B). Without a total, or outside a poll (a webhook
 * run, the retries and deliveries after the polls), it is an animated "still going" bar.
 */
export function RunProgress({ run, sides }: { run: Schemas["RunOut"]; sides: SideNames }) {
  const line = progressLine(run, Date.now());
  const poll = run.progress ? pollLine(run.progress, sides) : null;
  const percent = run.progress ? pollPercent(run.progress) : null;
  return (
    <Paper withBorder p="md" radius="md" component="section" aria-labelledby={`run-${run.id}-title`}>
      <Stack gap="xs">
        <Group justify="space-between">
          <Title order={3} size="h5" id={`run-${run.id}-title`}>
            Run in progress
          </Title>
          <Text size="sm" c="dimmed">
            {TRIGGER[run.trigger] ?? run.trigger} · started {formatRelative(run.started_at)}
          </Text>
        </Group>
        {percent !== null ? (
          // Mantine's own ARIA would say only "24%"; the value text says of what.
          <Progress.Root size="lg">
            <Progress.Section
              value={percent}
              withAria={false}
              role="progressbar"
              aria-label="Run in progress"
              aria-valuemin={0}
              aria-valuemax={100}
              aria-valuenow={percent}
              aria-valuetext={`${percent}%: ${poll}`}
            />
          </Progress.Root>
        ) : (
          // No aria-valuenow: how far along is unknown (an indeterminate progress bar).
          <Progress.Root size="lg">
            <Progress.Section value={100} striped animated withAria={false} role="progressbar" aria-label="Run in progress" aria-valuetext={poll ?? line} />
          </Progress.Root>
        )}
        <Stack gap={2} role="status" aria-live="polite">
          {poll ? <Text size="sm">{poll}</Text> : null}
          <Text size="sm">{line}</Text>
        </Stack>
      </Stack>
    </Paper>
  );
}
