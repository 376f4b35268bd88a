// convertOnnx runs on a worker thread: the caller's event loop keeps turning through seconds of
// calibration, the result equals the same conversion on the calling thread, and errors keep their
// class across the thread. Run in a child process on lib/ compiled to JavaScript: the worker's
// script is JavaScript (from the TypeScript sources, the test suite converts on its own thread).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { childEnv, compiledLib, ROOT, spawnNode } from './helpers/compile-lib.js';

describe('convertOnnx off the main thread (child process)', () => {
  it('keeps the event loop free, equals the conversion on the calling thread, and keeps error classes', () => {
    const lib = compiledLib();
    const script = `import * as L from ${JSON.stringify(lib)};
import { convertOnnxSync } from ${JSON.stringify(join(lib, '../convert/convert.js'))};
import { readFileSync } from 'node:fs';
const onnx = readFileSync(${JSON.stringify(join(ROOT, 'models/fashion-float.onnx'))});
const calibration = L.toInput(L.readLbds(${JSON.stringify(join(ROOT, 'models/fashion-mnist-test-1000.lbds'))}), 0, 48);
let last = performance.now(), worst = 0;
const timer = setInterval(() => { const now = performance.now(); worst = Math.max(worst, now - last); last = now; }, 5);
const start = performance.now();
const progress = [];
const inWorker = await L.convertOnnxWithReport(onnx, { calibration, onProgress: (phase) => progress.push(phase) });
const ms = performance.now() - start;
clearInterval(timer);
const onThread = convertOnnxSync(onnx, { calibration });
const same = Buffer.compare(Buffer.from(inWorker.bytes), Buffer.from(onThread.bytes)) === 0;
const errors = [];
for (const [bytes, options] of [[new Uint8Array([1, 2, 3]), { calibration }], [onnx, { calibration, maxOutputError: 1e-9 }]]) {
  const e = await L.convertOnnx(bytes, options).catch((e) => e);
  errors.push({ name: e.name, format: e instanceof L.ModelFormatError, accuracy: e instanceof L.AccuracyError, output: e.output, message: e.message });
}
console.log(JSON.stringify({ ms, worst, same, phases: [...new Set(progress)], errors }));`;
    const r = spawnNode(['--input-type=module', '-e', script], {
      cwd: ROOT,
      env: childEnv({}),
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as {
      ms: number;
      worst: number;
      same: boolean;
      phases: string[];
      errors: { name: string; format: boolean; accuracy: boolean; output?: string; message: string }[];
    };
    // On the calling thread the loop stalled for the whole conversion (1-5 s here); measured
    // from a worker, its longest stall is about 15 ms.
    expect(
      result.worst,
      `longest stall ${result.worst.toFixed(0)} ms of a ${result.ms.toFixed(0)} ms conversion`,
    ).toBeLessThan(Math.max(100, result.ms / 5));
    expect(result.same).toBe(true);
    expect(result.phases).toEqual(['calibrate', 'round', 'reduced-range', 'measure']);
    expect(result.errors[0]).toMatchObject({ name: 'ModelFormatError', format: true });
    expect(result.errors[1]).toMatchObject({ name: 'AccuracyError', accuracy: true, output: 'logits' });
    expect(result.errors[1].message).toMatch(/output 'logits'/);
  });
});
