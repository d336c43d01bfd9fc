import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Alert, Button, Group, Modal, Stack, Text } from "@mantine/core";
import { useForm } from "@mantine/form";
import { api, ApiError, messageOf, unwrap, type Schemas } from "../../api/client";
import { applyApiErrors } from "../../lib/forms";
import { appOf, credentialProblems, EMPTY_CREDENTIAL, fieldAliases, methodOf, rotateBody, type Connection, type CredentialValues } from "./apps";
import { CredentialInputs } from "./CredentialInputs";

const FIELDS = ["email", "api_token", "token", "username", "password"];

/** Replace a connection's credential (the old one is overwritten; nothing else changes). */
export function RotateCredentialModal({ connection, opened, onClose, onRotated }: { connection: Connection; opened: boolean; onClose: () => void; onRotated: () => void }) {
  const client = useQueryClient();
  const app = appOf(connection);
  const initial: CredentialValues = { method: methodOf(connection, app), ...EMPTY_CREDENTIAL };
  const form = useForm<CredentialValues>({ initialValues: initial, validate: (values) => credentialProblems(values) });
  const rotate = useMutation({
    mutationFn: (values: CredentialValues) =>
      unwrap(api.PATCH("/api/v1/connections/{id}", { params: { path: { id: connection.id } }, body: rotateBody(connection.kind, values) as Schemas["ConnectionPatch"] })),
    onSuccess: () => {
      client.invalidateQueries({ queryKey: ["connections"] });
      close();
      onRotated();
    },
    onError: (error) => {
      applyApiErrors(error, form.setFieldError, FIELDS, fieldAliases(form.values.method));
    },
  });
  const close = () => {
    form.setValues(initial);
    form.clearErrors();
    rotate.reset();
    onClose();
  };
  const placed = rotate.error instanceof ApiError && rotate.error.fields.length > 0;
  return (
    <Modal opened={opened} onClose={close} title={`Rotate the credential of ${connection.name}`} centered size="lg">
      <form onSubmit={form.onSubmit((values) => rotate.mutate(values))} noValidate>
        <Stack>
          <Text size="sm">
            The new credential replaces the stored one at once; integrations use it from their next run. Set: {connection.credential_fields.join(", ") || "unreadable"}.
          </Text>
          {rotate.isError && !placed && (
            <Alert color="red" role="alert" title="Not rotated">
              {messageOf(rotate.error)}
            </Alert>
          )}
          <CredentialInputs app={app} method={form.values.method} onMethod={(method) => form.setValues({ method, ...EMPTY_CREDENTIAL })} inputProps={(field) => form.getInputProps(field)} autoFocus />
          <Group justify="flex-end">
            <Button variant="default" onClick={close}>
              Cancel
            </Button>
            <Button type="submit" loading={rotate.isPending}>
              Rotate credential
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
