/**
 * What a preview (dry run) found: the items the next run would create and update, the links it
 * would record and the conflicts it would hold. Nothing listed here has been written.
 */
import { Stack, Table, Text, Title } from "@mantine/core";
import type { Schemas } from "../../api/client";

type Preview = Schemas["PreviewOut"];

/** A field value as a person reads it (users by name, lists joined). */
export function valueText(value: unknown): string {
  if (value === null || value === undefined || value === "") return "(empty)";
  if (Array.isArray(value)) return value.length ? value.map(valueText).join(", ") : "(empty)";
  if (typeof value === "object") {
    const named = value as { name?: unknown };
    return typeof named.name === "string" ? named.name : JSON.stringify(value);
  }
  const text = String(value);
  return text.length > 120 ? `${text.slice(0, 117)}…` : text;
}

const sideName = (side: string) => `Side ${side.toUpperCase()}`;

export function PreviewResult({ preview }: { preview: Preview }) {
  const { creates, updates, links, conflicts } = preview;
  const total = creates.length + updates.length + links.length + conflicts.length;
  return (
    <Stack gap="md" aria-label="Preview of the first run">
      <Text fw={500} role="status">
        {total === 0
          ? "The next run would write nothing (no item matches the start point and filters yet)."
          : `The next run would create ${creates.length} item(s), update ${updates.length}, record ${links.length} link(s) and hold ${conflicts.length} conflict(s).`}
      </Text>
      {creates.length > 0 && (
        <section aria-label="Items it would create">
          <Title order={3} size="h4" mb="xs">Items it would create ({creates.length})</Title>
          <Table striped aria-label="Planned creates">
            <Table.Thead>
              <Table.Tr><Table.Th>Created on</Table.Th><Table.Th>Copy of</Table.Th><Table.Th>Type</Table.Th><Table.Th>Title</Table.Th><Table.Th>Other fields</Table.Th></Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {creates.map((c, i) => (
                <Table.Tr key={i}>
                  <Table.Td>{sideName(c.side)}</Table.Td>
                  <Table.Td>{c.source}</Table.Td>
                  <Table.Td>{c.type}</Table.Td>
                  <Table.Td>{valueText(c.fields.title)}</Table.Td>
                  <Table.Td>
                    <Text size="xs">
                      {Object.entries(c.fields).filter(([k]) => k !== "title" && k !== "description")
                        .map(([k, v]) => `${k}: ${valueText(v)}`).join("; ") || "—"}
                    </Text>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </section>
      )}
      {updates.length > 0 && (
        <section aria-label="Items it would update">
          <Title order={3} size="h4" mb="xs">Items it would update ({updates.length})</Title>
          <Table striped aria-label="Planned updates">
            <Table.Thead>
              <Table.Tr><Table.Th>Item</Table.Th><Table.Th>From</Table.Th><Table.Th>Changes</Table.Th><Table.Th>Why</Table.Th></Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {updates.map((u, i) => (
                <Table.Tr key={i}>
                  <Table.Td>{u.item} ({sideName(u.side)})</Table.Td>
                  <Table.Td>{u.source}</Table.Td>
                  <Table.Td>
                    {Object.entries(u.fields).map(([field, change]) => (
                      <Text size="xs" key={field}>{field}: {valueText(change.old)} → {valueText(change.new)}</Text>
                    ))}
                  </Table.Td>
                  <Table.Td><Text size="xs">{u.why}</Text></Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </section>
      )}
      {links.length > 0 && (
        <section aria-label="Links it would record">
          <Title order={3} size="h4" mb="xs">Links it would record ({links.length})</Title>
          {links.map((l, i) => (
            <Text size="sm" key={i}>{l.item} ({sideName(l.side)}) ↔ {l.source}: {l.why}</Text>
          ))}
        </section>
      )}
      {conflicts.length > 0 && (
        <section aria-label="Conflicts it would hold">
          <Title order={3} size="h4" mb="xs">Conflicts it would find ({conflicts.length})</Title>
          {conflicts.map((c, i) => (
            <Text size="sm" key={i}>{c.item}, {c.field}: side A {valueText(c.a_value)}, side B {valueText(c.b_value)} ({c.why})</Text>
          ))}
        </section>
      )}
    </Stack>
  );
}
