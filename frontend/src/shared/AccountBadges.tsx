import { Badge, Group } from "@mantine/core";

/** Text badges for an account's state: colour is never the only signal. */
export function AccountBadges({ disabled, locked, failedLogins }: { disabled: boolean; locked: boolean; failedLogins: number }) {
  return (
    <Group gap={4}>
      {disabled ? (
        <Badge color="gray" variant="light">
          disabled
        </Badge>
      ) : (
        <Badge color="green" variant="light">
          active
        </Badge>
      )}
      {locked && (
        <Badge color="red" variant="light">
          locked out
        </Badge>
      )}
      {!locked && failedLogins > 0 && (
        <Badge color="yellow" variant="light">
          {failedLogins} failed sign-in(s)
        </Badge>
      )}
    </Group>
  );
}
