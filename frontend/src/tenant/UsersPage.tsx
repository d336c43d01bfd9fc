import { useState } from "react";
import { Button, SegmentedControl, Stack, Table, Text } from "@mantine/core";
import { api, unwrap } from "../api/client";
import { useMe } from "../auth";
import { PageHeader } from "../components/PageHeader";
import { QueryState } from "../components/QueryState";
import { useCursorList } from "../lib/paging";
import { NewUserModal } from "./users/NewUserModal";
import { ROLES, type Role } from "./users/roles";
import { UserRow } from "./users/UserRow";
import { LoadMore } from "../components/LoadMore";

/** The workspace's users (admins only): create with a role, change roles, disable, unlock, reset passwords, delete. */
export function UsersPage() {
  const me = useMe();
  const [role, setRole] = useState<Role | "all">("all");
  const [creating, setCreating] = useState(false);
  const list = useCursorList(["users", role], (cursor) =>
    unwrap(api.GET("/api/v1/users", { params: { query: { cursor, limit: 100, role: role === "all" ? undefined : role } } })),
  );
  return (
    <>
      <PageHeader
        title="Users"
        description={ROLES.map((r) => `${r.label}: ${r.description}`).join("; ") + "."}
        actions={<Button onClick={() => setCreating(true)}>New user</Button>}
      />
      <Stack>
        <SegmentedControl
          aria-label="Show users"
          w="fit-content"
          value={role}
          onChange={(value) => setRole(value as Role | "all")}
          data={[{ value: "all", label: "All" }, ...ROLES.map((r) => ({ value: r.value, label: `${r.label}s` }))]}
        />
        <QueryState query={list.query} what="users">
          {() =>
            list.items.length === 0 ? (
              <Text c="dimmed">No users with this role.</Text>
            ) : (
              <Table.ScrollContainer minWidth={1000}>
                <Table striped aria-label="Users">
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>User</Table.Th>
                      <Table.Th>Role</Table.Th>
                      <Table.Th>State</Table.Th>
                      <Table.Th>Last sign-in</Table.Th>
                      <Table.Th>Actions</Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {list.items.map((user) => (
                      <UserRow key={user.id} user={user} self={user.id === me.id} />
                    ))}
                  </Table.Tbody>
                </Table>
              </Table.ScrollContainer>
            )
          }
        </QueryState>
        <LoadMore list={list} label="Load more users" />
      </Stack>
      <NewUserModal opened={creating} onClose={() => setCreating(false)} />
    </>
  );
}
