import { useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Alert, Button, Group, Modal, PasswordInput, Select, Stack, TextInput } from "@mantine/core";
import { useForm } from "@mantine/form";
import { api, ApiError, messageOf, unwrap, type Schemas } from "../../api/client";
import { boot } from "../../boot";
import { applyApiErrors, shownOnForm } from "../../lib/forms";
import { PasswordGiven } from "../../shared/OneTimeSecret";
import { ROLE_OPTIONS, ROLES, type Role } from "./roles";

const FIELDS = ["email", "display_name", "role", "password"];

/** Create a user with a role; a generated password is shown once, to hand over. */
export function NewUserModal({ opened, onClose }: { opened: boolean; onClose: () => void }) {
  const client = useQueryClient();
  const [created, setCreated] = useState<Schemas["UserCreated"] | null>(null);
  const form = useForm({
    initialValues: { email: "", display_name: "", role: "viewer" as Role, password: "" },
    validate: { email: (value) => (/^[^\s@]+@[^\s@]+$/.test(value.trim()) ? null : "Enter an e-mail address") },
  });
  const create = useMutation({
    mutationFn: (values: typeof form.values) =>
      unwrap(api.POST("/api/v1/users", { body: { email: values.email.trim(), display_name: values.display_name.trim(), role: values.role, password: values.password || null } })),
    onSuccess: (result) => {
      setCreated(result);
      client.invalidateQueries({ queryKey: ["users"] });
    },
    onError: (error) => {
      if (error instanceof ApiError && error.status === 409) {
        form.setFieldError("email", error.message);
      } else {
        applyApiErrors(error, form.setFieldError, FIELDS);
      }
    },
  });
  const close = () => {
    form.reset();
    setCreated(null);
    create.reset();
    onClose();
  };
  return (
    <Modal opened={opened} onClose={close} title={created ? "User created" : "New user"} centered size="lg">
      {created ? (
        <PasswordGiven password={created.password} onDone={close}>
          {created.user.email} can sign in at https://{boot.tenant}.{boot.domain} as {created.user.role}.
        </PasswordGiven>
      ) : (
        <form onSubmit={form.onSubmit((values) => create.mutate(values))} noValidate>
          <Stack>
            {create.isError && !shownOnForm(create.error) && (
              <Alert color="red" role="alert" title="Not created">
                {messageOf(create.error)}
              </Alert>
            )}
            <TextInput label="E-mail" type="email" required data-autofocus autoComplete="off" {...form.getInputProps("email")} />
            <TextInput label="Display name" autoComplete="off" {...form.getInputProps("display_name")} />
            <Select
              label="Role"
              data={ROLE_OPTIONS}
              allowDeselect={false}
              description={ROLES.find((role) => role.value === form.values.role)?.description}
              {...form.getInputProps("role")}
            />
            <PasswordInput label="Password" description="Leave empty to generate one (shown once)." autoComplete="new-password" {...form.getInputProps("password")} />
            <Group justify="flex-end">
              <Button variant="default" onClick={close}>
                Cancel
              </Button>
              <Button type="submit" loading={create.isPending}>
                Create user
              </Button>
            </Group>
          </Stack>
        </form>
      )}
    </Modal>
  );
}
