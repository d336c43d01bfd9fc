/**
 * The tables of step 4: one value map (A value -> B value, defaults both ways, unmapped values
 * listed, and for a B value several A values share, which of them a change on side B becomes)
 * and the user map. Suggested pairs say why they were suggested, in words.
 */
import { Badge, Button, Group, NativeSelect, SimpleGrid, Stack, Table, Text, Title } from "@mantine/core";
import {
  applyHints, handleOf, reverseChoice, sharedTargets, unmappedValues, type FieldRow, type FormState, type RemoteUser,
  type ValueDomain,
} from "./logic";

const REASONS: Record<string, string> = {
  same_name: "same name", same_category: "same category", same_email: "same e-mail", same_login: "same login",
};

function Why({ reason, suggested }: { reason?: string; suggested?: string }) {
  if (suggested) return <Text size="xs" c="dimmed">Suggested: {suggested} ({REASONS[reason ?? ""] ?? reason})</Text>;
  if (reason) return <Badge variant="outline" size="sm" style={{ textTransform: "none" }}>Suggested: {REASONS[reason] ?? reason}</Badge>;
  return null;
}

function Unmapped({ title, values }: { title: string; values: string[] }) {
  return (
    <Text size="sm">
      <Text span fw={500}>{title}:</Text> {values.length ? values.join(", ") : "none"}
    </Text>
  );
}

/**
 * For each B value several A values share: which of them a change on side B becomes (shown
 * only when values flow from B to A). The select shows what the API will do: the choice made,
 * else the first A value in sorted order.
 */
function ReverseChoices({ label, row, onChange }: {
  label: string; row: FieldRow; onChange: (mutate: (row: FieldRow) => void) => void;
}) {
  const shared = sharedTargets(row.values);
  if (row.direction === "a_to_b" || shared.length === 0) return null;
  return (
    <Stack gap="xs" mt="sm" aria-label={`${label}: changes made on side B`} component="section">
      <Text size="sm" fw={500}>Several side A values share a side B value: choose what a change made on side B becomes.</Text>
      {shared.map(([b, as]) => {
        const hint = row.reverseSuggested?.[b];
        return (
          <Group key={b} gap="sm" align="end">
            <NativeSelect label={`When side B is ${b}, side A becomes`} w={320} value={reverseChoice(row, b, as)} data={as}
              onChange={(e) => { const v = e.currentTarget.value; onChange((r) => { r.reverse = { ...r.reverse, [b]: v }; }); }} />
            {hint && hint !== reverseChoice(row, b, as) && <Text size="xs" c="dimmed">Suggested: {hint} (same category)</Text>}
          </Group>
        );
      })}
      <Text size="xs" c="dimmed">An item whose side A value already stands for the new side B value keeps it.</Text>
    </Stack>
  );
}

