/**
 * The history tab: what happened to every item, newest first, searchable by item key or by
 * the event's text (which names the item's title); each row leads to its pair's history.
 */
import { Stack, Text } from "@mantine/core";
import { api, unwrap } from "../../api/client";
import { QueryState } from "../../components/QueryState";
import { useCursorList } from "../../lib/paging";
import { EventsTable } from "./EventsTable";
import { integrationKey, POLL_MS } from "./queries";
import { MoreButton } from "./RunsTab";
import { SearchBox, useSearch } from "./SearchBox";
import type { SideNames } from "./sides";

export function HistoryTab({ id, sides }: { id: number; sides: SideNames }) {
  const [text, setText, q] = useSearch();
  const list = useCursorList(
    [...integrationKey(id), "events", q],
    (cursor) =>
      unwrap(api.GET("/api/v1/integrations/{id}/events", { params: { path: { id }, query: { cursor, limit: 50, q: q || undefined } } })),
    { refetchInterval: POLL_MS },
  );
  return (
    <Stack gap="md">
      <SearchBox label="Search history" description="An item key, or words of what happened (titles are named)" value={text} onChange={setText} />
      <QueryState query={list.query} what="the history">
        {() =>
          list.items.length === 0 ? (
            <Text>{q ? `Nothing in the history matches "${q}".` : "Nothing has happened yet."}</Text>
          ) : (
            <>
              <EventsTable events={list.items} sides={sides} label="History" itemLinks={`/integrations/${id}/links`} />
              <MoreButton list={list} what="events" />
            </>
          )
        }
      </QueryState>
    </Stack>
  );
}
