import type { ReactNode } from "react";
import type { UseQueryResult } from "@tanstack/react-query";
import { Alert, Button, Group, Loader, Text } from "@mantine/core";
import { messageOf } from "../api/client";

/**
 * Loading and error states of a query, the same everywhere: a labelled spinner while it
 * loads, the API's message and a retry button when it failed, else `children(data)`.
 */
export function QueryState<T>({ query, children, what }: { query: UseQueryResult<T>; children: (data: T) => ReactNode; what: string }) {
  if (query.isPending) {
    return (
      <Group gap="xs" role="status">
        <Loader size="sm" aria-hidden />
        <Text size="sm">Loading {what}…</Text>
      </Group>
    );
  }
  if (query.isError) {
    return <ErrorNote error={query.error} title={`Could not load ${what}`} onRetry={() => query.refetch()} />;
  }
  return <>{children(query.data)}</>;
}

export function ErrorNote({ error, title, onRetry }: { error: unknown; title?: string; onRetry?: () => void }) {
  return (
    <Alert color="red" title={title ?? "Something went wrong"} role="alert">
      <Text size="sm">{messageOf(error)}</Text>
      {onRetry && (
        <Button size="xs" mt="sm" variant="light" color="red" onClick={onRetry}>
          Try again
        </Button>
      )}
    </Alert>
  );
}