export function ValueMapTable({ label, bLabel, row, domain, onChange }: {
  label: string; bLabel: string; row: FieldRow; domain: ValueDomain; onChange: (mutate: (row: FieldRow) => void) => void;
}) {
  const options = (values: string[], current: string, empty: string) => [
    { value: "", label: empty }, ...(current && !values.includes(current) ? [current] : []), ...values,
  ];
  const unmapped = unmappedValues(row.values, domain.bValues);
  const hints = row.values.some((p) => p.b === "" && p.suggested) || Object.keys(row.reverseSuggested ?? {}).length > 0;
  return (
    <section aria-label={`${label} values`}>
      <Group justify="space-between" mb="xs">
        <Title order={3} size="h4">{label} values (side A) → {bLabel} (side B)</Title>
        {hints && (
          <Button size="xs" variant="light" onClick={() => onChange((r) => {
            r.values = applyHints(r.values);
            r.reverse = { ...r.reverse, ...r.reverseSuggested };
            r.reverseSuggested = undefined;
          })}>
            Use suggested {label} matches
          </Button>
        )}
      </Group>
      <Table verticalSpacing={4} aria-label={`${label} value map`}>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Side A value</Table.Th>
            <Table.Th>Side B value</Table.Th>
            <Table.Th>Note</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {row.values.map((pair, i) => (
            <Table.Tr key={pair.a}>
              <Table.Td>{pair.a}</Table.Td>
              <Table.Td>
                <NativeSelect aria-label={`${label} on side B for ${pair.a}`} value={pair.b}
                  data={options(domain.bValues, pair.b, "Not mapped")}
                  onChange={(e) => { const v = e.currentTarget.value; onChange((r) => { r.values[i] = { a: pair.a, b: v }; }); }} />
              </Table.Td>
              <Table.Td>
                <Group gap={4}>
                  {pair.b === "" && <Badge color="orange" variant="light" style={{ textTransform: "none" }}>Unmapped</Badge>}
                  {!domain.aValues.includes(pair.a) && <Badge color="gray" variant="light" style={{ textTransform: "none" }}>Not reported by side A now</Badge>}
                  <Why reason={pair.reason} suggested={pair.b === "" ? pair.suggested : undefined} />
                </Group>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <SimpleGrid cols={2} mt="sm">
        <NativeSelect label={`${label} on side B for unmapped values`} value={row.defaultB}
          description="An A value without a match becomes this on B"
          data={options(domain.bValues, row.defaultB, "Keep the value unchanged")}
          onChange={(e) => { const v = e.currentTarget.value; onChange((r) => { r.defaultB = v; }); }} />
        <NativeSelect label={`${label} on side A for unmapped values`} value={row.defaultA}
          description="A B value no A value maps to becomes this on A"
          data={options(domain.aValues, row.defaultA, "Keep the value unchanged")}
          onChange={(e) => { const v = e.currentTarget.value; onChange((r) => { r.defaultA = v; }); }} />
      </SimpleGrid>
      <ReverseChoices label={label} row={row} onChange={onChange} />
      <Stack gap={2} mt="sm">
        <Unmapped title="Side A values without a match" values={unmapped.a} />
        <Unmapped title="Side B values no side A value maps to" values={unmapped.b} />
      </Stack>
    </section>
  );
}

type Users = FormState["users"];

export function UserMapTable({ users, aUsers, bUsers, truncated, onChange }: {
  users: Users; aUsers: RemoteUser[]; bUsers: RemoteUser[]; truncated: boolean; onChange: (mutate: (users: Users) => void) => void;
}) {
  const nameOf = new Map(aUsers.map((u) => [handleOf(u), u.name]));
  const bOptions = (current: string, empty: string) => [
    { value: "", label: empty },
    ...(current && !bUsers.some((u) => handleOf(u) === current) ? [current] : []),
    ...bUsers.map((u) => ({ value: handleOf(u), label: `${u.name} (${handleOf(u)})` })),
  ];
  const aOptions = [{ value: "", label: "Leave unassigned" }, ...aUsers.map((u) => ({ value: handleOf(u), label: `${u.name} (${handleOf(u)})` }))];
  if (users.defaultA && !aUsers.some((u) => handleOf(u) === users.defaultA)) aOptions.push({ value: users.defaultA, label: users.defaultA });
  const used = new Set(users.pairs.map((p) => p.b).filter(Boolean));
  const hints = users.pairs.some((p) => p.b === "" && p.suggested);
  return (
    <section aria-label="People">
      <Group justify="space-between" mb="xs">
        <Title order={3} size="h4">People</Title>
        {hints && (
          <Button size="xs" variant="light" onClick={() => onChange((u) => { u.pairs = applyHints(u.pairs); })}>
            Use suggested user matches
          </Button>
        )}
      </Group>
      <NativeSelect label="Match users by" value={users.match} mb="sm" w={320}
        description="People with the same address (or login) on both sides match without a row below"
        data={[{ value: "email", label: "E-mail address" }, { value: "login", label: "Login" }]}
        onChange={(e) => { const v = e.currentTarget.value as Users["match"]; onChange((u) => { u.match = v; }); }} />
      {truncated && <Text size="sm" c="dimmed" mb="xs">Only the first 200 people of a project are listed.</Text>}
      <Table verticalSpacing={4} aria-label="User map">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Side A person</Table.Th>
            <Table.Th>Side B person</Table.Th>
            <Table.Th>Note</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {users.pairs.map((pair, i) => {
            const name = nameOf.get(pair.a) ?? pair.a;
            return (
              <Table.Tr key={pair.a}>
                <Table.Td>
                  <Text size="sm">{name}</Text>
                  <Text size="xs" c="dimmed">{pair.a}</Text>
                </Table.Td>
                <Table.Td>
                  <NativeSelect aria-label={`Side B user for ${name}`} value={pair.b} data={bOptions(pair.b, "Not mapped")}
                    onChange={(e) => { const v = e.currentTarget.value; onChange((u) => { u.pairs[i] = { a: pair.a, b: v }; }); }} />
                </Table.Td>
                <Table.Td>
                  <Group gap={4}>
                    {pair.b === "" && <Badge color="orange" variant="light" style={{ textTransform: "none" }}>Unmapped</Badge>}
                    <Why reason={pair.reason} suggested={pair.b === "" ? pair.suggested : undefined} />
                  </Group>
                </Table.Td>
              </Table.Tr>
            );
          })}
        </Table.Tbody>
      </Table>
      <SimpleGrid cols={2} mt="sm">
        <NativeSelect label="Default user on side B" value={users.defaultB} description="For side A people without a match"
          data={bOptions(users.defaultB, "Leave unassigned")}
          onChange={(e) => { const v = e.currentTarget.value; onChange((u) => { u.defaultB = v; }); }} />
        <NativeSelect label="Default user on side A" value={users.defaultA} description="For side B people without a match"
          data={aOptions}
          onChange={(e) => { const v = e.currentTarget.value; onChange((u) => { u.defaultA = v; }); }} />
      </SimpleGrid>
      <Stack gap={2} mt="sm">
        <Unmapped title="Side A people without a match" values={users.pairs.filter((p) => p.b === "").map((p) => nameOf.get(p.a) ?? p.a)} />
        <Unmapped title="Side B people nobody maps to" values={bUsers.filter((u) => !used.has(handleOf(u))).map((u) => u.name)} />
      </Stack>
    </section>
  );
}
