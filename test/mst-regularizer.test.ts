/**
 * tools/mst_regularizer.py, the PyTorch training helper with an MST-distance regulariser: its tree
 * (build_tree, through --tree-json) must equal buildMst's channel for channel, since the regulariser
 * shapes exactly the tree lowbit deploys; and its --selftest must show the regulariser cutting the
 * tree distance of a toy binary network without wrecking its accuracy.
 * Needs Debian's PyTorch (apt-get install python3-torch), importable from /usr/bin/python3: without it
 * these tests fail rather than skip, so a missing dependency cannot pass unnoticed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildMst, packBinaryConv2dWeights, packBinaryDenseWeights, tensor } from '../lib/index.js';
import { fileSeed, rngFor, type Rng } from './helpers/rng.js';

const SEED = fileSeed('mst-regularizer');
const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../tools/mst_regularizer.py', import.meta.url));

let torchError: string | undefined | null = null; // null: not checked yet

/** Fails the calling test (a skip could pass unnoticed) when /usr/bin/python3 cannot import torch. */
function requireTorch(): void {
  if (torchError === null) {
    const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
    torchError = r.status === 0 ? undefined : (r.error?.message ?? r.stderr.trim().split('\n').pop());
  }
  if (torchError !== undefined)
    throw new Error(
      `${PYTHON} cannot import torch (${torchError}): install Debian's PyTorch with 'apt-get install python3-torch'`,
    );
}

interface Layer {
  label: string;
  out: number;
  kh: number;
  kw: number;
  icg: number; // input channels per group; K = kh * kw * icg
  groups: number;
  maxDepth?: number;
  allowNegation: boolean;
  w: Float32Array; // OHWI, row c = channel c's K values
}

interface PyTree {
  parent: number[];
  negate: number[];
  depth: number[];
  cost: number[];
  total_distance: number;
  max_depth: number;
  op_ratio: number;
}

/** out x k ±1 values: per group, flips of one prototype with probability p (small p: near channels, many ties). */
function flips(rng: Rng, out: number, k: number, groups: number, p: number): Float32Array {
  const w = new Float32Array(out * k);
  const ocg = out / groups;
  for (let g = 0; g < groups; ++g) {
    const proto = Array.from({ length: k }, () => (rng.bool() ? 1 : -1));
    for (let c = g * ocg; c < (g + 1) * ocg; ++c)
      for (let i = 0; i < k; ++i) w[c * k + i] = rng.bool(p) ? -proto[i] : proto[i];
  }
  return w;
}

function layer(
  label: string,
  shape: [number, number, number, number],
  groups: number,
  w: Float32Array,
  maxDepth?: number,
  allowNegation = false,
): Layer {
  const [out, kh, kw, icg] = shape;
  return { label, out, kh, kw, icg, groups, maxDepth, allowNegation, w };
}

function layers(): Layer[] {
  const rng = rngFor(SEED, 'layers');
  const k70 = flips(rng, 1, 70, 1, 0);
  const alternating = Float32Array.from({ length: 21 * 70 }, (_, i) =>
    Math.floor(i / 70) % 2 ? -k70[i % 70] : k70[i % 70],
  ); // a, -a, a, ...
  const list: Layer[] = [
    layer('dense 37 x 77', [37, 1, 1, 77], 1, flips(rng, 37, 77, 1, 0.1)),
    layer('conv 3x3x5, 3 groups, maxDepth 2', [24, 3, 3, 5], 3, flips(rng, 24, 45, 3, 0.2), 2),
    layer(
      'conv 1x1x7, 5 groups, negation (K = 7: many ties)',
      [30, 1, 1, 7],
      5,
      flips(rng, 30, 7, 5, 0.3),
      undefined,
      true,
    ),
    layer('K = 1, negation', [13, 1, 1, 1], 1, flips(rng, 13, 1, 1, 0.5), undefined, true),
    layer('depthwise 3x3 (groups = channels)', [9, 3, 3, 1], 9, flips(rng, 9, 9, 9, 0.5)),
    layer('identical channels', [20, 1, 1, 65], 1, flips(rng, 20, 65, 1, 0)),
    layer('identical channels, maxDepth 1', [20, 1, 1, 65], 1, flips(rng, 20, 65, 1, 0), 1),
    layer('complementary channels, negation', [21, 1, 1, 70], 1, alternating, undefined, true),
    layer('complementary channels, no negation', [21, 1, 1, 70], 1, alternating),
    layer('random 50 x 130, maxDepth 3, negation', [50, 1, 1, 130], 1, flips(rng, 50, 130, 1, 0.5), 3, true),
    layer('maxDepth 0 (all roots)', [11, 1, 1, 33], 1, flips(rng, 11, 33, 1, 0.05), 0),
    // Real values with exact zeros: both sides must binarise with sign(0) = +1.
    layer(
      'real values with zeros',
      [15, 1, 1, 19],
      1,
      Float32Array.from({ length: 15 * 19 }, () => rng.pick([-1.5, -0.25, 0, 0, 0.5])),
    ),
  ];
  for (let iter = 0; iter < 10; ++iter) {
    const groups = rng.pick([1, 1, 2, 3, 4]);
    const out = groups * rng.int(1, 12),
      kh = rng.pick([1, 3]),
      icg = rng.int(1, 70),
      k = kh * kh * icg;
    const maxDepth = rng.pick([undefined, undefined, 0, 1, 2, 5]),
      allowNegation = rng.bool();
    const p = rng.pick([0, 0.02, 0.1, 0.3, 0.5]);
    list.push(
      layer(
        `random #${iter} p=${p}`,
        [out, kh, kh, icg],
        groups,
        flips(rng, out, k, groups, p),
        maxDepth,
        allowNegation,
      ),
    );
  }
  return list;
}

