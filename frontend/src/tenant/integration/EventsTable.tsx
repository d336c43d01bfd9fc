/**
 * Events as a table: when, what happened, to which fields, which way, why. Shared by the
 * history tab (all items) and one pair's history.
 */
import { Link } from "react-router";
import { Anchor, Badge, Table, Text } from "@mantine/core";
import type { Schemas } from "../../api/client";
import { formatDateTime, formatRelative } from "../../lib/format";
import { describeEvent } from "./describe";
import type { SideNames } from "./sides";

export function EventsTable({ events, sides, label, itemLinks }: {
  events: Schemas["EventOut"][];
  sides: SideNames;
  label: string;
  /** Base path for links to each event's pair history (`${itemLinks}/${link_id}`); none when omitted. */
  itemLinks?: string;
}) {
  const now = Date.now();
  return (
    <Table.ScrollContainer minWidth={900}>
      <Table striped aria-label={label} verticalSpacing="xs">
        <Table.Thead>
          <Table.Tr>
            <Table.Th w={150}>When</Table.Th>
            <Table.Th w={110}>Item</Table.Th>
            <Table.Th w={170}>What happened</Table.Th>
            <Table.Th w={150}>Fields</Table.Th>
            <Table.Th w={150}>Direction</Table.Th>
            <Table.Th>Why</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {events.map((event) => {
            const d = describeEvent(event, sides);
            return (
              <Table.Tr key={event.id}>
                <Table.Td>
                  <time dateTime={event.at} title={formatDateTime(event.at)}>
                    {formatRelative(event.at, now)}
                  </time>
                </Table.Td>
                <Table.Td>
                  {itemLinks && event.link_id ? (
                    <Anchor component={Link} to={`${itemLinks}/${event.link_id}`} aria-label={`History of ${event.item_key}`}>
                      {event.item_key}
                    </Anchor>
                  ) : (
                    event.item_key || "—"
                  )}
                </Table.Td>
                <Table.Td>
                  <Badge color={d.color} variant="light" tt="none" maw="100%">
                    {d.label}
                  </Badge>
                </Table.Td>
                <Table.Td>{d.what || "—"}</Table.Td>
                <Table.Td>{d.way || "—"}</Table.Td>
                <Table.Td>
                  <Text size="sm" style={{ overflowWrap: "anywhere" }}>
                    {d.why}
                  </Text>
                </Table.Td>
              </Table.Tr>
            );
          })}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}
