import { useState } from "react";
import { Button, Stack, Text } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { api, unwrap } from "../api/client";
import { can, useMe } from "../auth";
import { PageHeader } from "../components/PageHeader";
import { QueryState } from "../components/QueryState";
import { useCursorList } from "../lib/paging";
import { AddConnectionModal } from "./connections/AddConnectionModal";
import { ConnectionCard } from "./connections/ConnectionCard";
import { LoadMore } from "../components/LoadMore";

/** The workspace's connections to Jira and GitLab: one card each; editors add, test, edit, rotate, delete. */
export function ConnectionsPage() {
  const me = useMe();
  const editable = can(me, "editor");
  const [adding, setAdding] = useState(false);
  const list = useCursorList(["connections"], (cursor) => unwrap(api.GET("/api/v1/connections", { params: { query: { cursor, limit: 100 } } })));
  return (
    <>
      <PageHeader
        title="Connections"
        description="One account in one app each; integrations sync between two of them. Credentials are stored encrypted and never shown again."
        actions={editable && <Button onClick={() => setAdding(true)}>Add connection</Button>}
      />
      <QueryState query={list.query} what="connections">
        {() =>
          list.items.length === 0 ? (
            <Text c="dimmed">{editable ? "No connections yet. Add one for each app you want to sync with “Add connection”." : "No connections yet. An editor can add them."}</Text>
          ) : (
            <Stack>
              {list.items.map((connection) => (
                <ConnectionCard key={connection.id} connection={connection} editable={editable} />
              ))}
            </Stack>
          )
        }
      </QueryState>
      <LoadMore list={list} label="Load more connections" />
      {editable && (
        <AddConnectionModal
          opened={adding}
          onClose={() => setAdding(false)}
          onCreated={(connection) => notifications.show({ title: `Connection ${connection.name} added`, message: "Test it to see what the credential can reach." })}
        />
      )}
    </>
  );
}
