import { useState } from "react";
import { Alert, Button, Group, Modal, Stack, Text, TextInput } from "@mantine/core";
import { messageOf } from "../api/client";

/**
 * A destructive action confirmed by typing a word (a tenant's slug, an integration's
 * name): the button stays disabled until the text matches exactly.
 */
export function ConfirmByTyping({
  opened, onClose, title, word, consequence, action, onConfirm, pending, error,
}: {
  opened: boolean;
  onClose: () => void;
  title: string;
  word: string;
  consequence: string;
  action: string;
  onConfirm: () => void;
  pending?: boolean;
  error?: unknown;
}) {
  const [typed, setTyped] = useState("");
  const close = () => {
    setTyped("");
    onClose();
  };
  return (
    <Modal opened={opened} onClose={close} title={title} centered>
      <Stack>
        <Text size="sm">{consequence}</Text>
        {error ? (
          <Alert color="red" role="alert">
            {messageOf(error)}
          </Alert>
        ) : null}
        <TextInput
          label={`Type ${word} to confirm`}
          value={typed}
          onChange={(event) => setTyped(event.currentTarget.value)}
          autoComplete="off"
          data-autofocus
        />
        <Group justify="flex-end">
          <Button variant="default" onClick={close}>
            Cancel
          </Button>
          <Button color="red" disabled={typed !== word} loading={pending} onClick={onConfirm}>
            {action}
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
