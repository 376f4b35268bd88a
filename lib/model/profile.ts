/**
 * Per-operator profiles of a model (`Model.profile`), like the op profiling of TFLite's
 * `benchmark_model`: each node's median and mean time over timed runs, its share of the whole run,
 * its multiply-accumulates and their rate; and the same summed by operator.
 */
import { median } from '../timing.js';
import type { ModelOutputs } from './model.js';

export interface ProfileOptions {
  /** timed runs (default 10) */
  runs?: number;
  /** untimed runs before them (default 1) */
  warmup?: number;
}

export interface NodeProfile {
  name: string;
  op: string;
  /**
   * weighted layers: 'binary', 'binary+MST' (a binary layer with an MST schedule, which the cost
   * model may still skip per call), 'W8A8', 'W4A8' or 'f32'; every other node: its op
   */
  kind: string;
  /** the node's median time over the timed runs, milliseconds */
  medianMs: number;
  meanMs: number;
  /** medianMs over the whole run's median (the nodes' shares leave out what runs between them) */
  share: number;
  /**
   * multiply-accumulates per sample as the layer's shapes give them (1-bit ones for binary layers;
   * an MST schedule computes fewer, so its rate is an effective one); null for nodes without weights
   */
  macs: number | null;
  /** 2 x macs x batch per median time, in 10^9 operations per second; null where macs is */
  gops: number | null;
}

/** The nodes of one op and kind together. */
export interface OpProfile {
  op: string;
  kind: string;
  count: number;
  /** the sum of the nodes' median times, milliseconds */
  ms: number;
  share: number;
  macs: number | null;
  gops: number | null;
}

export interface ModelProfile {
  batch: number;
  runs: number;
  /** the whole run's median and mean time, milliseconds (argument checks and arena included) */
  medianMs: number;
  meanMs: number;
  /** one entry per node, in graph order */
  nodes: NodeProfile[];
  /** per op and kind, most time first */
  ops: OpProfile[];
  /** the last run's outputs */
  outputs: ModelOutputs;
}

/** The most timed (or warm-up) runs one profile takes. */
export const MAX_PROFILE_RUNS = 100_000;

/** The options of `Model.profile` with their defaults. @throws TypeError, RangeError */
export function profileOptions(options: unknown): Required<ProfileOptions> {
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`options: expected an object { runs?, warmup? }, got ${String(options)}`);
  const { runs = 10, warmup = 1, ...rest } = options as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length) throw new TypeError(`options: unknown option '${unknown[0]}' (expected runs, warmup)`);
  const count = (value: unknown, name: string, min: number): number => {
    if (typeof value !== 'number') throw new TypeError(`${name}: expected a number, got ${typeof value}`);
    if (!Number.isInteger(value) || value < min || value > MAX_PROFILE_RUNS)
      throw new RangeError(`${name}: expected an integer in [${min}, ${MAX_PROFILE_RUNS}], got ${String(value)}`);
    return value;
  };
  return { runs: count(runs, 'runs', 1), warmup: count(warmup, 'warmup', 0) };
}

interface GraphTensor {
  dtype: string;
  shape: number[];
  /** rank-3 f32 only: 'chw' (default) or 'hwc' */
  layout?: string;
}

interface GraphNode {
  name: string;
  op: string;
  inputs: number[];
  outputs: number[];
  kernel?: [number, number];
  groups?: number;
  bits?: number;
  mst?: unknown;
}

/** What a node is: the number format of a weighted layer (as the converter's report names it), else its op. */
export function nodeKind(node: GraphNode): string {
  switch (node.op) {
    case 'bconv2d':
    case 'bdense':
      return node.mst === undefined ? 'binary' : 'binary+MST';
    case 'qconv2d':
    case 'qdense':
      return `W${node.bits}A8`;
    case 'fconv2d':
    case 'fdense':
      return 'f32';
    default:
      return node.op;
  }
}

/**
 * Multiply-accumulates of one sample through a conv or dense node: each output value takes
 * kh x kw x Ci / groups of them (dense: a 1x1 kernel). Null for other nodes.
 */
export function nodeMacs(node: GraphNode, tensors: readonly GraphTensor[]): number | null {
  if (!/(conv2d|dense)$/.test(node.op)) return null;
  const x = tensors[node.inputs[0]],
    y = tensors[node.outputs[0]];
  // Rank-3 f32 tensors are [C, H, W] unless laid out 'hwc', every other one [H, W, C]; dense inputs are [Ci].
  const chw = x.dtype === 'f32' && x.shape.length === 3 && x.layout !== 'hwc';
  const inChannels = chw ? x.shape[0] : x.shape[x.shape.length - 1];
  const [kh, kw] = node.kernel ?? [1, 1];
  const outputs = y.shape.reduce((a, b) => a * b, 1);
  return (outputs * kh * kw * inChannels) / (node.groups ?? 1);
}

const mean = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const rate = (macs: number | null, batch: number, ms: number) =>
  macs === null || !(ms > 0) ? null : (2 * macs * batch) / (ms * 1e6);

/**
 * The profile of `runs` timed runs: `nodeMs` holds runs x nodes times (run-major), `totalMs` the
 * whole runs' times.
 */
export function buildProfile(
  graph: { tensors: GraphTensor[]; nodes: GraphNode[] },
  batch: number,
  nodeMs: Float64Array,
  totalMs: Float64Array,
  outputs: ModelOutputs,
): ModelProfile {
  const runs = totalMs.length;
  const total = median([...totalMs]);
  const count = graph.nodes.length;
  const nodes = graph.nodes.map((node, i): NodeProfile => {
    const times = Array.from({ length: runs }, (_, r) => nodeMs[r * count + i]);
    const macs = nodeMacs(node, graph.tensors);
    const ms = median(times);
    return {
      name: node.name,
      op: node.op,
      kind: nodeKind(node),
      medianMs: ms,
      meanMs: mean(times),
      share: ms / total,
      macs,
      gops: rate(macs, batch, ms),
    };
  });
  const groups = new Map<string, OpProfile>();
  for (const n of nodes) {
    const key = `${n.op}\0${n.kind}`;
    const g = groups.get(key) ?? { op: n.op, kind: n.kind, count: 0, ms: 0, share: 0, macs: null, gops: null };
    g.count += 1;
    g.ms += n.medianMs;
    if (n.macs !== null) g.macs = (g.macs ?? 0) + n.macs;
    groups.set(key, g);
  }
  const ops = [...groups.values()]
    .map((g) => ({ ...g, share: g.ms / total, gops: rate(g.macs, batch, g.ms) }))
    .sort((a, b) => b.ms - a.ms);
  return { batch, runs, medianMs: total, meanMs: mean([...totalMs]), nodes, ops, outputs };
}
