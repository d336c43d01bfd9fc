import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Alert, Button, Group, Modal, Select, Stack, Text, TextInput } from "@mantine/core";
import { useForm } from "@mantine/form";
import { api, ApiError, messageOf, unwrap, type Schemas } from "../../api/client";
import { applyApiErrors } from "../../lib/forms";
import { APPS, appOf, settingsPatch, statusScopeOf, type App, type Connection } from "./apps";

/** Change a connection's name, address and app settings; the credential is rotated apart. */
export function EditConnectionModal({ connection, opened, onClose }: { connection: Connection; opened: boolean; onClose: () => void }) {
  const client = useQueryClient();
  const initial = { app: appOf(connection), name: connection.name, base_url: connection.base_url, status_scope: statusScopeOf(connection) };
  const form = useForm({
    initialValues: initial,
    validate: {
      name: (value) => (value.trim() ? null : "Enter a name"),
      base_url: (value) => (/^https?:\/\/\S+$/i.test(value.trim()) ? null : "Enter the app's address (http or https)"),
    },
  });
  const save = useMutation({
    mutationFn: (patch: Partial<Schemas["ConnectionPatch"]>) =>
      // Partial on purpose: the API changes only the fields sent.
      unwrap(api.PATCH("/api/v1/connections/{id}", { params: { path: { id: connection.id } }, body: patch as Schemas["ConnectionPatch"] })),
    onSuccess: () => {
      client.invalidateQueries({ queryKey: ["connections"] });
      close();
    },
    onError: (error) => {
      if (error instanceof ApiError && error.status === 409) {
        form.setFieldError("name", error.message);
      } else {
        applyApiErrors(error, form.setFieldError, ["name", "base_url", "status_scope"], { flavor: "app" });
      }
    },
  });
  const close = () => {
    form.setValues(initial);
    form.resetDirty(initial);
    form.clearErrors();
    save.reset();
    onClose();
  };
  const patch = settingsPatch(connection, form.values);
  const unchanged = Object.keys(patch).length === 0;
  const placed = save.error instanceof ApiError && (save.error.status === 409 || save.error.fields.length > 0);
  return (
    <Modal opened={opened} onClose={close} title={`Edit ${connection.name}`} centered size="lg">
      <form onSubmit={form.onSubmit(() => save.mutate(patch))} noValidate>
        <Stack>
          {save.isError && !placed && (
            <Alert color="red" role="alert" title="Not saved">
              {messageOf(save.error)}
            </Alert>
          )}
          <TextInput label="Name" required data-autofocus {...form.getInputProps("name")} />
          <TextInput label="Base URL" required spellCheck={false} {...form.getInputProps("base_url")} />
          {connection.kind === "jira" ? (
            <Select
              label="Jira edition"
              data={(["jira-cloud", "jira-dc"] as App[]).map((value) => ({ value, label: APPS[value].label }))}
              allowDeselect={false}
              {...form.getInputProps("app")}
            />
          ) : (
            <TextInput
              label="Status label scope"
              description="Issues' status is the scoped label <scope>::<status>; empty: statuses are not labels."
              spellCheck={false}
              {...form.getInputProps("status_scope")}
            />
          )}
          {patch.base_url !== undefined && (
            <Text size="sm" c="dimmed">
              Test the connection after changing its address: the credential must be valid there too.
            </Text>
          )}
          <Group justify="flex-end">
            <Button variant="default" onClick={close}>
              Cancel
            </Button>
            <Button type="submit" loading={save.isPending} disabled={unchanged}>
              Save changes
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
