import type { ReactNode } from "react";
import { Alert, Button, Group, Modal, Stack, Text } from "@mantine/core";
import { messageOf } from "../api/client";

/**
 * A yes/no confirmation for an action that is easy to undo or small in scope (revoke a
 * token, delete a connection). The API's refusal, if any, is shown inside, so a 409 that
 * names what blocks the action stays next to the button that caused it.
 */
export function ConfirmModal({
  opened, onClose, title, children, action, onConfirm, pending, error, color = "red",
}: {
  opened: boolean;
  onClose: () => void;
  title: string;
  children: ReactNode;
  action: string;
  onConfirm: () => void;
  pending?: boolean;
  error?: unknown;
  color?: string;
}) {
  return (
    <Modal opened={opened} onClose={onClose} title={title} centered>
      <Stack>
        {typeof children === "string" ? <Text size="sm">{children}</Text> : children}
        {error ? (
          <Alert color="red" role="alert" title="Refused">
            {messageOf(error)}
          </Alert>
        ) : null}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button color={color} loading={pending} onClick={onConfirm}>
            {action}
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
