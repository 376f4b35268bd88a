// model.run(inputs, { signal }) (issue 16): an aborted signal rejects at once, an abort while the run
// is queued removes it (it never runs), one while it runs stops it at the next node; the promise
// rejects with signal.reason and the model stays usable.
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../lib/index.js';
import { native } from '../lib/native.js';
import { childEnv, compiledLib, ROOT, spawnNode, timeLimit } from './helpers/compile-lib.js';
import { fileSeed, rngFor } from './helpers/rng.js';

const MODEL = join(ROOT, 'models/fashion-binary.lowbit');
const seed = fileSeed('model-abort');
const images = (n: number, label: string) => {
  const r = rngFor(seed, label);
  return Float32Array.from({ length: n * 784 }, () => r.float());
};
const handle = (m: Model) => (m as unknown as { handle: object }).handle;
const isAbort = (e: unknown) => e instanceof DOMException && e.name === 'AbortError';

describe('model.run with an AbortSignal', () => {
  it('an already-aborted signal rejects at once with its reason, without running', async () => {
    const model = loadModel(MODEL);
    const x = images(2, 'pre');
    await expect(model.run(x, { signal: AbortSignal.abort() })).rejects.toSatisfy(isAbort);
    const reason = new Error('mine');
    await expect(model.run(x, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    // A signal that is never aborted changes nothing.
    const { logits } = await model.run(x, { signal: new AbortController().signal });
    expect(logits.data).toEqual(model.runSync(x).logits.data);
  });

  it('an abort while running rejects with the reason; the native run stops as cancelled', async () => {
    const model = loadModel(MODEL);
    const big = images(20000, 'big'); // about a second of work here: the abort lands mid-run
    const controller = new AbortController();
    const run = model.run(big, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(run).rejects.toSatisfy(isAbort);
    // The same through the binding: the native promise rejects as cancelled, not with outputs.
    const token = native.runToken();
    const raw = native.runModelAsync(handle(model), 20000, [big], token);
    setTimeout(() => native.cancelRun(token), 20);
    await expect(raw).rejects.toThrow(/^run: cancelled$/);
    const x = images(5, 'after');
    expect((await model.run(x)).logits.data).toEqual(model.runSync(x).logits.data);
  });

  it('many concurrent runs aborted at random moments: the others equal runSync, the model stays usable', async () => {
    const model = loadModel(MODEL);
    const r = rngFor(seed, 'stress');
    const jobs = Array.from({ length: 40 }, (_, i) => {
      const x = images(1 + (i % 7) * 20, `job${i}`);
      const controller = new AbortController();
      const abort = i % 2 === 0;
      if (abort) setTimeout(() => controller.abort(), Math.floor(r.float() * 10));
      return {
        x,
        abort,
        run: model.run(x, { signal: controller.signal }).then(
          (o) => o,
          (e: unknown) => e,
        ),
      };
    });
    let aborted = 0;
    for (const job of jobs) {
      const got = await job.run;
      if (got instanceof Error || got instanceof DOMException) {
        expect(job.abort).toBe(true);
        expect(isAbort(got), String(got)).toBe(true);
        ++aborted;
      } else {
        expect(got.logits.data).toEqual(model.runSync(job.x).logits.data);
      }
    }
    expect(aborted).toBeGreaterThan(0);
    const x = images(3, 'final');
    expect((await model.run(x)).logits.data).toEqual(model.runSync(x).logits.data);
  });

  it(
    'UV_THREADPOOL_SIZE=1: a run aborted while queued rejects before the running one ends and never runs (child process)',
    () => {
      const lib = compiledLib();
      const script = `import * as L from ${JSON.stringify(lib)};
import { native } from ${JSON.stringify(join(dirname(lib), 'native.js'))};
const model = L.loadModel(${JSON.stringify(MODEL)});
const big = new Float32Array(2000 * 784).map((_, i) => (i % 89) / 89); // keeps the one pool thread busy
const one = big.slice(0, 784);
const order = [];
const first = model.run(big).then(() => order.push('big'));
const controller = new AbortController();
const queued = model.run(one, { signal: controller.signal }).catch((e) => order.push(e.name));
controller.abort();
// Through the binding: cancelled before the pool's only thread reaches it, it rejects as
// cancelled, which the worker decides before the first node.
const token = native.runToken();
const raw = native.runModelAsync(model.handle, 1, [one], token).then(() => 'ran', (e) => e.message);
native.cancelRun(token);
await Promise.all([first, queued]);
const want = model.runSync(one).logits.data;
const again = (await model.run(one)).logits.data;
console.log(JSON.stringify({ order, raw: await raw, same: again.every((v, i) => Object.is(v, want[i])) }));`;
      const r = spawnNode(['--input-type=module', '-e', script], {
        cwd: ROOT,
        env: childEnv({ UV_THREADPOOL_SIZE: '1' }),
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.signal, r.stderr).toBeNull();
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ order: ['AbortError', 'big'], raw: 'run: cancelled', same: true });
    },
    timeLimit(60_000),
  );

  it('refuses malformed options (TypeError naming the option); runSync takes none', async () => {
    const model = loadModel(MODEL);
    const x = images(1, 'opts');
    await expect(model.run(x, null as never)).rejects.toThrow(/^options: expected an object \{ signal\? \}/);
    await expect(model.run(x, { sig: 1 } as never)).rejects.toThrow(
      /^options: unknown option 'sig' \(expected signal\)/,
    );
    await expect(model.run(x, { signal: 'stop' } as never)).rejects.toThrow(/^signal: expected an AbortSignal, got/);
    await expect(model.run(x, { signal: 'stop' } as never)).rejects.toBeInstanceOf(TypeError);
    expect(() => native.cancelRun({} as never)).toThrow(/^token: expected a run token/);
    expect(model.runSync.length).toBe(1);
  });
});
