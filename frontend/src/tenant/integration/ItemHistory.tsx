/**
 * One linked pair's history (links/:linkId): every event of the pair, both ways, newest first:
 * what changed, which way, why. The pair's keys come with the link that led here; on a fresh
 * load (no such state) the events' own item keys name it.
 */
import { Link, useLocation } from "react-router";
import { Button, Group, Stack, Text, Title } from "@mantine/core";
import { api, unwrap } from "../../api/client";
import { QueryState } from "../../components/QueryState";
import { useCursorList } from "../../lib/paging";
import { EventsTable } from "./EventsTable";
import { ItemLink } from "./ItemLink";
import { integrationKey, POLL_MS } from "./queries";
import { MoreButton } from "./RunsTab";
import type { SideNames } from "./sides";

interface PairState {
  a_key?: string;
  b_key?: string;
  a_url?: string;
  b_url?: string;
}

export function ItemHistory({ id, sides, linkId }: { id: number; sides: SideNames; linkId: number }) {
  const pair = (useLocation().state ?? {}) as PairState;
  const valid = Number.isSafeInteger(linkId) && linkId > 0;
  const list = useCursorList(
    [...integrationKey(id), "events", "link", linkId],
    (cursor) =>
      unwrap(api.GET("/api/v1/integrations/{id}/events", { params: { path: { id }, query: { cursor, limit: 50, link_id: linkId } } })),
    { refetchInterval: POLL_MS },
  );
  const keys = pair.a_key && pair.b_key ? `${pair.a_key} ⇄ ${pair.b_key}` : [...new Set(list.items.map((e) => e.item_key).filter(Boolean))].join(" ⇄ ");
  return (
    <Stack gap="md">
      <Group justify="space-between">
        <Title order={3} size="h4">
          History of {keys || `linked pair ${linkId}`}
        </Title>
        <Button variant="default" component={Link} to={`/integrations/${id}/links`}>
          Back to linked items
        </Button>
      </Group>
      {pair.a_key && pair.a_url && pair.b_key && pair.b_url ? (
        <Group gap="lg">
          <Text size="sm">
            {sides.a.app}: <ItemLink itemKey={pair.a_key} url={pair.a_url} app={sides.a.app} />
          </Text>
          <Text size="sm">
            {sides.b.app}: <ItemLink itemKey={pair.b_key} url={pair.b_url} app={sides.b.app} />
          </Text>
        </Group>
      ) : null}
      {valid ? (
        <QueryState query={list.query} what="the item's history">
          {() =>
            list.items.length === 0 ? (
              <Text>Nothing recorded for this pair yet.</Text>
            ) : (
              <>
                <EventsTable events={list.items} sides={sides} label="Item history" />
                <MoreButton list={list} what="events" />
              </>
            )
          }
        </QueryState>
      ) : (
        <Text role="alert">There is no linked pair {String(linkId)}.</Text>
      )}
    </Stack>
  );
}
