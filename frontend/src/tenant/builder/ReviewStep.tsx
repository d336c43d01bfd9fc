/**
 * Step 6: name, what an edit changes, save, preview, enable. A new integration is saved
 * disabled (so that the preview can read it), previewed, and enabled only when a person says
 * so; saving again after going back updates the same integration. An edit is previewed before
 * it is saved ("Preview changes": the API previews the edited spec and stores nothing), then
 * saved. API validation errors go next to their fields, on the step they belong to.
 */
import { useEffect, useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useNavigate } from "react-router";
import { Alert, Badge, Button, Group, Loader, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { api, ApiError, unwrap, type Schemas } from "../../api/client";
import { ErrorNote } from "../../components/QueryState";
import { formPathOf, formToSpec, specDiff, stepOf, validateStep, type Errors, type FormState } from "./logic";
import type { Change } from "./IntegrationBuilder";
import { PreviewResult } from "./PreviewResult";

type Integration = Schemas["IntegrationOut"];

const START = { new: "only items created from now on", since: "items updated since the date given", all: "the full history" };
const POLICY = { newest: "the newest change wins", a_wins: "side A wins", b_wins: "side B wins", hold: "held for a person" };

interface Props {
  form: FormState;
  change: Change;
  errors: Errors;
  setErrors: (errors: Errors) => void;
  existing: Integration | null;
  /** The integration as last saved by this builder (kept by the builder across steps). */
  saved: Integration | null;
  setSaved: (integration: Integration) => void;
  goTo: (step: number) => void;
}

/** Seconds since `running` became true (for progress of a long call). */
function useElapsed(running: boolean): number {
  const [seconds, setSeconds] = useState(0);
  useEffect(() => {
    setSeconds(0);
    if (!running) return;
    const started = Date.now();
    const timer = setInterval(() => setSeconds(Math.floor((Date.now() - started) / 1000)), 1000);
    return () => clearInterval(timer);
  }, [running]);
  return seconds;
}

export function ReviewStep({ form, change, errors, setErrors, existing, saved, setSaved, goTo }: Props) {
  const navigate = useNavigate();
  const client = useQueryClient();
  const [problem, setProblem] = useState<string | null>(null);
  const { spec, fieldRows } = formToSpec(form);
  const name = form.name.trim();
  const changes = existing ? specDiff(existing.spec, spec) : [];
  const renamed = existing !== null && existing.name !== name;
  // What is stored now equals the form: no need to save before a preview.
  const upToDate = saved !== null && saved.name === name && specDiff(saved.spec, spec).length === 0;

  const save = useMutation({
    mutationFn: async (): Promise<Integration> => {
      if (saved === null) {
        return unwrap(api.POST("/api/v1/integrations", { body: { name, spec, enabled: false } }));
      }
      // Only the fields sent change (IntegrationPatch); enabled and paused stay as they are.
      return unwrap(api.PATCH("/api/v1/integrations/{id}", { params: { path: { id: saved.id } }, body: { name, spec } }));
    },
    onSuccess: (integration) => {
      setSaved(integration);
      client.invalidateQueries({ queryKey: ["integrations"] });
    },
  });
  // The spec previewed with it (the form's, unsaved, for "Preview changes"), to tell when the form moved on.
  const [previewed, setPreviewed] = useState<string | null>(null);
  const preview = useMutation({
    mutationFn: ({ id, edit }: { id: number; edit?: typeof spec }) =>
      unwrap(api.POST("/api/v1/integrations/{id}/preview", { params: { path: { id } }, body: edit ? { spec: edit } : {} })),
  });
  const previewStored = (id: number) => {
    setPreviewed(null);
    preview.mutate({ id });
  };
  const previewEdit = () => {
    if (!existing) return;
    setErrors({});
    setProblem(null);
    setPreviewed(JSON.stringify(spec));
    // A spec the API refuses: its errors go next to their fields, as on saving; others show below.
    preview.mutate({ id: existing.id, edit: spec }, {
      onError: (error) => { if (error instanceof ApiError && error.status === 422) placeErrors(error); },
    });
  };
  const stalePreview = preview.isSuccess && (previewed === null ? !upToDate : previewed !== JSON.stringify(spec));
  const enable = useMutation({
    mutationFn: (id: number) => unwrap(api.POST("/api/v1/integrations/{id}/enable", { params: { path: { id } } })),
    onSuccess: (integration) => {
      client.invalidateQueries({ queryKey: ["integrations"] });
      navigate(`/integrations/${integration.id}`);
    },
  });
  const elapsed = useElapsed(preview.isPending);

  /** Put the API's validation errors next to their fields; go to the first step that has one. */
  const placeErrors = (error: unknown) => {
    if (error instanceof ApiError && error.status === 409 && /name/i.test(error.message)) {
      setErrors({ name: error.message });
      return;
    }
    const placed: Errors = {};
    const rest: string[] = [];
    for (const f of error instanceof ApiError ? error.fields : []) {
      const path = formPathOf(f.field, fieldRows);
      if (path) placed[path] = f.message;
      else rest.push(`${f.field}: ${f.message}`);
    }
    const first = Math.min(...Object.keys(placed).map(stepOf));
    if (Number.isFinite(first) && first < 5) goTo(first);
    setErrors(placed);
    if (rest.length > 0) setProblem(rest.join("; "));
    else if (Object.keys(placed).length === 0) setProblem(error instanceof Error ? error.message : String(error));
  };

  const saveThen = async (andThen: "preview" | "leave") => {
    const local = validateStep(5, form);
    setErrors(local);
    setProblem(null);
    if (Object.keys(local).length > 0) return;
    let integration = saved;
    if (!upToDate || integration === null) {
      try {
        integration = await save.mutateAsync();
      } catch (error) {
        placeErrors(error);
        return;
      }
    }
    if (andThen === "leave") navigate(`/integrations/${integration.id}`);
    else previewStored(integration.id);
  };

  const busy = save.isPending || preview.isPending || enable.isPending;
  return (
    <Stack gap="lg">
      <TextInput label="Integration name" value={form.name} maxLength={100} w={420} error={errors.name} required
        onChange={(e) => { const v = e.currentTarget.value; change((d) => { d.name = v; }); }} />
      <Text size="sm" aria-label="Summary">
        {spec.type_mappings.length} type mapping(s); {spec.field_mappings?.length ?? 0} field(s) synced; comments{" "}
        {form.comments.enabled ? "synced" : "not synced"}; attachments {form.attachments.enabled ? `up to ${form.attachments.maxMegabytes} MB` : "not synced"};
        {" "}first run takes {START[form.start.mode]}; conflicts: {POLICY[form.conflictPolicy]}; polls every {form.intervalSeconds} s.
      </Text>
      {existing && (
        <section aria-label="What this edit changes">
          <Title order={3} size="h4" mb="xs">What this edit changes</Title>
          {changes.length === 0 && !renamed ? (
            <Text size="sm">Nothing yet: the integration is as stored.</Text>
          ) : (
            <Table aria-label="Changes" verticalSpacing={4}>
              <Table.Thead>
                <Table.Tr><Table.Th>Setting</Table.Th><Table.Th>Change</Table.Th><Table.Th>Before</Table.Th><Table.Th>After</Table.Th></Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {renamed && (
                  <Table.Tr><Table.Td>Name</Table.Td><Table.Td><Badge variant="light" style={{ textTransform: "none" }}>changed</Badge></Table.Td>
                    <Table.Td>{existing.name}</Table.Td><Table.Td>{name}</Table.Td></Table.Tr>
                )}
                {changes.map((c) => (
                  <Table.Tr key={c.what}>
                    <Table.Td>{c.what}</Table.Td>
                    <Table.Td>
                      <Badge variant="light" color={c.kind === "added" ? "green" : c.kind === "removed" ? "red" : "blue"} style={{ textTransform: "none" }}>
                        {c.kind}
                      </Badge>
                    </Table.Td>
                    <Table.Td>{c.before ?? "—"}</Table.Td>
                    <Table.Td>{c.after ?? "—"}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          )}
        </section>
      )}
      {problem && <Alert color="red" role="alert" title="Not saved">{problem}</Alert>}
      <Group>
        {existing ? (
          <>
            <Button onClick={previewEdit} loading={preview.isPending} disabled={busy}>Preview changes</Button>
            <Button variant="default" onClick={() => saveThen("leave")} loading={save.isPending}
              disabled={busy || (changes.length === 0 && !renamed)}>
              Save changes
            </Button>
          </>
        ) : (
          <Button onClick={() => saveThen("preview")} loading={save.isPending || preview.isPending} disabled={busy}>
            {upToDate ? "Preview again" : "Save and preview"}
          </Button>
        )}
        {saved && !existing && !saved.enabled && preview.isSuccess && (
          <Button color="green" onClick={() => enable.mutate(saved.id)} loading={enable.isPending} disabled={busy || !upToDate}>
            Enable
          </Button>
        )}
        {saved && !existing && saved.enabled && preview.isSuccess && (
          <Button variant="default" onClick={() => navigate(`/integrations/${saved.id}`)}>Open integration</Button>
        )}
      </Group>
      {saved && !existing && !save.isPending && (
        <Text size="sm" c="dimmed">Saved as “{saved.name}”, disabled: nothing syncs until you enable it.</Text>
      )}
      {preview.isPending && (
        <Group gap="xs" role="status">
          <Loader size="sm" aria-hidden />
          <Text size="sm">
            {existing ? "Previewing the next run with these changes" : "Previewing the first run"}: reading up to 100
            items from both apps, writing nothing… {elapsed} s
          </Text>
        </Group>
      )}
      {preview.isError && !(preview.error instanceof ApiError && preview.error.status === 422) && (
        <ErrorNote error={preview.error} title="The preview failed"
          onRetry={() => (existing ? previewEdit() : saved && previewStored(saved.id))} />
      )}
      {enable.isError && <ErrorNote error={enable.error} title="Could not enable the integration" />}
      {stalePreview && (
        <Text size="sm" c="orange.8" role="alert">
          {existing ? "The form changed since this preview: preview the changes again before saving."
            : "The form changed since this preview: save and preview again before enabling."}
        </Text>
      )}
      {preview.isSuccess && existing && !stalePreview && (
        <Text size="sm" c="dimmed">This preview is of the changes above; nothing is saved until you save the changes.</Text>
      )}
      {preview.data && <PreviewResult preview={preview.data} />}
    </Stack>
  );
}
