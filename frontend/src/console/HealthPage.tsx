import type { ReactNode } from "react";
import { useQuery } from "@tanstack/react-query";
import { Badge, Button, Group, Paper, SimpleGrid, Stack, Table, Text, Title } from "@mantine/core";
import { api, unwrap, type Schemas } from "../api/client";
import { PageHeader } from "../components/PageHeader";
import { QueryState } from "../components/QueryState";
import { formatDateTime, formatDuration, formatRelative } from "../lib/format";
import { certificateLevel, LEVEL_COLOR, LEVEL_LABEL, type Level } from "./healthLevels";
import { WORKER_COLOR } from "./workerState";

type Health = Schemas["Health"];

/** GET /api/v1/cluster/health, refreshed every 10 s: nodes, workers, database, migrations,
 * TLS certificates and `tandem doctor`'s findings on the answering node. */
export function HealthPage() {
  const health = useQuery({
    queryKey: ["cluster-health"],
    queryFn: () => unwrap(api.GET("/api/v1/cluster/health")),
    refetchInterval: 10_000,
  });
  return (
    <>
      <PageHeader
        title="Cluster health"
        description={health.data ? `Checked ${formatRelative(health.data.checked_at)} (${formatDateTime(health.data.checked_at)}); refreshed every 10 seconds.` : undefined}
        actions={
          <Button variant="default" onClick={() => health.refetch()} loading={health.isFetching}>
            Check again
          </Button>
        }
      />
      <QueryState query={health} what="cluster health">
        {(data) => <HealthReport data={data} />}
      </QueryState>
    </>
  );
}

function Section({ title, status, children }: { title: string; status?: Level; children: ReactNode }) {
  const id = `health-${title.toLowerCase().replace(/\W+/g, "-")}`;
  return (
    <Paper withBorder p="md" component="section" aria-labelledby={id}>
      <Group justify="space-between" mb="sm">
        <Title order={3} size="h4" id={id}>
          {title}
        </Title>
        {status && <LevelBadge level={status} />}
      </Group>
      {children}
    </Paper>
  );
}

function LevelBadge({ level, label }: { level: Level; label?: string }) {
  return (
    <Badge color={LEVEL_COLOR[level]} variant="light" style={{ minWidth: "max-content" }}>
      {label ?? LEVEL_LABEL[level]}
    </Badge>
  );
}

