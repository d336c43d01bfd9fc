import { useInfiniteQuery, type QueryKey } from "@tanstack/react-query";

export interface PageOf<T> {
  items: T[];
  next_cursor?: string | null;
}

/**
 * A cursor-paged API list (`limit` + `cursor`, `next_cursor` null on the last page) as one
 * growing list: `items`, and `more()` while `hasMore`.
 */
export function useCursorList<T>(key: QueryKey, fetchPage: (cursor: string | undefined) => Promise<PageOf<T>>, options: { refetchInterval?: number | false } = {}) {
  const query = useInfiniteQuery({
    queryKey: key,
    queryFn: ({ pageParam }) => fetchPage(pageParam),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    refetchInterval: options.refetchInterval,
  });
  const items = query.data?.pages.flatMap((page) => page.items) ?? [];
  return {
    query,
    items,
    hasMore: !!query.hasNextPage,
    more: () => query.fetchNextPage(),
    loadingMore: query.isFetchingNextPage,
  };
}