/** The Python trees of all layers, from one --tree-json run (one torch import). */
function pythonTrees(list: Layer[]): PyTree[] {
  const dir = mkdtempSync(join(tmpdir(), 'lowbit-mst-reg-'));
  try {
    const file = join(dir, 'layers.json');
    const specs = list.map((l) => {
      const k = l.kh * l.kw * l.icg;
      const signs = Array.from({ length: l.out }, (_, c) => Array.from(l.w.subarray(c * k, (c + 1) * k)));
      return { signs, groups: l.groups, max_depth: l.maxDepth ?? null, allow_negation: l.allowNegation };
    });
    writeFileSync(file, JSON.stringify(specs));
    return JSON.parse(
      execFileSync(PYTHON, [SCRIPT, '--tree-json', file], { encoding: 'utf8', maxBuffer: 64 << 20 }),
    ) as PyTree[];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('tools/mst_regularizer.py', () => {
  it('build_tree equals buildMst: parents, negation, depths, costs and statistics', () => {
    requireTorch();
    const list = layers();
    const trees = pythonTrees(list);
    expect(trees.length).toBe(list.length);
    list.forEach((l, i) => {
      const ctx = `${l.label}: C=${l.out} K=${l.kh * l.kw * l.icg} groups=${l.groups} (seed ${SEED})`;
      const w =
        l.kh === 1 && l.kw === 1 && l.groups === 1
          ? packBinaryDenseWeights(tensor('f32', [l.out, l.icg], l.w))
          : packBinaryConv2dWeights(tensor('f32', [l.out, l.kh, l.kw, l.icg], l.w), { groups: l.groups });
      const s = buildMst(w, { maxDepth: l.maxDepth, allowNegation: l.allowNegation });
      const py = trees[i];
      expect(py.parent, `${ctx} parent`).toEqual([...s.parent]);
      expect(py.negate, `${ctx} negate`).toEqual([...s.negate]);
      expect(py.depth, `${ctx} depth`).toEqual([...s.depth]);
      expect(py.cost, `${ctx} cost`).toEqual([...s.cost]);
      expect(py.total_distance, `${ctx} total distance`).toBe(s.stats.totalDistance);
      expect(py.max_depth, `${ctx} depth`).toBe(s.stats.depth);
      expect(py.op_ratio, `${ctx} op ratio`).toBeCloseTo(s.stats.opRatio, 12);
    });
    // The special layers did what they were built for.
    const at = (label: string) => trees[list.findIndex((l) => l.label === label)];
    expect(at('identical channels').total_distance).toBe(0);
    expect(Math.max(...at('identical channels').depth)).toBe(1); // a star: ties go to the shallower parent
    expect(at('complementary channels, negation').total_distance).toBe(0);
    expect(at('complementary channels, no negation').parent.filter((p) => p < 0).length).toBe(2);
    expect(at('maxDepth 0 (all roots)').parent.every((p) => p === -1)).toBe(true);
  });

  it('--selftest: the regulariser cuts the mean tree distance at a small accuracy cost', { timeout: 120_000 }, () => {
    requireTorch();
    const seed = SEED % 1000;
    const r = spawnSync(PYTHON, [SCRIPT, '--selftest', '--seed', String(seed)], { encoding: 'utf8', timeout: 115_000 });
    const out = `${r.stdout}${r.stderr}`;
    expect(r.status, `self-test (--seed ${seed}) exit code; output:\n${out}`).toBe(0);
    expect(out).toMatch(/^selftest PASS$/m);
    // "<run> accuracy A  mean d/K D", then per layer "  <name> C=.. K=.. mean d/K D  op_ratio R  depth N"
    const run = (label: string) => {
      const m = new RegExp(`^${label}\\s+accuracy ([\\d.]+)\\s+mean d/K ([\\d.]+)$`, 'm').exec(out);
      expect(m, `${label} summary line in:\n${out}`).not.toBeNull();
      const block = out.slice(m!.index).split('\n').slice(1, 3);
      return {
        acc: Number(m![1]),
        dk: Number(m![2]),
        opRatio: block.map((line) => Number(/op_ratio ([\d.]+)/.exec(line)![1])),
      };
    };
    const base = run('baseline'),
      reg = run('regularized');
    expect(reg.dk, out).toBeLessThanOrEqual(0.6 * base.dk);
    expect(reg.acc, out).toBeGreaterThanOrEqual(base.acc - 0.05);
    reg.opRatio.forEach((ratio, i) =>
      expect(ratio, `layer ${i}: op ratio grows\n${out}`).toBeGreaterThan(base.opRatio[i]),
    );
  });
});
