/**
 * Step 2: which item type on side A corresponds to which on side B. Labels narrow a match and
 * are added on create (GitLab has one kind of issue: Bug <-> issue labelled "bug").
 */
import { Button, Group, NativeSelect, Table, TagsInput, Text, VisuallyHidden } from "@mantine/core";
import type { Description, Errors, FormState } from "./logic";
import type { Change } from "./IntegrationBuilder";

interface Props {
  form: FormState;
  change: Change;
  errors: Errors;
  a: Description;
  b: Description;
}

const choices = (types: string[], current: string) => [
  { value: "", label: "Choose a type" },
  ...(current && !types.includes(current) ? [current] : []),
  ...types,
];

export function TypesStep({ form, change, errors, a, b }: Props) {
  return (
    <>
      <Text size="sm" mb="sm">
        Items of a side A type become items of the side B type next to it, and back. Labels, when given, narrow the match
        to items carrying them and are added to items Tandem creates.
      </Text>
      {errors.types && (
        <Text c="red" size="sm" role="alert" mb="sm">
          {errors.types}
        </Text>
      )}
      <Table verticalSpacing="sm" aria-label="Type mappings">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Side A type ({a.name})</Table.Th>
            <Table.Th>Side A labels</Table.Th>
            <Table.Th><VisuallyHidden>Corresponds to</VisuallyHidden></Table.Th>
            <Table.Th>Side B type ({b.name})</Table.Th>
            <Table.Th>Side B labels</Table.Th>
            <Table.Th><VisuallyHidden>Actions</VisuallyHidden></Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {form.types.map((row, i) => (
            <Table.Tr key={i}>
              <Table.Td>
                <NativeSelect aria-label={`Side A type, row ${i + 1}`} value={row.aType} data={choices(a.item_types, row.aType)}
                  error={errors[`types.${i}.aType`]}
                  onChange={(e) => { const v = e.currentTarget.value; change((d) => { d.types[i].aType = v; }); }} />
              </Table.Td>
              <Table.Td>
                <TagsInput aria-label={`Side A labels, row ${i + 1}`} value={row.aLabels} data={a.labels} placeholder="none"
                  onChange={(v) => change((d) => { d.types[i].aLabels = v; })} />
              </Table.Td>
              <Table.Td>
                <Text aria-hidden>↔</Text>
              </Table.Td>
              <Table.Td>
                <NativeSelect aria-label={`Side B type, row ${i + 1}`} value={row.bType} data={choices(b.item_types, row.bType)}
                  error={errors[`types.${i}.bType`]}
                  onChange={(e) => { const v = e.currentTarget.value; change((d) => { d.types[i].bType = v; }); }} />
              </Table.Td>
              <Table.Td>
                <TagsInput aria-label={`Side B labels, row ${i + 1}`} value={row.bLabels} data={b.labels} placeholder="none"
                  onChange={(v) => change((d) => { d.types[i].bLabels = v; })} />
              </Table.Td>
              <Table.Td>
                <Button variant="subtle" color="red" size="xs" aria-label={`Remove type mapping ${i + 1}`}
                  onClick={() => change((d) => { d.types.splice(i, 1); })}>
                  Remove
                </Button>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <Group mt="sm">
        <Button variant="light" onClick={() => change((d) => { d.types.push({ aType: "", bType: "", aLabels: [], bLabels: [] }); })}>
          Add type mapping
        </Button>
      </Group>
    </>
  );
}
