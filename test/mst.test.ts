/**
 * buildMst: schedules checked against a TypeScript oracle of the ±1 weights (distances, minimal
 * total distance, difference sets, statistics), depth bounds, negated parents, groups, bad input.
 */
import { describe, expect, it } from 'vitest';
import {
  bconv2d,
  buildMst,
  loadMst,
  MstSchedule,
  packBinaryConv2dWeights,
  packBinaryDenseWeights,
  ShapeError,
  tensor,
} from '../lib/index.js';
import { fileSeed, rngFor, type Rng } from './helpers/rng.js';

const SEED = fileSeed('mst');

/** out x k ±1 weights: flips of one prototype with probability p (so distances vary). */
function weights(rng: Rng, out: number, k: number, p: number): Float32Array {
  const proto = Array.from({ length: k }, () => (rng.bool() ? 1 : -1));
  const w = new Float32Array(out * k);
  for (let c = 0; c < out; ++c) for (let i = 0; i < k; ++i) w[c * k + i] = rng.bool(p) ? -proto[i] : proto[i];
  return w;
}

const distance = (w: Float32Array, k: number, a: number, b: number) => {
  let d = 0;
  for (let i = 0; i < k; ++i) d += w[a * k + i] !== w[b * k + i] ? 1 : 0;
  return d;
};

/** Minimum spanning weight over channels + a virtual root at distance K (plain O(n^2) Prim). */
function minimumTotal(w: Float32Array, n: number, k: number): number {
  const key = new Array(n).fill(k);
  const done = new Array(n).fill(false);
  let total = 0;
  for (let step = 0; step < n; ++step) {
    let v = -1;
    for (let c = 0; c < n; ++c) if (!done[c] && (v < 0 || key[c] < key[v])) v = c;
    done[v] = true;
    total += key[v];
    for (let c = 0; c < n; ++c) if (!done[c]) key[c] = Math.min(key[c], distance(w, k, v, c));
  }
  return total;
}

