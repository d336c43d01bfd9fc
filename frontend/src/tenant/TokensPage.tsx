import { useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Badge, Button, Code, Group, Stack, Switch, Table, Text } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { api, unwrap, type Schemas } from "../api/client";
import { can, useMe } from "../auth";
import { PageHeader } from "../components/PageHeader";
import { QueryState } from "../components/QueryState";
import { formatDateTime, formatRelative } from "../lib/format";
import { useCursorList } from "../lib/paging";
import { ConfirmModal } from "../shared/ConfirmModal";
import { NewTokenModal } from "./tokens/NewTokenModal";
import { TOKEN_COLOR, tokenState } from "./tokens/tokenState";
import { LoadMore } from "../components/LoadMore";

type Token = Schemas["TokenOut"];

/**
 * API tokens: everyone makes and revokes their own; admins see (and may revoke) everyone's
 * in the workspace. A token acts with its user's current role.
 */
export function TokensPage() {
  const me = useMe();
  const admin = can(me, "admin");
  const [onlyMine, setOnlyMine] = useState(false);
  const [creating, setCreating] = useState(false);
  const userId = admin && onlyMine ? me.id : undefined;
  const list = useCursorList(["tokens", userId ?? "all"], (cursor) => unwrap(api.GET("/api/v1/tokens", { params: { query: { cursor, limit: 100, user_id: userId } } })));
  return (
    <>
      <PageHeader
        title="API tokens"
        description="For scripts and tools using the REST API. A token acts with its user's current role; revoke it when it is no longer needed."
        actions={<Button onClick={() => setCreating(true)}>New token</Button>}
      />
      <Stack>
        {admin && <Switch label="Only my tokens" checked={onlyMine} onChange={(event) => setOnlyMine(event.currentTarget.checked)} />}
        <QueryState query={list.query} what="API tokens">
          {() =>
            list.items.length === 0 ? (
              <Text c="dimmed">No API tokens yet.</Text>
            ) : (
              <Table.ScrollContainer minWidth={1000}>
                <Table striped aria-label="API tokens">
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>Name</Table.Th>
                      <Table.Th>Token</Table.Th>
                      {admin && <Table.Th>User</Table.Th>}
                      <Table.Th>State</Table.Th>
                      <Table.Th>Created</Table.Th>
                      <Table.Th>Expires</Table.Th>
                      <Table.Th>Last used</Table.Th>
                      <Table.Th>Actions</Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {list.items.map((token) => (
                      <TokenRow key={token.id} token={token} showUser={admin} />
                    ))}
                  </Table.Tbody>
                </Table>
              </Table.ScrollContainer>
            )
          }
        </QueryState>
        <LoadMore list={list} label="Load older tokens" />
      </Stack>
      <NewTokenModal opened={creating} onClose={() => setCreating(false)} />
    </>
  );
}

function TokenRow({ token, showUser }: { token: Token; showUser: boolean }) {
  const client = useQueryClient();
  const [confirming, setConfirming] = useState(false);
  const revoke = useMutation({
    mutationFn: () => unwrap(api.DELETE("/api/v1/tokens/{id}", { params: { path: { id: token.id } } })),
    onSuccess: () => {
      setConfirming(false);
      notifications.show({ message: `Token ${token.name} revoked: it stops working at once.` });
      client.invalidateQueries({ queryKey: ["tokens"] });
    },
  });
  const state = tokenState(token);
  return (
    <Table.Tr>
      <Table.Td>
        <Text fw={600}>{token.name}</Text>
      </Table.Td>
      <Table.Td>
        <Code>{token.prefix}…</Code>
      </Table.Td>
      {showUser && <Table.Td>{token.user_email}</Table.Td>}
      <Table.Td>
        <Badge color={TOKEN_COLOR[state]} variant="light">
          {state}
        </Badge>
      </Table.Td>
      <Table.Td title={formatDateTime(token.created_at)}>{formatRelative(token.created_at)}</Table.Td>
      <Table.Td title={formatDateTime(token.expires_at)}>{state === "revoked" ? `revoked ${formatRelative(token.revoked_at)}` : formatRelative(token.expires_at)}</Table.Td>
      <Table.Td title={formatDateTime(token.last_used_at)}>{formatRelative(token.last_used_at)}</Table.Td>
      <Table.Td>
        <Group gap="xs">
          {state === "active" && (
            <Button size="xs" color="red" variant="light" onClick={() => setConfirming(true)} aria-label={`Revoke ${token.name}`}>
              Revoke
            </Button>
          )}
        </Group>
        <ConfirmModal
          opened={confirming}
          onClose={() => {
            setConfirming(false);
            revoke.reset();
          }}
          title={`Revoke token ${token.name}`}
          action="Revoke token"
          onConfirm={() => revoke.mutate()}
          pending={revoke.isPending}
          error={revoke.error}
        >
          {`Anything using ${token.prefix}… is refused from now on. This cannot be undone; make a new token if needed.`}
        </ConfirmModal>
      </Table.Td>
    </Table.Tr>
  );
}
