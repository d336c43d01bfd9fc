import { Button } from "@mantine/core";

/** The "load more" button under a cursor-paged list (see lib/paging.ts useCursorList). */
export function LoadMore({ list, label }: { list: { hasMore: boolean; more: () => unknown; loadingMore: boolean }; label: string }) {
  if (!list.hasMore) {
    return null;
  }
  return (
    <Button variant="default" w="fit-content" onClick={() => list.more()} loading={list.loadingMore}>
      {label}
    </Button>
  );
}
