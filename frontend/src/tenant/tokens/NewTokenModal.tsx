import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Alert, Button, Code, Group, Modal, NumberInput, Stack, Text, TextInput } from "@mantine/core";
import { useForm } from "@mantine/form";
import { api, ApiError, messageOf, unwrap } from "../../api/client";
import { formatDateTime } from "../../lib/format";
import { applyApiErrors } from "../../lib/forms";
import { OneTimeSecret } from "../../shared/OneTimeSecret";

export const DEFAULT_DAYS = 90;

/**
 * Create an API token (name, lifetime in days); the token is shown once, with a copy
 * button, in this modal, and never again.
 */
export function NewTokenModal({ opened, onClose }: { opened: boolean; onClose: () => void }) {
  const client = useQueryClient();
  const form = useForm({
    initialValues: { name: "", expires_in_days: DEFAULT_DAYS as number | string },
    validate: {
      name: (value) => (value.trim() ? null : "Enter what the token is for, e.g. “backup script”"),
      expires_in_days: (value) => (typeof value === "number" && Number.isInteger(value) && value >= 1 ? null : "Enter a whole number of days, at least 1"),
    },
  });
  const create = useMutation({
    mutationFn: (values: typeof form.values) =>
      unwrap(api.POST("/api/v1/tokens", { body: { name: values.name.trim(), expires_in_days: Number(values.expires_in_days) } })),
    onSuccess: () => client.invalidateQueries({ queryKey: ["tokens"] }),
    onError: (error) => applyApiErrors(error, form.setFieldError, ["name", "expires_in_days"]),
  });
  const close = () => {
    form.reset();
    create.reset();
    onClose();
  };
  const placed = create.error instanceof ApiError && create.error.fields.length > 0;
  const created = create.data;
  return (
    <Modal opened={opened} onClose={close} title={created ? "API token created" : "New API token"} centered size="lg" closeOnClickOutside={!created}>
      {created ? (
        <Stack>
          <OneTimeSecret label="API token" value={created.token} note={`It expires ${formatDateTime(created.expires_at)}.`} />
          <Text size="sm">
            Send it as <Code>Authorization: Bearer {created.prefix}…</Code>; it acts with your role.
          </Text>
          <Group justify="flex-end">
            <Button onClick={close}>I have copied it</Button>
          </Group>
        </Stack>
      ) : (
        <form onSubmit={form.onSubmit((values) => create.mutate(values))} noValidate>
          <Stack>
            {create.isError && !placed && (
              <Alert color="red" role="alert" title="Not created">
                {messageOf(create.error)}
              </Alert>
            )}
            <TextInput label="Name" description="What the token is for, to recognise it later." required data-autofocus maxLength={100} {...form.getInputProps("name")} />
            <NumberInput label="Expires in (days)" description="The appliance's configured maximum applies (365 days unless changed)." min={1} allowDecimal={false} allowNegative={false} required {...form.getInputProps("expires_in_days")} />
            <Group justify="flex-end">
              <Button variant="default" onClick={close}>
                Cancel
              </Button>
              <Button type="submit" loading={create.isPending}>
                Create token
              </Button>
            </Group>
          </Stack>
        </form>
      )}
    </Modal>
  );
}
