import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { MantineProvider } from "@mantine/core";
import { Notifications } from "@mantine/notifications";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { setNonce } from "get-nonce";
import "@mantine/core/styles.css";
import "@mantine/notifications/styles.css";
import "@mantine/charts/styles.css";
import { App } from "./App";
import { boot } from "./boot";
import { ApiError } from "./api/client";
import { cssVariables, theme } from "./theme";

// Modals lock the page's scroll with a <style> tag (react-remove-scroll, via get-nonce):
// without the shell's nonce the CSP refuses it and the console reports a violation.
setNonce(boot.nonce ?? "");

const queries = new QueryClient({
  defaultOptions: {
    queries: {
      // 4xx answers do not get better by asking again; network trouble and 5xx might.
      retry: (count, error) => count < 2 && !(error instanceof ApiError && error.status >= 400 && error.status < 500),
      refetchOnWindowFocus: true,
    },
  },
});

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    {/* Mantine's runtime <style> tags carry the shell's CSP nonce (style-src allows nothing else inline). */}
    <MantineProvider theme={theme} cssVariablesResolver={cssVariables} getStyleNonce={() => boot.nonce ?? ""}>
      <Notifications />
      <QueryClientProvider client={queries}>
        <App />
      </QueryClientProvider>
    </MantineProvider>
  </StrictMode>,
);
