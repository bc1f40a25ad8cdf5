/**
 * npm run build: compiles src/main.ts and everything it imports into one
 * self-contained executable, dist/qmpemu (Bun runtime embedded).
 */
import { spawnSync } from "node:child_process";
import * as path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const outfile = path.join(root, "dist", "qmpemu");
const result = spawnSync(
  process.execPath,
  // --bytecode (ESM needs --format=esm): precompiled bytecode halves startup time.
  ["build", "--compile", "--minify", "--bytecode", "--format=esm", path.join(root, "src", "main.ts"), "--outfile", outfile],
  { stdio: "inherit", cwd: root },
);
if (result.status !== 0) {
  console.error(`build failed (status ${result.status ?? result.signal})`);
  process.exit(result.status ?? 1);
}
