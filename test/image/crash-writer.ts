/**
 * Child process for the crash test: writes to a qcow2 image in a loop until
 * it is killed. argv: image path, seed, "writethrough" | "deferred" | "writeback".
 */
import { openFileStore, openQcow2 } from "../../src/image/index.ts";

const [file, seedArg, mode] = process.argv.slice(2);
let x = Number(seedArg) | 1;
const rnd = () => {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return (x >>> 0) / 0x100000000;
};
const img = await openQcow2(openFileStore(file!), {
  metadataCache: mode as "writethrough" | "deferred" | "writeback",
  l2CacheBytes: 2 * 4096,
  refcountCacheBytes: 2 * 4096,
});
const cs = img.clusterSize;
let announced = false;
for (let i = 0; ; i++) {
  const len = 1 + Math.floor(rnd() * cs * 6);
  const off = Math.floor(rnd() * (img.size - len));
  const r = rnd();
  if (r < 0.55) await img.write(new Uint8Array(len).fill(i & 0xff), off);
  else if (r < 0.7) await img.writeZeroes(off, len, { unmap: rnd() < 0.5 });
  else if (r < 0.8) await img.discard(off, len);
  else if (r < 0.9) {
    // Several clusters at once: their streams go down packed in one write.
    const c = Math.floor(off / cs) * cs;
    const n = Math.min(1 + Math.floor(rnd() * 6), Math.floor((img.size - c) / cs));
    const data = new Uint8Array(n * cs);
    for (let k = 0; k < n; k++) data.fill((i + k) & 0x7f, k * cs, k * cs + cs / 3);
    await img.writeCompressed(data, c).catch(() => {}); // EIO when a cluster is allocated
  } else if (r < 0.95) await img.flush();
  else await img.resize(img.size + cs * Math.floor(rnd() * 40));
  if (!announced) {
    announced = true;
    process.stdout.write("ready\n");
  }
}
