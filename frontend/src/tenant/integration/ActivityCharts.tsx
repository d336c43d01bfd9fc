/**
 * Throughput, errors and lag over time, from GET .../series. Each chart has a heading and a
 * sentence stating its totals, so the figures are there for a screen reader and at a glance;
 * the range has its own address (?range=24) so a link shows the same view.
 */
import type { ReactNode } from "react";
import { useSearchParams } from "react-router";
import { BarChart, LineChart } from "@mantine/charts";
import { Group, Paper, SegmentedControl, SimpleGrid, Stack, Text, Title } from "@mantine/core";
import { QueryState } from "../../components/QueryState";
import { formatDuration } from "../../lib/format";
import { useSeries } from "./queries";
import { bucketWords, chartRows, plural, RANGES, seriesTotals } from "./series";

export function ActivityCharts({ id }: { id: number }) {
  const [params, setParams] = useSearchParams();
  const range = RANGES.find((r) => r.value === params.get("range")) ?? RANGES[1];
  const series = useSeries(id, range.hours);
  return (
    <Stack gap="sm" component="section" aria-labelledby="activity-title">
      <Group justify="space-between">
        <Title order={3} size="h4" id="activity-title">
          Activity
        </Title>
        <SegmentedControl
          aria-label="Time range"
          value={range.value}
          onChange={(value) => setParams((p) => {
            p.set("range", value);
            return p;
          }, { replace: true })}
          data={RANGES.map((r) => ({ value: r.value, label: r.label }))}
        />
      </Group>
      <QueryState query={series} what="the activity">
        {(data) => {
          const rows = chartRows(data);
          const totals = seriesTotals(data);
          const per = `${bucketWords(data.bucket_seconds)} buckets`;
          const lagRows = rows.filter((r) => r.lagMinutes !== null);
          return (
            <SimpleGrid cols={{ base: 1, lg: 2 }} spacing="md">
              <Chart
                title="Throughput"
                summary={`${plural(totals.items, "item")} synced and ${plural(totals.comments, "comment")} copied in ${range.words}, in ${plural(totals.runs, "run")} (${per}).`}
              >
                <BarChart
                  h={220}
                  data={rows}
                  dataKey="time"
                  type="stacked"
                  withLegend
                  series={[
                    { name: "created", label: "Items created", color: "indigo.6" },
                    { name: "updated", label: "Items updated", color: "teal.6" },
                    { name: "comments", label: "Comments copied", color: "grape.5" },
                  ]}
                />
              </Chart>
              <Chart
                title="Errors"
                summary={`${plural(totals.errors, "item error")} and ${plural(totals.failedRuns, "failed run")} in ${range.words}; ${plural(totals.apiCalls, "API call")}, ${waits(totals.waitSeconds)} waiting for rate limits.`}
              >
                <BarChart
                  h={220}
                  data={rows}
                  dataKey="time"
                  withLegend
                  series={[
                    { name: "errors", label: "Item errors", color: "red.6" },
                    { name: "failedRuns", label: "Failed runs", color: "orange.6" },
                  ]}
                />
              </Chart>
              <Chart
                title="Lag"
                summary={
                  lagRows.length
                    ? `Lag at the end of each bucket, in minutes; now ${formatDuration(data.buckets[data.buckets.length - 1]?.lag_seconds)}.`
                    : `No successful run in ${range.words}, so no lag to show.`
                }
              >
                <LineChart
                  h={220}
                  data={rows}
                  dataKey="time"
                  connectNulls={false}
                  withLegend
                  series={[{ name: "lagMinutes", label: "Lag (minutes)", color: "blue.6" }]}
                />
              </Chart>
              <Chart
                title="API calls"
                summary={`${plural(totals.apiCalls, "API call")} and ${waits(totals.waitSeconds)} of rate-limit waits in ${range.words}.`}
              >
                <BarChart
                  h={220}
                  data={rows}
                  dataKey="time"
                  withLegend
                  series={[
                    { name: "apiCalls", label: "API calls", color: "cyan.6" },
                    { name: "waitSeconds", label: "Rate-limit waits (s)", color: "yellow.6" },
                  ]}
                />
              </Chart>
            </SimpleGrid>
          );
        }}
      </QueryState>
    </Stack>
  );
}

function Chart({ title, summary, children }: { title: string; summary: string; children: ReactNode }) {
  return (
    <Paper withBorder p="md" radius="md" component="figure" m={0} aria-label={title}>
      <Stack gap="xs">
        <Title order={4} size="h5">
          {title}
        </Title>
        <Text size="sm" c="dimmed" component="figcaption">
          {summary}
        </Text>
        {children}
      </Stack>
    </Paper>
  );
}

function waits(seconds: number): string {
  return seconds ? formatDuration(seconds) : "no time";
}
