// The residual-add fusion's tests (test/residual-fusion.test.ts, test/int-zoo.test.ts): one file
// loaded with the fusion off and on, and their outputs compared bit for bit.
import { expect } from 'vitest';
import { isa, loadModel, setIsa, supportedIsas, type Model } from '../../lib/index.js';

/** Loads `bytes` with the fusion off and on. */
export function loadBoth(bytes: Uint8Array): { plain: Model; fused: Model } {
  return { plain: loadModel(bytes, { fuse: false }), fused: loadModel(bytes, { fuse: true }) };
}

/** Every output of the two models on x, on every supported ISA, as raw bits. */
export function expectSameOutputs(plain: Model, fused: Model, x: Float32Array): void {
  const before = isa();
  try {
    for (const name of supportedIsas()) {
      setIsa(name);
      const a = plain.runSync(x),
        b = fused.runSync(x);
      for (const key of Object.keys(a)) {
        const u = new Uint32Array((a[key].data as Float32Array).buffer);
        const v = new Uint32Array((b[key].data as Float32Array).buffer);
        expect(v, `${key} on ${name}`).toEqual(u);
      }
    }
  } finally {
    setIsa(before);
  }
}

/** The arena bytes the fusion saves on a graph where every 8-bit add fuses: each add's 8-bit input written by its conv, aligned. */
export function addBytes(m: Model): number {
  const g = m.graph() as unknown as {
    tensors: { dtype: string; shape: number[] }[];
    nodes: { op: string; outputs: number[] }[];
  };
  const eightBit = (t: { dtype: string }) => t.dtype === 'u8' || t.dtype === 's8';
  return g.nodes
    .filter((n) => n.op === 'add' && eightBit(g.tensors[n.outputs[0]]))
    .map((n) => Math.ceil(g.tensors[n.outputs[0]].shape.reduce((a, b) => a * b, 1) / 64) * 64)
    .reduce((a, b) => a + b, 0);
}
