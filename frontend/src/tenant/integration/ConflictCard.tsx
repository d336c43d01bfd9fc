/**
 * One conflict: a field changed on both sides since the last sync, held for a person. Both
 * values side by side with the last synced one; an editor keeps one side's value or types a
 * merged one (as side A holds the field), then resolves; the engine writes it on its next look.
 */
import { useState, type FormEvent } from "react";
import { Link } from "react-router";
import { useMutation } from "@tanstack/react-query";
import { Alert, Anchor, Badge, Button, Group, Paper, Radio, SimpleGrid, Stack, Text, Textarea, Title } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { api, unwrap, type Schemas } from "../../api/client";
import { applyApiErrors } from "../../lib/forms";
import { formatDateTime, formatRelative } from "../../lib/format";
import type { SideNames } from "./sides";
import { editableValue, formatValue, parseMergedValue } from "./values";

type Conflict = Schemas["ConflictOut"];
type Choice = "a" | "b" | "value";

export function ConflictCard({ id, conflict, sides, editor, onResolved }: {
  id: number;
  conflict: Conflict;
  sides: SideNames;
  editor: boolean;
  onResolved: () => void;
}) {
  const c = conflict;
  const titleId = `conflict-${c.id}-title`;
  return (
    <Paper withBorder p="md" radius="md" component="article" aria-labelledby={titleId}>
      <Stack gap="sm">
        <Group justify="space-between" align="flex-start">
          <div>
            <Title order={3} size="h5" id={titleId}>
              {c.field} of {c.a_key} ⇄ {c.b_key}
            </Title>
            <Text size="xs" c="dimmed">
              Held <time dateTime={c.created_at} title={formatDateTime(c.created_at)}>{formatRelative(c.created_at)}</time> ·{" "}
              <Anchor component={Link} to={`/integrations/${id}/links/${c.link_id}`} size="xs">
                history of this pair
              </Anchor>
            </Text>
          </div>
          <Badge color={c.state === "open" ? "orange" : "green"} variant="light">
            {c.state === "open" ? "Open" : "Resolved"}
          </Badge>
        </Group>
        <SimpleGrid cols={3} spacing="sm">
          <Value label={`${sides.a.name} (side A) now`} value={c.a_value} />
          <Value label={`${sides.b.name} (side B) now`} value={c.b_value} />
          <Value label="Last synced value" value={c.base_value} muted />
        </SimpleGrid>
        {c.state === "resolved" ? (
          <Text size="sm">
            {resolutionText(c, sides)}
            {c.resolved_by ? ` by ${c.resolved_by}` : ""}
            {c.resolved_at ? ` ${formatRelative(c.resolved_at)}` : ""} ·{" "}
            {c.applied_at ? `written to the apps ${formatRelative(c.applied_at)}` : "waiting for the engine to write it"}
          </Text>
        ) : editor ? (
          <ResolveForm id={id} conflict={c} sides={sides} onResolved={onResolved} />
        ) : null}
      </Stack>
    </Paper>
  );
}

function Value({ label, value, muted }: { label: string; value: unknown; muted?: boolean }) {
  return (
    <Stack gap={4}>
      <Text size="xs" fw={600} c="dimmed" tt="uppercase">
        {label}
      </Text>
      <Paper withBorder p="xs" bg={muted ? "gray.0" : undefined}>
        <Text size="sm" ff={typeof value === "object" && value !== null && !Array.isArray(value) ? "monospace" : undefined} style={{ whiteSpace: "pre-wrap", overflowWrap: "anywhere" }}>
          {formatValue(value)}
        </Text>
      </Paper>
    </Stack>
  );
}

export function resolutionText(c: Pick<Conflict, "resolution" | "resolved_value">, sides: SideNames): string {
  if (c.resolution === "a" || c.resolution === "b") {
    return `Kept ${sides[c.resolution].name}'s value (${formatValue(c.resolved_value)})`;
  }
  if (c.resolution === "value") {
    return `Set to ${formatValue(c.resolved_value)}`;
  }
  return `Settled by the policy (${c.resolution ?? "unknown"}): ${formatValue(c.resolved_value)}`;
}

function ResolveForm({ id, conflict, sides, onResolved }: { id: number; conflict: Conflict; sides: SideNames; onResolved: () => void }) {
  const [choice, setChoice] = useState<Choice | null>(null);
  const [text, setText] = useState(() => editableValue(conflict.a_value));
  const [errors, setErrors] = useState<{ choice?: string; value?: string; other?: string }>({});
  const resolve = useMutation({
    mutationFn: (body: { side: "a" | "b" } | { value: unknown }) =>
      unwrap(api.POST("/api/v1/integrations/{id}/conflicts/{conflict_id}/resolve", {
        params: { path: { id, conflict_id: conflict.id } },
        // Exactly one of side and value: the API refuses both. The generated type has both
        // (openapi-typescript types a field with a default as always present).
        body: body as Schemas["Resolve"],
      })),
    onSuccess: () => {
      notifications.show({ title: "Conflict resolved", message: `${conflict.field} of ${conflict.a_key}: the engine writes it on its next look.` });
      onResolved();
    },
    onError: (error) => {
      const found: typeof errors = {};
      const rest = applyApiErrors(error, (field, message) => {
        found[field === "side" ? "choice" : "value"] = message;
      }, ["side", "value"]);
      setErrors({ ...found, other: rest ?? undefined });
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!choice) {
      setErrors({ choice: "Choose which value wins" });
      return;
    }
    if (choice === "value") {
      const parsed = parseMergedValue(text, [conflict.a_value, conflict.b_value]);
      if (!parsed.ok) {
        setErrors({ value: parsed.error });
        return;
      }
      setErrors({});
      resolve.mutate({ value: parsed.value });
    } else {
      setErrors({});
      resolve.mutate({ side: choice });
    }
  };
  const label = `${conflict.field} of ${conflict.a_key}`;
  return (
    <form onSubmit={submit} noValidate aria-label={`Resolve ${label}`}>
      <Stack gap="sm">
        {errors.other ? (
          <Alert color="red" role="alert">
            {errors.other}
          </Alert>
        ) : null}
        <Radio.Group label="Which value wins?" value={choice} onChange={(value) => setChoice(value as Choice)} error={errors.choice} required>
          <Group gap="lg" mt={4}>
            <Radio value="a" label={`${sides.a.name}'s value`} />
            <Radio value="b" label={`${sides.b.name}'s value`} />
            <Radio value="value" label="Type my own value" />
          </Group>
        </Radio.Group>
        {choice === "value" ? (
          <Textarea
            label="Merged value"
            description={`As ${sides.a.name} holds the field; Tandem writes it to ${sides.a.name} and maps it to ${sides.b.name}.${Array.isArray(conflict.a_value) ? " Separate entries with commas." : ""}`}
            value={text}
            onChange={(event) => setText(event.currentTarget.value)}
            error={errors.value}
            autosize
            minRows={1}
            maxRows={8}
            data-autofocus
          />
        ) : null}
        <Group>
          <Button type="submit" loading={resolve.isPending} aria-label={`Resolve ${label}`}>
            Resolve
          </Button>
        </Group>
      </Stack>
    </form>
  );
}
