// run-models.mjs ROOT: runs every shipped .lowbit model on the first 64 test images and prints,
// per model, a hash of its outputs' bits and the load and run times. test-armv7-addon.sh compares
// the lines of the host addon and of the armv7 addon under qemu-arm.
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';

const root = process.argv[2];
const m = await import(`${root}/dist/lib/index.js`);
console.error(`isa ${m.isa()}`);
const x = m.toInput(m.readLbds(`${root}/models/fashion-mnist-test-1000.lbds`), 0, 64);
for (const file of readdirSync(`${root}/models`)
  .filter((f) => f.endsWith('.lowbit'))
  .sort()) {
  const t0 = performance.now();
  const model = m.loadModel(`${root}/models/${file}`);
  const t1 = performance.now();
  const out = model.runSync(x);
  const t2 = performance.now();
  const h = createHash('sha256');
  for (const [name, t] of Object.entries(out))
    h.update(name).update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  console.log(`${file} ${h.digest('hex').slice(0, 16)}`);
  console.error(`${file}: load ${(t1 - t0).toFixed(0)} ms, runSync(64 images) ${(t2 - t1).toFixed(0)} ms`);
  model.dispose();
}
