/**
 * Step 4: value maps for every synced field with a finite set of values (status, priority,
 * option fields) and the user map, pre-filled from what both apps report and what the API
 * suggests (same name, same status category; users by e-mail, login, name; for a side B value
 * several side A values share, the one a change on B becomes). On a new
 * integration suggestions are filled in; when editing they are offered as hints, so that
 * visiting this step changes nothing stored.
 */
import { useEffect, useRef } from "react";
import { useQuery } from "@tanstack/react-query";
import { Group, Loader, Stack, Text } from "@mantine/core";
import { ErrorNote } from "../../components/QueryState";
import {
  mergeReverseSuggestion, mergeUserSuggestion, mergeValueSuggestion, valueDomain, type Description, type Errors, type FormState, type Suggestions,
} from "./logic";
import type { Change } from "./IntegrationBuilder";
import { suggest, useUsers } from "./queries";
import { fieldName } from "./FieldsStep";
import { UserMapTable, ValueMapTable } from "./ValueTables";

interface Props {
  form: FormState;
  change: Change;
  errors: Errors;
  a: Description;
  b: Description;
  fresh: boolean;
}

const USER_FIELDS = new Set(["assignees", "reporter"]);

export function ValuesStep({ form, change, a, b, fresh }: Props) {
  const domains = form.fields
    .map((row, index) => ({ index, row, domain: valueDomain(row, a, b) }))
    .filter((d) => d.domain !== null);
  const needUsers = form.fields.some((r) => r.direction !== "none" && r.bField && (USER_FIELDS.has(r.aField) || USER_FIELDS.has(r.bField)));
  const usersA = useUsers(form.sideA.connectionId, form.sideA.container, needUsers);
  const usersB = useUsers(form.sideB.connectionId, form.sideB.container, needUsers);
  const usersReady = !needUsers || (usersA.isSuccess && usersB.isSuccess);

  const key = JSON.stringify([form.sideA, form.sideB, domains.map((d) => [d.row.aField, d.row.bField]), needUsers]);
  const suggestions = useQuery({
    queryKey: ["builder", "suggest", key, usersA.dataUpdatedAt, usersB.dataUpdatedAt],
    enabled: usersReady,
    retry: false,
    refetchOnWindowFocus: false,
    staleTime: Infinity,
    queryFn: async () => {
      const rows: Record<number, Suggestions["statuses"]> = {};
      await Promise.all(domains.map(async ({ index, domain }) => {
        const input = domain!.kind === "status" ? { statuses: [a.statuses, b.statuses] as [typeof a.statuses, typeof b.statuses] }
          : { names: [domain!.aValues, domain!.bValues] as [string[], string[]] };
        const found = await suggest(input);
        rows[index] = domain!.kind === "status" ? found.statuses : found.priorities;
      }));
      const users = needUsers ? (await suggest({ users: [usersA.data!.users, usersB.data!.users] })).users : null;
      return { rows, users };
    },
  });

  // Once per set of suggestions: merged into the form (a person's choices always stay).
  const mergedFor = useRef<unknown>(null);
  useEffect(() => {
    const found = suggestions.data;
    if (!found || mergedFor.current === found) return;
    mergedFor.current = found;
    change((draft) => {
      for (const { index, domain } of domains) {
        const suggestion = found.rows[index];
        if (!suggestion) continue;
        const row = draft.fields[index];
        row.values = mergeValueSuggestion(row.values, domain!.aValues, suggestion, fresh);
        Object.assign(row, mergeReverseSuggestion(row.reverse, suggestion.reverse_map, fresh));
      }
      if (found.users && usersA.data) draft.users.pairs = mergeUserSuggestion(draft.users.pairs, usersA.data.users, found.users, fresh);
    });
    // Runs when new suggestions arrive; `domains` and `change` are read as of that render.
  }, [suggestions.data]);

  const loading = (needUsers && (usersA.isPending || usersB.isPending)) || suggestions.isPending;
  return (
    <Stack gap="xl">
      {loading && (
        <Group gap="xs" role="status">
          <Loader size="sm" aria-hidden />
          <Text size="sm">
            {needUsers && (usersA.isPending || usersB.isPending) ? "Reading the people of both projects…" : "Suggesting matches from both apps' values…"}
          </Text>
        </Group>
      )}
      {usersA.isError && <ErrorNote error={usersA.error} title="Could not read side A's people" onRetry={() => usersA.refetch()} />}
      {usersB.isError && <ErrorNote error={usersB.error} title="Could not read side B's people" onRetry={() => usersB.refetch()} />}
      {suggestions.isError && <ErrorNote error={suggestions.error} title="Could not get suggestions" onRetry={() => suggestions.refetch()} />}
      {domains.length === 0 && !needUsers && (
        <Text>No synced field has a fixed set of values or people to map; go on to the next step.</Text>
      )}
      {domains.map(({ index, row, domain }) => (
        <ValueMapTable key={row.aField} label={fieldName(a, row.aField)} bLabel={fieldName(b, row.bField)} row={row} domain={domain!}
          onChange={(mutate) => change((d) => mutate(d.fields[index]))} />
      ))}
      {needUsers && usersA.data && usersB.data && (
        <UserMapTable users={form.users} aUsers={usersA.data.users} bUsers={usersB.data.users}
          truncated={usersA.data.truncated || usersB.data.truncated} onChange={(mutate) => change((d) => mutate(d.users))} />
      )}
    </Stack>
  );
}
