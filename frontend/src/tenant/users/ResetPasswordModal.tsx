import { useMutation } from "@tanstack/react-query";
import { Alert, Button, Group, Modal, PasswordInput, Stack, Text } from "@mantine/core";
import { useForm } from "@mantine/form";
import { api, ApiError, messageOf, unwrap, type Schemas } from "../../api/client";
import { applyApiErrors } from "../../lib/forms";
import { PasswordGiven } from "../../shared/OneTimeSecret";

/** Set a user's password (given, or generated and shown once); ends their sessions and lifts a lock-out. */
export function ResetPasswordModal({ user, onClose, onDone }: { user: Schemas["UserOut"]; onClose: () => void; onDone: () => void }) {
  const form = useForm({ initialValues: { password: "" } });
  const reset = useMutation({
    mutationFn: (password: string) => unwrap(api.POST("/api/v1/users/{id}/reset-password", { params: { path: { id: user.id } }, body: { password: password || null } })),
    onSuccess: onDone,
    onError: (error) => applyApiErrors(error, form.setFieldError, ["password"]),
  });
  const placed = reset.error instanceof ApiError && reset.error.fields.length > 0;
  return (
    <Modal opened onClose={onClose} title={`Reset the password of ${user.email}`} centered size="lg">
      {reset.isSuccess ? (
        <PasswordGiven password={reset.data.password} label="new password" onDone={onClose}>
          Password changed; {user.email}'s sessions have ended.
        </PasswordGiven>
      ) : (
        <form onSubmit={form.onSubmit((values) => reset.mutate(values.password))} noValidate>
          <Stack>
            <Text size="sm">Their sessions end at once and a lock-out is lifted.</Text>
            {reset.isError && !placed && (
              <Alert color="red" role="alert">
                {messageOf(reset.error)}
              </Alert>
            )}
            <PasswordInput label="New password" description="Leave empty to generate one (shown once)." autoComplete="new-password" data-autofocus {...form.getInputProps("password")} />
            <Group justify="flex-end">
              <Button variant="default" onClick={onClose}>
                Cancel
              </Button>
              <Button type="submit" loading={reset.isPending}>
                Reset password
              </Button>
            </Group>
          </Stack>
        </form>
      )}
    </Modal>
  );
}