describe('buildMst', () => {
  it('schedules are valid minimum spanning trees with exact difference sets and statistics', () => {
    const rng = rngFor(SEED, 'random');
    for (let iter = 0; iter < 12; ++iter) {
      const n = rng.int(1, 40),
        k = rng.int(1, 200),
        p = rng.pick([0, 0.02, 0.1, 0.3, 0.5]);
      const w = weights(rng, n, k, p);
      const s = buildMst(packBinaryDenseWeights(tensor('f32', [n, k], w)));
      const ctx = `n=${n} k=${k} p=${p} (seed ${SEED})`;
      expect(
        [...s.order].sort((a, b) => a - b),
        ctx,
      ).toEqual([...Array(n).keys()]);
      const seen = new Set<number>();
      let sum = 0;
      for (const c of s.order) {
        const parent = s.parent[c];
        if (parent < 0) {
          expect(s.cost[c], ctx).toBe(k);
          expect(s.positions(c).length).toBe(0);
        } else {
          expect(seen.has(parent), `${ctx}: parent ${parent} of ${c} comes first`).toBe(true);
          expect(s.depth[c]).toBe(s.depth[parent] + 1);
          expect(s.cost[c], ctx).toBe(distance(w, k, parent, c));
          const want = [...Array(k).keys()].filter((i) => w[parent * k + i] !== w[c * k + i]);
          expect([...s.positions(c)], ctx).toEqual(want);
        }
        seen.add(c);
        sum += s.cost[c];
      }
      expect(sum, ctx).toBe(minimumTotal(w, n, k));
      expect(s.stats.totalDistance).toBe(sum - k * s.roots.length);
      expect(s.stats.opRatio).toBeCloseTo((n * k) / sum, 10);
      expect(s.stats.depth).toBe(Math.max(...s.depth));
    }
  });

  it('honours the depth bound, uses negated parents when asked, and keeps groups apart', () => {
    const rng = rngFor(SEED, 'options');
    const n = 30,
      k = 128;
    const w = packBinaryDenseWeights(tensor('f32', [n, k], weights(rng, n, k, 0.03)));
    for (const maxDepth of [0, 1, 2, 5]) expect(buildMst(w, { maxDepth }).stats.depth).toBeLessThanOrEqual(maxDepth);
    expect(buildMst(w, { maxDepth: 0 }).stats.opRatio).toBe(1);
    // a channel and its complement
    const a = weights(rng, 1, k, 0);
    const pair = packBinaryDenseWeights(tensor('f32', [2, k], Float32Array.from([...a, ...a.map((v) => -v)])));
    const neg = buildMst(pair, { allowNegation: true });
    expect(neg.stats.totalDistance).toBe(0);
    expect([...neg.negate].sort()).toEqual([0, 1]);
    expect(neg.positions(neg.order[1]).length).toBe(0);
    expect(buildMst(pair).roots.length).toBe(2);
    // groups: 3 groups of 4 identical channels each, one root per group
    const grouped = packBinaryConv2dWeights(tensor('f32', [12, 1, 1, 16], new Float32Array(12 * 16).fill(1)), {
      groups: 3,
    });
    const sg = buildMst(grouped);
    expect(sg.roots.length).toBe(3);
    sg.parent.forEach((p, c) => {
      if (p >= 0) expect(Math.floor(p / 4)).toBe(Math.floor(c / 4));
    });
  });

  it('a 512 x 4608-bit layer with 5% flips saves most bit operations', () => {
    const rng = rngFor(SEED, 'large');
    const s = buildMst(packBinaryConv2dWeights(tensor('f32', [512, 3, 3, 512], weights(rng, 512, 4608, 0.05))), {
      allowNegation: true,
    });
    expect(s).toBeInstanceOf(MstSchedule);
    expect(s.stats.opRatio).toBeGreaterThan(4);
  });

  it('serialize / loadMst round-trips the schedule and the weights (the reloaded layer computes the same conv)', () => {
    const rng = rngFor(SEED, 'file');
    const [o, k, c] = [24, 3, 256];
    const w = packBinaryConv2dWeights(tensor('f32', [o, k, k, c], weights(rng, o, k * k * c, 0.02)));
    const s = buildMst(w, { allowNegation: true, maxDepth: 4 });
    const bytes = s.serialize();
    expect(bytes.length).toBeLessThan((o * k * k * c) / 8); // smaller than the dense bits at 2% flips
    const back = loadMst(bytes);
    for (const key of ['order', 'parent', 'negate', 'depth', 'cost'] as const)
      expect([...back.schedule[key]], key).toEqual([...s[key]]);
    expect(back.schedule.stats).toEqual(s.stats);
    const x = tensor(
      'f32',
      [1, 6, 5, c],
      Float32Array.from({ length: 6 * 5 * c }, () => rng.float() - 0.5),
    );
    for (const padding of ['same-zero', 'same-one'] as const)
      expect([...bconv2d(x, back.weights, { padding }).data]).toEqual([...bconv2d(x, w, { padding }).data]);
    expect(() => loadMst(bytes.subarray(0, bytes.length - 1))).toThrow(ShapeError);
    const bad = bytes.slice();
    bad[0] = 0;
    expect(() => loadMst(bad)).toThrow(/magic/);
    expect(() => loadMst(new Float32Array(4) as never)).toThrow(TypeError);
  });

  it('bad input throws named errors', () => {
    const w = packBinaryDenseWeights(tensor('f32', [3, 8]));
    expect(() => buildMst({} as never)).toThrow(/PackedBinaryWeights/);
    expect(() => buildMst(w, { maxDepth: -1 })).toThrow(RangeError);
    expect(() => buildMst(w, { maxDepth: 1.5 })).toThrow(/maxDepth/);
    expect(() => buildMst(w, { allowNegation: 'yes' as never })).toThrow(TypeError);
    expect(() => buildMst(w).positions(3)).toThrow(/channel/);
    expect(() => buildMst(w).positions(-1)).toThrow(RangeError);
  });
});
