/**
 * Step 5: comments and attachments, filters per side, where the first run starts, the
 * conflict policy, the schedule and what a delete does.
 */
import { Checkbox, Fieldset, Group, NativeSelect, NumberInput, Radio, SimpleGrid, Stack, Switch, TagsInput, TextInput } from "@mantine/core";
import type { Description, Errors, FormState } from "./logic";
import type { Change } from "./IntegrationBuilder";

interface Props {
  form: FormState;
  change: Change;
  errors: Errors;
  a: Description | null;
  b: Description | null;
}

export function OptionsStep({ form, change, errors, a, b }: Props) {
  return (
    <Stack gap="lg">
      <SimpleGrid cols={2} spacing="lg">
        <Fieldset legend="Comments and attachments">
          <Stack gap="sm">
            <Switch label="Sync comments" checked={form.comments.enabled}
              onChange={(e) => { const v = e.currentTarget.checked; change((d) => { d.comments.enabled = v; }); }} />
            <NativeSelect label="Comment direction" value={form.comments.direction} disabled={!form.comments.enabled}
              data={[{ value: "both", label: "⇄ Both ways" }, { value: "a_to_b", label: "→ A to B only" }, { value: "b_to_a", label: "← B to A only" }]}
              onChange={(e) => { const v = e.currentTarget.value as FormState["comments"]["direction"]; change((d) => { d.comments.direction = v; }); }} />
            <Switch label="Sync attachments" checked={form.attachments.enabled}
              onChange={(e) => { const v = e.currentTarget.checked; change((d) => { d.attachments.enabled = v; }); }} />
            <NumberInput label="Largest attachment (MB)" value={form.attachments.maxMegabytes} min={0.1} step={1} decimalScale={1}
              disabled={!form.attachments.enabled} error={errors["attachments.maxMegabytes"]}
              description="Larger files are skipped and named in the item's events"
              onChange={(v) => change((d) => { d.attachments.maxMegabytes = typeof v === "number" ? v : Number(v) || 0; })} />
          </Stack>
        </Fieldset>
        <Fieldset legend="Schedule and deletes">
          <Stack gap="sm">
            <NumberInput label="Poll every (seconds)" value={form.intervalSeconds} min={5} step={5} error={errors.intervalSeconds}
              description="Webhooks bring changes sooner; the poll is the safety net"
              onChange={(v) => change((d) => { d.intervalSeconds = typeof v === "number" ? v : Number(v) || 0; })} />
            <Radio.Group label="When an item is deleted" value={form.deletePolicy}
              onChange={(v) => change((d) => { d.deletePolicy = v as FormState["deletePolicy"]; })}>
              <Stack gap={6} mt={6}>
                <Radio value="ignore" label="Leave its counterpart as it is" />
                <Radio value="close" label="Close its counterpart" />
                <Radio value="delete" label="Delete its counterpart" />
              </Stack>
            </Radio.Group>
          </Stack>
        </Fieldset>
      </SimpleGrid>
      <SimpleGrid cols={2} spacing="lg">
        <SideFilter side="a" form={form} change={change} description={a} />
        <SideFilter side="b" form={form} change={change} description={b} />
      </SimpleGrid>
      <SimpleGrid cols={2} spacing="lg">
        <Fieldset legend="Start point">
          <Radio.Group label="Which existing items the first run takes" value={form.start.mode}
            onChange={(v) => change((d) => { d.start.mode = v as FormState["start"]["mode"]; })}>
            <Stack gap={6} mt={6}>
              <Radio value="new" label="Only items created from now on" />
              <Radio value="since" label="Items updated since a date" />
              <Radio value="all" label="Full history" />
            </Stack>
          </Radio.Group>
          {form.start.mode === "since" && (
            <TextInput type="date" label="Updated since" description="From 00:00 UTC of that day" mt="sm" w={220}
              value={form.start.since.slice(0, 10)} error={errors["start.since"]}
              onChange={(e) => { const v = e.currentTarget.value; change((d) => { d.start.since = v; }); }} />
          )}
        </Fieldset>
        <Fieldset legend="Conflicts">
          <Radio.Group label="When both sides changed the same field" value={form.conflictPolicy}
            onChange={(v) => change((d) => { d.conflictPolicy = v as FormState["conflictPolicy"]; })}>
            <Stack gap={6} mt={6}>
              <Radio value="hold" label="Hold it for a person to decide (conflict inbox)" />
              <Radio value="newest" label="The newest change wins" />
              <Radio value="a_wins" label="Side A wins" />
              <Radio value="b_wins" label="Side B wins" />
            </Stack>
          </Radio.Group>
        </Fieldset>
      </SimpleGrid>
    </Stack>
  );
}

function SideFilter({ side, form, change, description }: { side: "a" | "b"; form: FormState; change: Change; description: Description | null }) {
  const name = side.toUpperCase();
  const filter = form.filters[side];
  const types = [...new Set([...(description?.item_types ?? []), ...filter.types])];
  return (
    <Fieldset legend={`Side ${name} filter`}>
      <Stack gap="sm">
        <Checkbox.Group label={`Side ${name} item types to sync`} description="None ticked: every type"
          value={filter.types} onChange={(v) => change((d) => { d.filters[side].types = v; })}>
          <Group gap="md" mt={6}>
            {types.map((t) => <Checkbox key={t} value={t} label={t} />)}
          </Group>
        </Checkbox.Group>
        <TagsInput label={`Side ${name} labels required`} description="Only items carrying all these labels" value={filter.labels}
          data={description?.labels ?? []} onChange={(v) => change((d) => { d.filters[side].labels = v; })} />
      </Stack>
    </Fieldset>
  );
}
