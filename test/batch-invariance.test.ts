// A sample's outputs do not depend on the batch it runs in (lowbit serve stacks requests into one
// run): every shipped model on every ISA, a batch of 13 (every tile height and remainder of the
// float GEMM's 6-row tiles) against each sample run alone, bit for bit.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isa, loadModel, setIsa, supportedIsas } from '../lib/index.js';
import { ROOT } from './helpers/compile-lib.js';
import { fileSeed, rngFor } from './helpers/rng.js';

const SEED = fileSeed('batch-invariance');
const files = readdirSync(join(ROOT, 'models')).filter((f) => f.endsWith('.lowbit'));
const before = isa();
afterAll(() => setIsa(before));

describe('outputs per sample are independent of the batch', () => {
  it.each(files)('%s, every ISA', (file) => {
    const model = loadModel(join(ROOT, 'models', file));
    try {
      const per = model.inputs[0].sampleShape.reduce((a, b) => a * b, 1);
      const rng = rngFor(SEED, file);
      const x = Float32Array.from({ length: 13 * per }, () => rng.float());
      for (const name of supportedIsas()) {
        setIsa(name);
        for (const [output, all] of Object.entries(model.runSync(x))) {
          const size = all.data.length / 13;
          for (let n = 0; n < 13; ++n) {
            const alone = model.runSync(x.subarray(n * per, (n + 1) * per))[output].data as Float32Array;
            const inBatch = (all.data as Float32Array).subarray(n * size, (n + 1) * size);
            expect(new Uint32Array(alone.slice().buffer), `${file} ${output} on ${name}, sample ${n}`).toEqual(
              new Uint32Array(inBatch.slice().buffer),
            );
          }
        }
      }
    } finally {
      model.dispose();
    }
  });
});
