import { useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Anchor, Badge, Button, Group, SegmentedControl, Stack, Table, Text } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { api, messageOf, unwrap, type Schemas } from "../api/client";
import { boot } from "../boot";
import { ConfirmByTyping } from "../components/ConfirmByTyping";
import { PageHeader } from "../components/PageHeader";
import { QueryState } from "../components/QueryState";
import { formatRelative } from "../lib/format";
import { useCursorList } from "../lib/paging";
import { NewTenantModal } from "./NewTenantModal";
import { lastError, TENANT_COLOR, WORKER_COLOR } from "./workerState";
import { LoadMore } from "../components/LoadMore";

type Tenant = Schemas["TenantOut"];
type StateFilter = "all" | Tenant["state"];

/**
 * The cluster's tenants with their workers (refreshed every few seconds: the supervisor
 * reconciles within seconds), integration counts, and the admin's actions on them.
 */
export function TenantsPage() {
  const [filter, setFilter] = useState<StateFilter>("all");
  const [creating, setCreating] = useState(false);
  const list = useCursorList(
    ["tenants", filter],
    (cursor) =>
      unwrap(api.GET("/api/v1/cluster/tenants", { params: { query: { cursor, limit: 100, state: filter === "all" ? undefined : filter } } })),
    { refetchInterval: 5000 },
  );
  return (
    <>
      <PageHeader
        title="Tenants"
        description={`Each tenant is an isolated workspace at <slug>.${boot.domain}, with its own worker process.`}
        actions={<Button onClick={() => setCreating(true)}>New tenant</Button>}
      />
      <Stack>
        <SegmentedControl
          aria-label="Show tenants"
          w="fit-content"
          value={filter}
          onChange={(value) => setFilter(value as StateFilter)}
          data={[
            { value: "all", label: "All" },
            { value: "active", label: "Active" },
            { value: "disabled", label: "Disabled" },
            { value: "deleting", label: "Being deleted" },
          ]}
        />
        <QueryState query={list.query} what="tenants">
          {() =>
            list.items.length === 0 ? (
              <Text c="dimmed">{filter === "all" ? "No tenants yet. Create the first one with “New tenant”." : "No tenants in this state."}</Text>
            ) : (
              <Table.ScrollContainer minWidth={1000}>
                <Table striped highlightOnHover aria-label="Tenants">
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>Tenant</Table.Th>
                      <Table.Th>State</Table.Th>
                      <Table.Th>Worker</Table.Th>
                      <Table.Th>Restarts</Table.Th>
                      <Table.Th>Last error</Table.Th>
                      <Table.Th>Integrations</Table.Th>
                      <Table.Th>Actions</Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {list.items.map((tenant) => (
                      <TenantRow key={tenant.slug} tenant={tenant} />
                    ))}
                  </Table.Tbody>
                </Table>
              </Table.ScrollContainer>
            )
          }
        </QueryState>
        <LoadMore list={list} label="Load more tenants" />
      </Stack>
      <NewTenantModal opened={creating} onClose={() => setCreating(false)} />
    </>
  );
}

function TenantRow({ tenant }: { tenant: Tenant }) {
  const client = useQueryClient();
  const [deleting, setDeleting] = useState(false);
  const refresh = () => client.invalidateQueries({ queryKey: ["tenants"] });
  const setState = useMutation({
    mutationFn: (action: "enable" | "disable") =>
      unwrap(api.POST(`/api/v1/cluster/tenants/{slug}/${action}`, { params: { path: { slug: tenant.slug } } })),
    onSuccess: (result, action) => {
      notifications.show({ message: `Tenant ${result.slug} ${action}d.` });
      refresh();
    },
    onError: (error) => notifications.show({ color: "red", title: `Tenant ${tenant.slug}`, message: messageOf(error) }),
  });
  const remove = useMutation({
    mutationFn: () =>
      unwrap(api.DELETE("/api/v1/cluster/tenants/{slug}", { params: { path: { slug: tenant.slug } }, body: { confirm: tenant.slug } })),
    onSuccess: () => {
      setDeleting(false);
      notifications.show({ message: `Tenant ${tenant.slug} and all its data deleted.` });
      refresh();
    },
  });
  const worker = tenant.worker;
  const error = lastError(worker);
  const counts = tenant.integrations;
  return (
    <Table.Tr>
      <Table.Td>
        <Stack gap={0}>
          <Text fw={600}>{tenant.display_name}</Text>
          {tenant.state === "active" ? (
            <Anchor href={`https://${tenant.slug}.${boot.domain}/`} size="sm" target="_blank" rel="noreferrer">
              {tenant.slug}.{boot.domain}
            </Anchor>
          ) : (
            <Text size="sm" c="dimmed">
              {tenant.slug}
            </Text>
          )}
        </Stack>
      </Table.Td>
      <Table.Td>
        <Badge color={TENANT_COLOR[tenant.state]} variant="light">
          {tenant.state}
        </Badge>
      </Table.Td>
      <Table.Td>
        {worker ? (
          <Stack gap={2}>
            <Badge color={WORKER_COLOR[worker.state]} variant="light">
              {worker.state}
            </Badge>
            <Text size="xs" c="dimmed" title={worker.updated_at ?? undefined}>
              {worker.node ?? "no node"}
              {worker.pid ? ` · pid ${worker.pid}` : ""} · {formatRelative(worker.updated_at)}
            </Text>
          </Stack>
        ) : (
          <Text size="sm" c="dimmed">
            {tenant.state === "active" ? "not reported yet" : "none"}
          </Text>
        )}
      </Table.Td>
      <Table.Td>{worker ? worker.restarts : "—"}</Table.Td>
      <Table.Td maw={280}>
        {error ? (
          <Text size="sm" c={worker?.state === "failed" ? "red" : undefined} style={{ wordBreak: "break-word" }}>
            {error}
          </Text>
        ) : (
          <Text size="sm" c="dimmed">
            none
          </Text>
        )}
      </Table.Td>
      <Table.Td>
        {counts ? (
          <Text size="sm">
            {counts.total} total · {counts.active} active
            {counts.failing > 0 && (
              <Text span c="red" fw={600}>
                {" "}
                · {counts.failing} failing
              </Text>
            )}
          </Text>
        ) : (
          <Text size="sm" c="dimmed">
            not counted
          </Text>
        )}
      </Table.Td>
      <Table.Td>
        {tenant.state !== "deleting" && (
          <Group gap="xs" wrap="nowrap">
            {tenant.state === "active" ? (
              <Button size="xs" variant="default" loading={setState.isPending} onClick={() => setState.mutate("disable")} aria-label={`Disable ${tenant.slug}`}>
                Disable
              </Button>
            ) : (
              <Button size="xs" variant="default" loading={setState.isPending} onClick={() => setState.mutate("enable")} aria-label={`Enable ${tenant.slug}`}>
                Enable
              </Button>
            )}
            <Button size="xs" color="red" variant="light" onClick={() => setDeleting(true)} aria-label={`Delete ${tenant.slug}`}>
              Delete
            </Button>
          </Group>
        )}
        <ConfirmByTyping
          opened={deleting}
          onClose={() => {
            setDeleting(false);
            remove.reset();
          }}
          title={`Delete tenant ${tenant.slug}`}
          word={tenant.slug}
          consequence={`This stops the tenant's worker and drops its schema: its users, connections, integrations and sync history are gone for good. ${counts?.total ? `It has ${counts.total} integration(s).` : ""}`}
          action="Delete tenant"
          onConfirm={() => remove.mutate()}
          pending={remove.isPending}
          error={remove.error}
        />
      </Table.Td>
    </Table.Tr>
  );
}
