import { useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Button, Group, Select, Table, Text } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { api, messageOf, unwrap, type Schemas } from "../../api/client";
import { formatDateTime, formatRelative } from "../../lib/format";
import { AccountBadges } from "../../shared/AccountBadges";
import { ConfirmModal } from "../../shared/ConfirmModal";
import { ResetPasswordModal } from "./ResetPasswordModal";
import { ROLE_OPTIONS, type Role } from "./roles";

type User = Schemas["UserOut"];

/** One user and an admin's actions on them. Your own row cannot disable or delete you. */
export function UserRow({ user, self }: { user: User; self: boolean }) {
  const client = useQueryClient();
  const [modal, setModal] = useState<"reset" | "delete" | null>(null);
  const refresh = () => client.invalidateQueries({ queryKey: ["users"] });
  const fail = (error: unknown) => notifications.show({ color: "red", title: user.email, message: messageOf(error) });
  const patch = useMutation({
    mutationFn: (body: { role?: Role; disabled?: boolean }) =>
      // Partial on purpose: the API changes only the fields sent.
      unwrap(api.PATCH("/api/v1/users/{id}", { params: { path: { id: user.id } }, body: body as Schemas["UserPatch"] })),
    onSuccess: (updated, body) => {
      notifications.show({ message: body.role ? `${updated.email} is now ${updated.role}.` : `${updated.email} ${updated.disabled ? "disabled: their sessions ended" : "enabled"}.` });
      refresh();
    },
    onError: (error) => {
      fail(error);
      refresh(); // the role select shows the stored role again
    },
  });
  const unlock = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/users/{id}/unlock", { params: { path: { id: user.id } } })),
    onSuccess: () => {
      notifications.show({ message: `${user.email} can sign in again.` });
      refresh();
    },
    onError: fail,
  });
  const remove = useMutation({
    mutationFn: () => unwrap(api.DELETE("/api/v1/users/{id}", { params: { path: { id: user.id } } })),
    onSuccess: () => {
      setModal(null);
      notifications.show({ message: `${user.email} deleted.` });
      refresh();
    },
  });
  return (
    <Table.Tr>
      <Table.Td>
        <Text fw={600}>
          {user.display_name || user.email}
          {self && " (you)"}
        </Text>
        {user.display_name && (
          <Text size="sm" c="dimmed">
            {user.email}
          </Text>
        )}
      </Table.Td>
      <Table.Td>
        <Select
          aria-label={`Role of ${user.email}`}
          data={ROLE_OPTIONS}
          value={patch.isPending && patch.variables.role ? patch.variables.role : user.role}
          onChange={(role) => role && role !== user.role && patch.mutate({ role: role as Role })}
          allowDeselect={false}
          disabled={patch.isPending}
          w={130}
          size="xs"
        />
      </Table.Td>
      <Table.Td>
        <AccountBadges disabled={user.disabled} locked={user.locked} failedLogins={user.failed_logins} />
      </Table.Td>
      <Table.Td title={formatDateTime(user.last_login_at)}>{formatRelative(user.last_login_at)}</Table.Td>
      <Table.Td>
        <Group gap="xs" wrap="nowrap">
          {user.locked && (
            <Button size="xs" variant="default" onClick={() => unlock.mutate()} loading={unlock.isPending} aria-label={`Unlock ${user.email}`}>
              Unlock
            </Button>
          )}
          <Button size="xs" variant="default" onClick={() => setModal("reset")} aria-label={`Reset password of ${user.email}`}>
            Reset password
          </Button>
          {user.disabled ? (
            <Button size="xs" variant="default" onClick={() => patch.mutate({ disabled: false })} loading={patch.isPending && patch.variables.disabled === false} aria-label={`Enable ${user.email}`}>
              Enable
            </Button>
          ) : (
            !self && (
              <Button size="xs" variant="default" onClick={() => patch.mutate({ disabled: true })} loading={patch.isPending && patch.variables.disabled === true} aria-label={`Disable ${user.email}`}>
                Disable
              </Button>
            )
          )}
          {!self && (
            <Button size="xs" color="red" variant="light" onClick={() => setModal("delete")} aria-label={`Delete ${user.email}`}>
              Delete
            </Button>
          )}
        </Group>
        {modal === "reset" && <ResetPasswordModal user={user} onClose={() => setModal(null)} onDone={refresh} />}
        <ConfirmModal
          opened={modal === "delete"}
          onClose={() => {
            setModal(null);
            remove.reset();
          }}
          title={`Delete ${user.email}`}
          action="Delete user"
          onConfirm={() => remove.mutate()}
          pending={remove.isPending}
          error={remove.error}
        >
          Their sessions and API tokens go with them. The audit log keeps what they did.
        </ConfirmModal>
      </Table.Td>
    </Table.Tr>
  );
}
