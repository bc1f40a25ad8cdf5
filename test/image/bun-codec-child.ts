/**
 * Run with bun by codec.test.ts: exercises the Bun-only codec (the one the
 * shipped binary uses). argv: qemu-written compressed image, raw source of
 * it, path for an image to write compressed.
 */
import * as fs from "node:fs";
import { DEFLATE_CODEC, INFLATE_CODEC, createQcow2, openFileStore, openQcow2 } from "../../src/image/index.ts";

const [qemuImage, rawSource, ourImage] = process.argv.slice(2);
const source = new Uint8Array(fs.readFileSync(rawSource!));
const img = await openQcow2(openFileStore(qemuImage!, { readOnly: true }), { readOnly: true });
const back = new Uint8Array(img.size);
await img.read(back, 0);
await img.close();
let same = back.length === source.length;
for (let i = 0; same && i < back.length; i++) same = back[i] === source[i];
const s = openFileStore(ourImage!, { create: true });
await createQcow2(s, { size: source.length });
const out = await openQcow2(s);
await out.writeCompressed(source, 0);
await out.close();
console.log(JSON.stringify({ deflate: DEFLATE_CODEC.name, inflate: INFLATE_CODEC.name, readBackSame: same }));
