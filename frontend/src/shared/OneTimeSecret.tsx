import type { ReactNode } from "react";
import { Alert, Button, Code, CopyButton, Group, Stack, Text } from "@mantine/core";

/**
 * A secret the API returns once (an API token, a generated password): shown with a copy
 * button and a plain warning that it cannot be shown again, since only its hash is kept.
 */
export function OneTimeSecret({ label, value, note }: { label: string; value: string; note?: string }) {
  return (
    <Alert color="yellow" title={`Copy the ${label} now`} role="status">
      <Stack gap="xs">
        <Text size="sm">
          It is shown only this once: the appliance keeps no readable copy. {note}
        </Text>
        <Group gap="sm" wrap="nowrap" align="center">
          <Code block aria-label={label} style={{ flex: 1, wordBreak: "break-all", whiteSpace: "pre-wrap" }}>
            {value}
          </Code>
          <CopyButton value={value}>
            {({ copied, copy }) => (
              <Button onClick={copy} color={copied ? "teal" : undefined} variant={copied ? "light" : "filled"}>
                {copied ? "Copied" : `Copy ${label}`}
              </Button>
            )}
          </CopyButton>
        </Group>
      </Stack>
    </Alert>
  );
}

/**
 * The end of a dialog that gave someone a password: what happened, the password when the
 * appliance generated one (shown once), and Done.
 */
export function PasswordGiven({ children, password, label = "password", onDone }: {
  children: ReactNode;
  password: string | null | undefined;
  label?: string;
  onDone: () => void;
}) {
  return (
    <Stack>
      <Text>{children}</Text>
      {password && <OneTimeSecret label={label} value={password} note="Give it to them; they can change it after signing in." />}
      <Group justify="flex-end">
        <Button onClick={onDone}>Done</Button>
      </Group>
    </Stack>
  );
}
