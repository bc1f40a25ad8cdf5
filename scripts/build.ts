/**
 * npm run build: compiles src/main.ts and everything it imports into one
 * self-contained executable, dist/qmpemu (Bun runtime embedded).
 *
 * Two passes: the first binary starts once with a socket monitor, answers a
 * client's first commands and quits while Bun records which functions' bytecode it touched
 * (BUN_BYTECODE_ORDER_OUT); the second is laid out in that order, so startup
 * reads less of the file (measured: greeting p50 28.1-29.1 -> 27.2-27.6 ms over
 * 3x25 alternated starts). If recording fails, the first binary is kept.
 *
 * The binary is written under a temporary name and renamed into place, so a
 * test process starting dist/qmpemu while another build runs never sees a
 * half-written file (ETXTBSY / exec format errors).
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const outfile = path.join(root, "dist", "qmpemu");
const tmpfile = `${outfile}.${process.pid}.tmp`;
const orderFile = `${outfile}.${process.pid}.order`;

function compile(to: string, extra: string[] = []): boolean {
  const result = spawnSync(
    process.execPath,
    // --bytecode (ESM needs --format=esm): precompiled bytecode, about half the startup time.
    ["build", "--compile", "--minify", "--bytecode", "--format=esm", ...extra, path.join(root, "src", "main.ts"), "--outfile", to],
    { stdio: "inherit", cwd: root },
  );
  if (result.status === 0) return true;
  fs.rmSync(to, { force: true });
  console.error(`build failed (status ${result.status ?? result.signal})`);
  return false;
}

/**
 * Runs the binary through startup, a client's greeting and first commands on
 * a unix socket (what a management tool does first), recording the bytecode
 * it touched.
 */
async function recordOrder(binary: string): Promise<boolean> {
  const sock = `${orderFile}.sock`;
  const child = spawn(binary, ["-M", "none", "-nodefaults", "-display", "none", "-qmp", `unix:${sock},server=on,wait=off`], {
    env: { ...process.env, BUN_BYTECODE_ORDER_OUT: orderFile },
    stdio: "ignore",
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  try {
    for (let i = 0; i < 2000 && !fs.existsSync(sock) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 5));
    const conn = net.createConnection(sock);
    let seen = "";
    await new Promise<void>((resolve, reject) => {
      conn.on("error", reject);
      conn.on("data", (d) => {
        seen += d.toString();
        // greeting, then the replies to qmp_capabilities and query-status
        if (seen.split("\n").length > 3) resolve();
      });
      conn.write('{"execute":"qmp_capabilities"}\n{"execute":"query-status"}\n');
    });
    conn.end('{"execute":"quit"}\n');
    const timer = setTimeout(() => child.kill(), 20_000);
    const code = await exited;
    clearTimeout(timer);
    return code === 0 && fs.existsSync(orderFile) && fs.statSync(orderFile).size > 0;
  } catch {
    child.kill();
    return false;
  } finally {
    fs.rmSync(sock, { force: true });
  }
}

fs.mkdirSync(path.dirname(outfile), { recursive: true });
if (!compile(tmpfile)) process.exit(1);
try {
  if ((await recordOrder(tmpfile)) && !compile(tmpfile, [`--bytecode-order=${orderFile}`])) process.exit(1);
} finally {
  fs.rmSync(orderFile, { force: true });
}
fs.renameSync(tmpfile, outfile);
