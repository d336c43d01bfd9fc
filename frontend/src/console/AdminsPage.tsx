import { useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Alert, Button, Group, Modal, PasswordInput, Stack, Table, Text, TextInput } from "@mantine/core";
import { useForm } from "@mantine/form";
import { notifications } from "@mantine/notifications";
import { api, ApiError, messageOf, unwrap, type Schemas } from "../api/client";
import { useMe } from "../auth";
import { PageHeader } from "../components/PageHeader";
import { QueryState } from "../components/QueryState";
import { formatDateTime, formatRelative } from "../lib/format";
import { applyApiErrors, shownOnForm } from "../lib/forms";
import { useCursorList } from "../lib/paging";
import { AccountBadges } from "../shared/AccountBadges";
import { PasswordGiven } from "../shared/OneTimeSecret";
import { LoadMore } from "../components/LoadMore";

type Admin = Schemas["AdminOut"];
const KEY = ["cluster-admins"];

/** The console's users (every one an admin): list, add, disable/enable, lift a lock-out. */
export function AdminsPage() {
  const [adding, setAdding] = useState(false);
  const list = useCursorList(KEY, (cursor) => unwrap(api.GET("/api/v1/cluster/admins", { params: { query: { cursor, limit: 100 } } })));
  return (
    <>
      <PageHeader
        title="Cluster admins"
        description="They sign in to this console and manage every tenant. Tenants' own users are managed in each tenant's workspace."
        actions={<Button onClick={() => setAdding(true)}>Add admin</Button>}
      />
      <QueryState query={list.query} what="cluster admins">
        {() => (
          <Table.ScrollContainer minWidth={900}>
            <Table striped aria-label="Cluster admins">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Admin</Table.Th>
                  <Table.Th>State</Table.Th>
                  <Table.Th>Last sign-in</Table.Th>
                  <Table.Th>Password changed</Table.Th>
                  <Table.Th>Added</Table.Th>
                  <Table.Th>Actions</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {list.items.map((admin) => (
                  <AdminRow key={admin.id} admin={admin} />
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
      </QueryState>
      <LoadMore list={list} label="Load more admins" />
      <NewAdminModal opened={adding} onClose={() => setAdding(false)} />
    </>
  );
}

function AdminRow({ admin }: { admin: Admin }) {
  const me = useMe();
  const client = useQueryClient();
  const act = useMutation({
    mutationFn: (action: "disable" | "enable" | "unlock") =>
      unwrap(api.POST(`/api/v1/cluster/admins/{id}/${action}`, { params: { path: { id: admin.id } } })),
    onSuccess: (_, action) => {
      notifications.show({ message: `${admin.email}: ${action === "unlock" ? "lock-out lifted" : `${action}d`}.` });
      client.invalidateQueries({ queryKey: KEY });
    },
    onError: (error) => notifications.show({ color: "red", title: admin.email, message: messageOf(error) }),
  });
  const self = admin.id === me.id;
  return (
    <Table.Tr>
      <Table.Td>
        <Text fw={600}>
          {admin.display_name || admin.email}
          {self && " (you)"}
        </Text>
        {admin.display_name && (
          <Text size="sm" c="dimmed">
            {admin.email}
          </Text>
        )}
      </Table.Td>
      <Table.Td>
        <AccountBadges disabled={admin.disabled} locked={admin.locked} failedLogins={admin.failed_logins} />
      </Table.Td>
      <Table.Td title={formatDateTime(admin.last_login_at)}>{formatRelative(admin.last_login_at)}</Table.Td>
      <Table.Td title={formatDateTime(admin.password_changed_at)}>{formatRelative(admin.password_changed_at)}</Table.Td>
      <Table.Td title={formatDateTime(admin.created_at)}>{formatRelative(admin.created_at)}</Table.Td>
      <Table.Td>
        <Group gap="xs" wrap="nowrap">
          {admin.locked && (
            <Button size="xs" variant="default" onClick={() => act.mutate("unlock")} loading={act.isPending && act.variables === "unlock"} aria-label={`Unlock ${admin.email}`}>
              Unlock
            </Button>
          )}
          {admin.disabled ? (
            <Button size="xs" variant="default" onClick={() => act.mutate("enable")} loading={act.isPending && act.variables === "enable"} aria-label={`Enable ${admin.email}`}>
              Enable
            </Button>
          ) : (
            !self && (
              <Button size="xs" color="red" variant="light" onClick={() => act.mutate("disable")} loading={act.isPending && act.variables === "disable"} aria-label={`Disable ${admin.email}`}>
                Disable
              </Button>
            )
          )}
        </Group>
      </Table.Td>
    </Table.Tr>
  );
}

function NewAdminModal({ opened, onClose }: { opened: boolean; onClose: () => void }) {
  const client = useQueryClient();
  const [created, setCreated] = useState<Schemas["AdminCreated"] | null>(null);
  const form = useForm({
    initialValues: { email: "", display_name: "", password: "" },
    validate: { email: (value) => (/^[^\s@]+@[^\s@]+$/.test(value.trim()) ? null : "Enter an e-mail address") },
  });
  const create = useMutation({
    mutationFn: (values: typeof form.values) =>
      unwrap(api.POST("/api/v1/cluster/admins", { body: { email: values.email.trim(), display_name: values.display_name.trim(), password: values.password || null } })),
    onSuccess: (result) => {
      setCreated(result);
      client.invalidateQueries({ queryKey: KEY });
    },
    onError: (error) => {
      if (error instanceof ApiError && error.status === 409) {
        form.setFieldError("email", error.message);
      } else {
        applyApiErrors(error, form.setFieldError, ["email", "display_name", "password"]);
      }
    },
  });
  const close = () => {
    form.reset();
    setCreated(null);
    create.reset();
    onClose();
  };
  return (
    <Modal opened={opened} onClose={close} title={created ? "Admin added" : "Add cluster admin"} centered size="lg">
      {created ? (
        <PasswordGiven password={created.password} onDone={close}>
          {created.admin.email} can now sign in to this console.
        </PasswordGiven>
      ) : (
        <form onSubmit={form.onSubmit((values) => create.mutate(values))} noValidate>
          <Stack>
            {create.isError && !shownOnForm(create.error) && (
              <Alert color="red" role="alert">
                {messageOf(create.error)}
              </Alert>
            )}
            <TextInput label="E-mail" type="email" required data-autofocus autoComplete="off" {...form.getInputProps("email")} />
            <TextInput label="Display name" autoComplete="off" {...form.getInputProps("display_name")} />
            <PasswordInput label="Password" description="Leave empty to generate one (shown once)." autoComplete="new-password" {...form.getInputProps("password")} />
            <Group justify="flex-end">
              <Button variant="default" onClick={close}>
                Cancel
              </Button>
              <Button type="submit" loading={create.isPending}>
                Add admin
              </Button>
            </Group>
          </Stack>
        </form>
      )}
    </Modal>
  );
}
