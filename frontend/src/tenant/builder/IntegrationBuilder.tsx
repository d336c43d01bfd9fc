/**
 * The integration builder: /integrations/new and /integrations/:id/edit, the same six steps
 * (sides, types, fields, values, options, review). A new integration is saved disabled, then
 * previewed (the writes its first run would make), then enabled; an edit shows what it changes
 * (a diff of the stored spec and the edited one) before it is saved. The form's logic lives in
 * ./logic (unit-tested); each step is its own component.
 */
import { useEffect, useRef, useState } from "react";
import { useParams } from "react-router";
import { Alert, Button, Group, Loader, Stepper, Text } from "@mantine/core";
import { PageHeader } from "../../components/PageHeader";
import { QueryState } from "../../components/QueryState";
import type { Schemas } from "../../api/client";
import {
  emptyForm, mergeFieldRows, specToForm, STEPS, suggestFieldRows, suggestTypeRows, validateStep,
  type Errors, type FormState,
} from "./logic";
import { useDescription, useIntegration } from "./queries";
import { SidesStep } from "./SidesStep";
import { TypesStep } from "./TypesStep";
import { FieldsStep } from "./FieldsStep";
import { ValuesStep } from "./ValuesStep";
import { OptionsStep } from "./OptionsStep";
import { ReviewStep } from "./ReviewStep";

export type Change = (mutate: (draft: FormState) => void) => void;

export function IntegrationBuilder() {
  const { id } = useParams();
  const integrationId = id !== undefined && /^\d+$/.test(id) ? Number(id) : null;
  const existing = useIntegration(integrationId);
  if (id !== undefined && integrationId === null) {
    return <Alert color="red" role="alert">There is no integration “{id}”.</Alert>;
  }
  if (integrationId === null) {
    return <Builder existing={null} />;
  }
  return (
    <QueryState query={existing} what="the integration">
      {(integration) => <Builder key={integration.id} existing={integration} />}
    </QueryState>
  );
}

const DESCRIPTIONS = [
  "Apps and projects", "Item types", "Fields and directions", "Statuses, priorities, users", "Comments, start, conflicts",
  "Name, dry run, switching on",
];

function Builder({ existing }: { existing: Schemas["IntegrationOut"] | null }) {
  const [form, setForm] = useState<FormState>(() => (existing ? specToForm(existing.spec, existing.name) : emptyForm()));
  const [active, setActive] = useState(0);
  const [reached, setReached] = useState(existing ? STEPS.length - 1 : 0);
  const [errors, setErrors] = useState<Errors>({});
  const [saved, setSaved] = useState<Schemas["IntegrationOut"] | null>(existing);
  const change: Change = (mutate) =>
    setForm((current) => {
      const next = structuredClone(current);
      mutate(next);
      return next;
    });

  const descA = useDescription(form.sideA.connectionId, form.sideA.container);
  const descB = useDescription(form.sideB.connectionId, form.sideB.container);
  const described = descA.data && descB.data ? { a: descA.data, b: descB.data } : null;

  // Once per pair of described containers: suggested type and field rows join the form (a
  // person's rows stay as they are; see mergeFieldRows).
  const mergedFor = useRef("");
  const sidesKey = [form.sideA.connectionId, form.sideA.container, form.sideB.connectionId, form.sideB.container].join("/");
  useEffect(() => {
    if (!described || mergedFor.current === sidesKey) return;
    mergedFor.current = sidesKey;
    change((draft) => {
      if (draft.types.length === 0) draft.types = suggestTypeRows(described.a.item_types, described.b.item_types);
      draft.fields = mergeFieldRows(draft.fields, suggestFieldRows(described.a, described.b), existing === null);
    });
    // `change` only calls setForm; `described` changes with sidesKey.
  }, [described, sidesKey]);

  const go = (step: number) => {
    setErrors({});
    setActive(step);
    setReached((r) => Math.max(r, step));
  };
  const next = () => {
    const problems = validateStep(active, form);
    setErrors(problems);
    if (Object.keys(problems).length === 0) go(active + 1);
  };
  const needsDescriptions = active >= 1 && active <= 3;
  const waiting = needsDescriptions && !described;

  const renderStep = () => {
    const props = { form, change, errors };
    switch (active) {
      case 0:
        return <SidesStep {...props} descA={descA} descB={descB} />;
      case 1:
        return described && <TypesStep {...props} a={described.a} b={described.b} />;
      case 2:
        return described && <FieldsStep {...props} a={described.a} b={described.b} />;
      case 3:
        return described && <ValuesStep {...props} a={described.a} b={described.b} fresh={existing === null} />;
      case 4:
        return <OptionsStep {...props} a={described?.a ?? null} b={described?.b ?? null} />;
      default:
        return <ReviewStep form={form} change={change} errors={errors} setErrors={setErrors} existing={existing} saved={saved}
          setSaved={setSaved} goTo={go} />;
    }
  };

  return (
    <>
      <PageHeader
        title={existing ? `Edit integration ${existing.name}` : "New integration"}
        description={existing ? "Change any step; the review shows what the edit changes before you save it."
          : "Pick the two sides, say how items, fields and values correspond, preview the first run, then enable it."}
      />
      <Stepper active={active} onStepClick={(s) => s <= reached && go(s)} allowNextStepsSelect={false} size="sm" mb="lg">
        {STEPS.map((label, index) => (
          // The trailing spaces (collapsed on screen) keep the number, label and description
          // separate words in the button's text, as its name says them.
          <Stepper.Step key={label} icon={<>{index + 1} </>} label={<>{label} </>} description={DESCRIPTIONS[index]}
            allowStepSelect={index <= reached} aria-label={`Step ${index + 1}: ${label}, ${DESCRIPTIONS[index]}`}
            aria-current={index === active ? "step" : undefined} />
        ))}
      </Stepper>
      <section aria-label={`Step ${active + 1} of ${STEPS.length}: ${STEPS[active]}`}>
        {waiting ? <DescribingNote descA={descA} descB={descB} onBack={() => go(0)} /> : renderStep()}
      </section>
      {Object.keys(errors).length > 0 && active < STEPS.length - 1 && (
        <Text c="red" size="sm" mt="md" role="alert">
          Fix the {Object.keys(errors).length === 1 ? "problem" : `${Object.keys(errors).length} problems`} marked above to continue.
        </Text>
      )}
      <Group justify="space-between" mt="xl">
        <Button variant="default" onClick={() => go(active - 1)} disabled={active === 0}>
          Back
        </Button>
        {active < STEPS.length - 1 && (
          <Button onClick={next} disabled={waiting}>
            Next
          </Button>
        )}
      </Group>
    </>
  );
}

type DescQuery = ReturnType<typeof useDescription>;

/** While a step needs what the apps describe and it is not there yet. */
function DescribingNote({ descA, descB, onBack }: { descA: DescQuery; descB: DescQuery; onBack: () => void }) {
  const failed = descA.isError || descB.isError;
  if (failed) {
    return (
      <Alert color="red" role="alert" title="Could not read the projects">
        <Text size="sm">The apps must describe both projects before mapping them.</Text>
        <Button size="xs" mt="sm" variant="light" onClick={onBack}>
          Back to the sides
        </Button>
      </Alert>
    );
  }
  return (
    <Group gap="xs" role="status">
      <Loader size="sm" aria-hidden />
      <Text size="sm">Reading item types, fields and statuses of both projects from the apps…</Text>
    </Group>
  );
}
