import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// The build is served by the appliance (appliance/web/panel.py): hashed files under
// /assets/, and a manifest from which the appliance's own HTML shell names them.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    assetsDir: "assets",
    manifest: true,
    sourcemap: false,
    chunkSizeWarningLimit: 2000,
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
    setupFiles: ["src/testSetup.ts"],
    testTimeout: 20_000,
  },
});
