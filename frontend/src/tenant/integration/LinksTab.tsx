/**
 * The linked items tab: every synced pair, newest first, searchable by key or title on either
 * side; each item opens in its app (new tab), and each pair's history has its own address
 * (links/:linkId).
 */
import { Link } from "react-router";
import { Badge, Button, Stack, Table, Text, VisuallyHidden } from "@mantine/core";
import { api, unwrap, type Schemas } from "../../api/client";
import { QueryState } from "../../components/QueryState";
import { formatDateTime, formatRelative } from "../../lib/format";
import { useCursorList } from "../../lib/paging";
import { integrationKey, POLL_MS } from "./queries";
import { ItemLink } from "./ItemLink";
import { ItemHistory } from "./ItemHistory";
import { MoreButton } from "./RunsTab";
import { SearchBox, useSearch } from "./SearchBox";
import type { SideNames } from "./sides";

export const LINK_STATE: Record<Schemas["LinkOut"]["state"], { label: string; color: string }> = {
  active: { label: "In sync", color: "green" },
  conflict: { label: "Conflict", color: "orange" },
  error: { label: "Error", color: "red" },
  deleted: { label: "Deleted", color: "gray" },
};

export function LinksTab({ id, sides, linkId }: { id: number; sides: SideNames; linkId: number | null }) {
  if (linkId !== null) {
    return <ItemHistory id={id} sides={sides} linkId={linkId} />;
  }
  return <LinkList id={id} sides={sides} />;
}

function LinkList({ id, sides }: { id: number; sides: SideNames }) {
  const [text, setText, q] = useSearch();
  const list = useCursorList(
    [...integrationKey(id), "links", q],
    (cursor) =>
      unwrap(api.GET("/api/v1/integrations/{id}/links", { params: { path: { id }, query: { cursor, limit: 50, q: q || undefined } } })),
    { refetchInterval: POLL_MS },
  );
  const now = Date.now();
  return (
    <Stack gap="md">
      <SearchBox
        label="Search linked items"
        description={`Part of a key or title on either side (${sides.a.name} or ${sides.b.name})`}
        value={text}
        onChange={setText}
      />
      <QueryState query={list.query} what="the linked items">
        {() =>
          list.items.length === 0 ? (
            <Text>{q ? `No linked items match "${q}".` : "No items are linked yet. They appear here as runs sync them."}</Text>
          ) : (
            <>
              <Table.ScrollContainer minWidth={900}>
                <Table striped highlightOnHover aria-label="Linked items">
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>
                        Side A: {sides.a.app} · {sides.a.container}
                      </Table.Th>
                      <Table.Th>
                        Side B: {sides.b.app} · {sides.b.container}
                      </Table.Th>
                      <Table.Th>State</Table.Th>
                      <Table.Th>Last synced</Table.Th>
                      <Table.Th>
                        <VisuallyHidden>History</VisuallyHidden>
                      </Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {list.items.map((link) => (
                      <Table.Tr key={link.id}>
                        <Table.Td>
                          <ItemLink itemKey={link.a_key} url={link.a_url} app={sides.a.app} />
                          {link.a_title ? <Text size="sm">{link.a_title}</Text> : null}
                        </Table.Td>
                        <Table.Td>
                          <ItemLink itemKey={link.b_key} url={link.b_url} app={sides.b.app} />
                          {link.b_title ? <Text size="sm">{link.b_title}</Text> : null}
                        </Table.Td>
                        <Table.Td>
                          <Badge color={LINK_STATE[link.state].color} variant="light">
                            {LINK_STATE[link.state].label}
                          </Badge>
                        </Table.Td>
                        <Table.Td>
                          <time dateTime={link.synced_at} title={formatDateTime(link.synced_at)}>
                            {formatRelative(link.synced_at, now)}
                          </time>
                        </Table.Td>
                        <Table.Td>
                          <Button
                            size="xs"
                            variant="light"
                            component={Link}
                            to={`/integrations/${id}/links/${link.id}`}
                            state={{ a_key: link.a_key, b_key: link.b_key, a_url: link.a_url, b_url: link.b_url }}
                            aria-label={`History of ${link.a_key} and ${link.b_key}`}
                          >
                            History
                          </Button>
                        </Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              </Table.ScrollContainer>
              <MoreButton list={list} what="linked items" />
            </>
          )
        }
      </QueryState>
    </Stack>
  );
}
