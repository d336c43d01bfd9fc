/**
 * Step 3: for each side A field, the side B field it corresponds to and which way changes
 * flow. The direction is shown as an arrow with words (never colour alone).
 */
import { Badge, NativeSelect, Table, Text } from "@mantine/core";
import { directionText, type Description, type Direction, type Errors, type FormState } from "./logic";
import type { Change } from "./IntegrationBuilder";

interface Props {
  form: FormState;
  change: Change;
  errors: Errors;
  a: Description;
  b: Description;
}

const DIRECTION_OPTIONS: { value: Direction; label: string }[] = [
  { value: "both", label: "⇄ Both ways" },
  { value: "a_to_b", label: "→ A to B only" },
  { value: "b_to_a", label: "← B to A only" },
  { value: "none", label: "✕ Not synced" },
];

const COLOURS: Record<Direction, string> = { both: "indigo", a_to_b: "teal", b_to_a: "grape", none: "gray" };

export function DirectionBadge({ direction }: { direction: Direction }) {
  return (
    <Badge variant="light" color={COLOURS[direction]} style={{ textTransform: "none" }}>
      {directionText(direction)}
    </Badge>
  );
}

export function fieldName(description: Description, id: string): string {
  return description.fields.find((f) => f.id === id)?.name ?? id;
}

export function FieldsStep({ form, change, errors, a, b }: Props) {
  const bOptions = (current: string) => [
    { value: "", label: "No field" },
    ...(current && !b.fields.some((f) => f.id === current) ? [{ value: current, label: current }] : []),
    ...b.fields.map((f) => ({ value: f.id, label: `${f.name} (${f.id})${f.writable ? "" : ", read only"}` })),
  ];
  return (
    <>
      <Text size="sm" mb="sm">
        Each row maps a field of {a.name} (side A) to a field of {b.name} (side B). “Both ways” copies a change made on
        either side; a one-way field is only ever written on the side the arrow points to.
      </Text>
      {errors.fields && (
        <Text c="red" size="sm" role="alert" mb="sm">
          {errors.fields}
        </Text>
      )}
      <Table verticalSpacing="xs" aria-label="Field mappings">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Side A field</Table.Th>
            <Table.Th>Direction</Table.Th>
            <Table.Th>Side B field</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {form.fields.map((row, i) => {
            const name = fieldName(a, row.aField);
            const aField = a.fields.find((f) => f.id === row.aField);
            const bField = b.fields.find((f) => f.id === row.bField);
            const writesA = row.direction === "both" || row.direction === "b_to_a";
            const writesB = row.direction === "both" || row.direction === "a_to_b";
            const readOnly = [writesB && bField && !bField.writable ? `side B cannot write ${bField.name}` : "",
              writesA && aField && !aField.writable ? `side A cannot write ${aField.name}` : ""].filter(Boolean);
            return (
              <Table.Tr key={row.aField}>
                <Table.Td>
                  <Text size="sm" fw={500}>{name}</Text>
                  <Text size="xs" c="dimmed">{row.aField}{aField?.required ? ", required" : ""}</Text>
                </Table.Td>
                <Table.Td>
                  <NativeSelect aria-label={`Direction of ${name}`} value={row.direction} data={DIRECTION_OPTIONS}
                    onChange={(e) => { const v = e.currentTarget.value as Direction; change((d) => { d.fields[i].direction = v; }); }} />
                  <DirectionBadge direction={row.direction} />
                </Table.Td>
                <Table.Td>
                  <NativeSelect aria-label={`Side B field for ${name}`} value={row.bField} data={bOptions(row.bField)}
                    error={errors[`fields.${i}.bField`] ?? errors[`fields.${i}.aField`]}
                    onChange={(e) => {
                      const v = e.currentTarget.value;
                      change((d) => {
                        d.fields[i].bField = v;
                        // Values mapped for another B field mean nothing for this one.
                        d.fields[i].values = [];
                        d.fields[i].defaultA = "";
                        d.fields[i].defaultB = "";
                        if (v === "") d.fields[i].direction = "none";
                        else if (d.fields[i].direction === "none") d.fields[i].direction = "both";
                      });
                    }} />
                  {readOnly.length > 0 && (
                    <Text size="xs" c="orange.8">Note: {readOnly.join("; ")}; choose a one-way direction.</Text>
                  )}
                </Table.Td>
              </Table.Tr>
            );
          })}
        </Table.Tbody>
      </Table>
    </>
  );
}
