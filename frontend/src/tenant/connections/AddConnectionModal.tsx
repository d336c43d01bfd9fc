import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Alert, Button, Group, Modal, Radio, Stack, Text, TextInput } from "@mantine/core";
import { useForm } from "@mantine/form";
import { api, ApiError, messageOf, unwrap, type Schemas } from "../../api/client";
import { applyApiErrors } from "../../lib/forms";
import { APPS, createBody, credentialProblems, DEFAULT_STATUS_SCOPE, EMPTY_CREDENTIAL, fieldAliases, type App, type ConnectionValues } from "./apps";
import { CredentialInputs } from "./CredentialInputs";

const FIELDS = ["name", "base_url", "status_scope", "email", "api_token", "token", "username", "password"];

/** Add a connection: the app, its address, the auth method and credential. */
export function AddConnectionModal({ opened, onClose, onCreated }: { opened: boolean; onClose: () => void; onCreated: (connection: Schemas["ConnectionOut"]) => void }) {
  const client = useQueryClient();
  const form = useForm<ConnectionValues>({
    initialValues: { app: "jira-cloud", name: "", base_url: "", status_scope: DEFAULT_STATUS_SCOPE, method: "api_token", ...EMPTY_CREDENTIAL },
    validate: (values) => ({
      name: values.name.trim() ? null : "Enter a name",
      base_url: /^https?:\/\/\S+$/i.test(values.base_url.trim()) ? null : `Enter the app's address, e.g. ${APPS[values.app].urlExample}`,
      ...credentialProblems(values),
    }),
  });
  const create = useMutation({
    mutationFn: (values: ConnectionValues) => unwrap(api.POST("/api/v1/connections", { body: createBody(values) })),
    onSuccess: (connection) => {
      client.invalidateQueries({ queryKey: ["connections"] });
      close();
      onCreated(connection);
    },
    onError: (error) => {
      if (error instanceof ApiError && error.status === 409) {
        form.setFieldError("name", error.message);
      } else {
        applyApiErrors(error, form.setFieldError, FIELDS, fieldAliases(form.values.method));
      }
    },
  });
  const close = () => {
    form.reset();
    create.reset();
    onClose();
  };
  const setApp = (app: App) => {
    form.setValues({ app, method: APPS[app].methods[0].value, ...EMPTY_CREDENTIAL });
    form.clearErrors();
  };
  const { app } = form.values;
  const unplaced = create.error instanceof ApiError && (create.error.status === 409 || create.error.fields.some((f) => FIELDS.includes(fieldAliases(form.values.method)[f.field] ?? f.field))) ? null : create.error;
  return (
    <Modal opened={opened} onClose={close} title="Add connection" centered size="lg">
      <form onSubmit={form.onSubmit((values) => create.mutate(values))} noValidate>
        <Stack>
          <Radio.Group label="App" value={app} onChange={(value) => setApp(value as App)}>
            <Group mt={6}>
              {(Object.keys(APPS) as App[]).map((value) => (
                <Radio key={value} value={value} label={APPS[value].label} />
              ))}
            </Group>
          </Radio.Group>
          {unplaced ? (
            <Alert color="red" role="alert" title="Not added">
              {messageOf(unplaced)}
            </Alert>
          ) : null}
          <TextInput label="Name" description="How integrations refer to it, e.g. “Jira production”." required data-autofocus {...form.getInputProps("name")} />
          <TextInput label="Base URL" placeholder={APPS[app].urlExample} required spellCheck={false} {...form.getInputProps("base_url")} />
          <CredentialInputs
            app={app}
            method={form.values.method}
            onMethod={(method) => form.setValues({ method, ...EMPTY_CREDENTIAL })}
            inputProps={(field) => form.getInputProps(field)}
          />
          {app === "gitlab" && (
            <TextInput
              label="Status label scope"
              description={`Issues' status is the scoped label <scope>::<status> (e.g. ${DEFAULT_STATUS_SCOPE}::doing); empty: statuses are not labels.`}
              spellCheck={false}
              {...form.getInputProps("status_scope")}
            />
          )}
          <Text size="xs" c="dimmed">
            The credential is stored encrypted and never shown again; “Test connection” shows what it can see.
          </Text>
          <Group justify="flex-end">
            <Button variant="default" onClick={close}>
              Cancel
            </Button>
            <Button type="submit" loading={create.isPending}>
              Add connection
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