function HealthReport({ data }: { data: Health }) {
  const aliveNodes = data.nodes.filter((node) => node.alive).length;
  const certLevels = data.certificates.map(certificateLevel);
  const worstOf = (levels: Level[]): Level => (levels.includes("fail") ? "fail" : levels.includes("warn") ? "warn" : "ok");
  return (
    <Stack>
      <Group>
        <Text fw={600}>Overall:</Text>
        <LevelBadge level={data.status === "ok" ? "ok" : "fail"} label={data.status === "ok" ? "healthy" : "degraded"} />
      </Group>
      <SimpleGrid cols={2}>
        <Section title="Database" status={data.database.reachable ? "ok" : "fail"}>
          <Text size="sm">
            {data.database.reachable ? "Reachable" : "Not reachable"} · PostgreSQL {data.database.server_version}
          </Text>
        </Section>
        <Section title="Migrations" status={data.migrations.current ? "ok" : "fail"}>
          <Text size="sm">{data.migrations.current ? "Current." : `${data.migrations.pending} pending.`}</Text>
          <Text size="sm" c="dimmed">
            {data.migrations.summary}
          </Text>
        </Section>
      </SimpleGrid>
      <Section title="Nodes" status={aliveNodes === 0 ? "fail" : aliveNodes < data.nodes.length ? "warn" : "ok"}>
        {data.nodes.length === 0 ? (
          <Text size="sm">No node has reported yet.</Text>
        ) : (
          <Table aria-label="Nodes">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Node</Table.Th>
                <Table.Th>State</Table.Th>
                <Table.Th>Host</Table.Th>
                <Table.Th>Version</Table.Th>
                <Table.Th>Started</Table.Th>
                <Table.Th>Last heartbeat</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {data.nodes.map((node) => (
                <Table.Tr key={node.name}>
                  <Table.Td>{node.name}</Table.Td>
                  <Table.Td>
                    <LevelBadge level={node.alive ? "ok" : "fail"} label={node.alive ? "alive" : "silent"} />
                  </Table.Td>
                  <Table.Td>
                    {node.hostname} · pid {node.pid}
                  </Table.Td>
                  <Table.Td>{node.version}</Table.Td>
                  <Table.Td title={formatDateTime(node.started_at)}>{formatRelative(node.started_at)}</Table.Td>
                  <Table.Td title={formatDateTime(node.heartbeat_at)}>{formatDuration(node.heartbeat_age_seconds)} ago</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </Section>
      <Section title="Tenant workers" status={data.failures.length ? "fail" : data.workers.without_worker.length ? "warn" : "ok"}>
        <Group gap="xs" mb="sm">
          {Object.entries(data.workers.by_state)
            .filter(([, count]) => count > 0)
            .map(([state, count]) => (
              <Badge key={state} color={WORKER_COLOR[state as keyof typeof WORKER_COLOR] ?? "gray"} variant="light">
                {state}: {count}
              </Badge>
            ))}
          <Text size="sm">· {data.workers.restarts} restart(s) in all</Text>
        </Group>
        {data.workers.without_worker.length > 0 && (
          <Text size="sm" mb="sm">
            Active tenants without a worker: {data.workers.without_worker.join(", ")}
          </Text>
        )}
        {data.failures.length > 0 && (
          <Table aria-label="Failing workers">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Tenant</Table.Th>
                <Table.Th>Node</Table.Th>
                <Table.Th>State</Table.Th>
                <Table.Th>Restarts</Table.Th>
                <Table.Th>Last error</Table.Th>
                <Table.Th>Since</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {data.failures.map((failure) => (
                <Table.Tr key={`${failure.tenant}/${failure.node}`}>
                  <Table.Td>{failure.tenant}</Table.Td>
                  <Table.Td>{failure.node}</Table.Td>
                  <Table.Td>
                    <Badge color={WORKER_COLOR[failure.state]} variant="light">
                      {failure.state}
                    </Badge>
                  </Table.Td>
                  <Table.Td>{failure.restarts}</Table.Td>
                  <Table.Td>{[failure.reason, failure.last_exit].filter(Boolean).join(" · ") || "—"}</Table.Td>
                  <Table.Td title={formatDateTime(failure.updated_at)}>{formatRelative(failure.updated_at)}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
        {data.failures.length === 0 && <Text size="sm">No worker is failing or backing off.</Text>}
      </Section>
      <Section title="Certificates" status={data.certificates.length ? worstOf(certLevels) : undefined}>
        {data.certificates.length === 0 ? (
          <Text size="sm">None: TLS is off here (the load balancer terminates it).</Text>
        ) : (
          <Table aria-label="Certificates">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>File</Table.Th>
                <Table.Th>Names</Table.Th>
                <Table.Th>Expires</Table.Th>
                <Table.Th>State</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {data.certificates.map((cert, index) => (
                <Table.Tr key={cert.path}>
                  <Table.Td style={{ wordBreak: "break-all" }}>{cert.path}</Table.Td>
                  <Table.Td style={{ wordBreak: "break-word" }}>{cert.names.join(", ") || "—"}</Table.Td>
                  <Table.Td>
                    {cert.not_after ? `${formatDateTime(cert.not_after)} (${cert.days_left} days left)` : "unknown"}
                  </Table.Td>
                  <Table.Td style={{ whiteSpace: "nowrap" }}>
                    <LevelBadge level={certLevels[index]} />
                    {cert.problem && (
                      <Text size="sm" mt={4}>
                        {cert.problem}
                      </Text>
                    )}
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </Section>
      <Section title="Doctor's findings" status={data.doctor.length ? worstOf(data.doctor.map((f) => f.status)) : undefined}>
        {data.doctor.length === 0 ? (
          <Text size="sm">No checks were run.</Text>
        ) : (
          <Table aria-label="Doctor's findings">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Check</Table.Th>
                <Table.Th>Result</Table.Th>
                <Table.Th>Detail</Table.Th>
                <Table.Th>What to do</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {data.doctor.map((finding) => (
                <Table.Tr key={finding.name}>
                  <Table.Td>{finding.name}</Table.Td>
                  <Table.Td style={{ whiteSpace: "nowrap" }}>
                    <LevelBadge level={finding.status} />
                  </Table.Td>
                  <Table.Td>{finding.detail}</Table.Td>
                  <Table.Td>{finding.fix || "—"}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </Section>
    </Stack>
  );
}
