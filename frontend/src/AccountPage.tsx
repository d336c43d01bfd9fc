import { useMutation } from "@tanstack/react-query";
import { Alert, Button, Paper, PasswordInput, Stack, Text } from "@mantine/core";
import { useForm } from "@mantine/form";
import { api, unwrap } from "./api/client";
import { useMe } from "./auth";
import { PageHeader } from "./components/PageHeader";
import { applyApiErrors } from "./lib/forms";

/** The signed-in account: who, which role, and a password change (ends the other sessions). */
export function AccountPage() {
  const me = useMe();
  const form = useForm({
    initialValues: { current_password: "", new_password: "", repeat: "" },
    validate: {
      current_password: (value) => (value ? null : "Enter your current password"),
      new_password: (value) => (value ? null : "Enter a new password"),  // the policy is the server's: its message lands here
      repeat: (value, values) => (value === values.new_password ? null : "The two new passwords differ"),
    },
  });
  const change = useMutation({
    mutationFn: (values: typeof form.values) =>
      unwrap(api.POST("/api/v1/auth/password", { body: { current_password: values.current_password, new_password: values.new_password } })),
    onSuccess: () => form.reset(),
    onError: (error) => {
      const rest = applyApiErrors(error, form.setFieldError, ["current_password", "new_password"]);
      if (rest && !(error as { fields?: unknown[] }).fields?.length) {
        form.setFieldError("current_password", rest);
      }
    },
  });
  return (
    <>
      <PageHeader title="Your account" description={`${me.email} · role ${me.role}`} />
      <Paper withBorder p="lg" maw={480}>
        <form onSubmit={form.onSubmit((values) => change.mutate(values))} noValidate>
          <Stack>
            <Text fw={600}>Change password</Text>
            {change.isSuccess && (
              <Alert color="green" role="status">
                Password changed. Your other sessions were signed out.
              </Alert>
            )}
            <PasswordInput label="Current password" autoComplete="current-password" {...form.getInputProps("current_password")} />
            <PasswordInput label="New password" autoComplete="new-password" {...form.getInputProps("new_password")} />
            <PasswordInput label="New password again" autoComplete="new-password" {...form.getInputProps("repeat")} />
            <Button type="submit" loading={change.isPending} w="fit-content">
              Change password
            </Button>
          </Stack>
        </form>
      </Paper>
    </>
  );
}
