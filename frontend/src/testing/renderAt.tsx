import type { ReactNode } from "react";
import { render } from "@testing-library/react";
import { MantineProvider } from "@mantine/core";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { MemoryRouter, Routes } from "react-router";

/** Render `routes` (<Route> elements) at `path` with the providers the panel has, a fresh
 * query cache without retries, and `wrap` around the routes (e.g. <RequireSignIn>). */
export function renderAt(path: string, routes: ReactNode, wrap: (inner: ReactNode) => ReactNode = (inner) => inner) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <MantineProvider>
      <QueryClientProvider client={client}>
        <MemoryRouter initialEntries={[path]}>{wrap(<Routes>{routes}</Routes>)}</MemoryRouter>
      </QueryClientProvider>
    </MantineProvider>,
  );
}
