import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    // Builds dist/qmpemu once if it is missing or older than src/ (end-to-end tests run it).
    globalSetup: ["test/global-setup.ts"],
  },
});
