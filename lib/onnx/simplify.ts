/**
 * Rewrites of the canonical graph, to a fixed point:
 *
 *  - `sign(clip(x, lo, hi))` with lo < t <= hi (t the sign's threshold, 0 when it has none) is
 *    `sign(x)` (clip keeps x on its side of t), so the HardTanh of a straight-through binarization
 *    drops out;
 *  - `sign(affine(x))` with positive scales is a sign of x with per-channel thresholds: ReActNet's
 *    RSign, sign(x + b), has threshold -b (exact: x + b < 0 exactly when x < -b in float32);
 *  - a shift (an affine with scale 1) before or after a prelu becomes that prelu's shiftIn /
 *    shiftOut: ReActNet's RPReLU;
 *  - `affine(maxpool(z))` with positive scales becomes `maxpool(affine(z))` when the maxpool output
 *    has no other reader (an increasing map commutes with max; pads never win a window), so a
 *    BatchNorm after a pool (VGG-Small's conv -> pool -> BN) folds into the conv;
 *  - an `affine` whose input is a conv / dense output read by nothing else (and not a graph
 *    output) folds into that layer's weights and bias; two such affines in a row merge;
 *  - `sign(maxpool(z))` becomes `maxpool(sign(z))` when the maxpool output has no other reader:
 *    sign with sign(0) = +1 (and any per-channel threshold) is monotone non-decreasing, so it
 *    commutes with max, and padded
 *    positions never win a window (pads are smaller than the kernel). lowbit max-pools packed bits;
 *  - nodes that no graph output depends on are removed, and the rest sorted topologically.
 */
import { ModelFormatError } from '../errors.js';
import type { Constant, FloatNode } from './ir.js';
import { consumerMap, nodeInputs } from './shapes.js';
import { topoSort } from './toposort.js';

interface Graph {
  inputs: string[];
  outputs: string[];
  nodes: FloatNode[];
}

function producers(nodes: FloatNode[]): Map<string, FloatNode> {
  return new Map(nodes.map((n) => [n.output, n]));
}

/** Removes nodes no output depends on. */
export function removeDead(graph: Graph): FloatNode[] {
  const prod = producers(graph.nodes);
  const live = new Set<FloatNode>();
  const stack = [...graph.outputs];
  while (stack.length > 0) {
    const n = prod.get(stack.pop()!);
    if (!n || live.has(n)) continue;
    live.add(n);
    stack.push(...nodeInputs(n));
  }
  return graph.nodes.filter((n) => live.has(n));
}

/** Topological order, stable where the given order is already valid. */
export function sortNodes(graph: Graph): FloatNode[] {
  const inputs = new Set(graph.inputs);
  const { sorted, stuck } = topoSort(
    graph.nodes,
    nodeInputs,
    (n) => [n.output],
    (name) => inputs.has(name),
  );
  if (stuck.length > 0) {
    const n = stuck[0];
    const made = new Set([...inputs, ...sorted.map((s) => s.output)]);
    const missing = nodeInputs(n).filter((i) => !made.has(i));
    throw new ModelFormatError(
      `node "${n.name}" (${n.op}): input(s) ${missing.map((m) => `"${m}"`).join(', ')} never become available`,
    );
  }
  return sorted;
}

/** Float32 constants from float64 math. */
function constant(values: ArrayLike<number>, dims: number[]): Constant {
  return { dims, data: Float32Array.from(values) };
}

/** y = affine(layer(x)) as one layer: weights of output channel o times scale[o], bias * scale + shift. */
function foldIntoLayer(
  layer: Extract<FloatNode, { op: 'conv' | 'dense' }>,
  scale: Float32Array,
  shift: Float32Array,
): void {
  const out = layer.weight.dims[0];
  const per = layer.weight.data.length / out;
  const w = new Float64Array(layer.weight.data.length);
  for (let o = 0; o < out; ++o) for (let k = o * per; k < (o + 1) * per; ++k) w[k] = layer.weight.data[k] * scale[o];
  const b = Float64Array.from({ length: out }, (_, o) => (layer.bias ? layer.bias.data[o] : 0) * scale[o] + shift[o]);
  layer.weight = constant(w, [...layer.weight.dims]);
  layer.bias = constant(b, [out]);
}

/** Folds every affine it can into its producer, in one pass (a chain of affines merges as it goes). */
function foldAffines(graph: Graph): boolean {
  const consumers = consumerMap(graph.nodes);
  const prod = producers(graph.nodes);
  const outputs = new Set(graph.outputs);
  const folded = new Set<FloatNode>();
  for (const a of graph.nodes) {
    if (a.op !== 'affine') continue;
    const p = prod.get(a.input);
    if (!p || (consumers.get(a.input)?.length ?? 0) !== 1 || outputs.has(a.input)) continue;
    if (p.op === 'conv' || p.op === 'dense') {
      foldIntoLayer(p, a.scale.data, a.bias.data);
    } else if (p.op === 'affine') {
      const c = p.scale.data.length;
      const s = Float64Array.from({ length: c }, (_, i) => p.scale.data[i] * a.scale.data[i]);
      const b = Float64Array.from({ length: c }, (_, i) => p.bias.data[i] * a.scale.data[i] + a.bias.data[i]);
      p.scale = constant(s, [c]);
      p.bias = constant(b, [c]);
    } else continue;
    p.output = a.output;
    prod.set(a.output, p);
    folded.add(a);
  }
  if (folded.size === 0) return false;
  graph.nodes = graph.nodes.filter((n) => !folded.has(n));
  return true;
}

function signThroughClip(graph: Graph): boolean {
  const prod = producers(graph.nodes);
  let changed = false;
  for (const s of graph.nodes) {
    if (s.op !== 'sign') continue;
    const keepsSide = (p: FloatNode | undefined): p is Extract<FloatNode, { op: 'clip' }> =>
      p?.op === 'clip' && (s.threshold?.data ?? [0]).every((t) => p.min < t && p.max >= t);
    for (let p = prod.get(s.input); keepsSide(p); p = prod.get(s.input)) {
      s.input = p.input;
      changed = true;
    }
  }
  return changed;
}

/** The node producing `name` when `name` is read by that one node only and is not a graph output. */
function soleProducer(graph: Graph, name: string): FloatNode | undefined {
  const readers = graph.nodes.filter((n) => nodeInputs(n).includes(name)).length;
  return readers === 1 && !graph.outputs.includes(name) ? graph.nodes.find((n) => n.output === name) : undefined;
}

const isShift = (a: Extract<FloatNode, { op: 'affine' }>) => a.scale.data.every((s) => s === 1);

/** sign(affine(x)) -> sign(x) with thresholds: s x + b < t <=> x < (t - b) / s for s > 0. */
function signThroughAffine(graph: Graph): boolean {
  let changed = false;
  for (const s of graph.nodes) {
    if (s.op !== 'sign') continue;
    const a = soleProducer(graph, s.input);
    if (a?.op !== 'affine' || !a.scale.data.every((v) => v > 0)) continue;
    const t = s.threshold?.data;
    const c = a.bias.data.length;
    s.threshold = constant(
      Array.from({ length: c }, (_, i) => ((t ? t[i] : 0) - a.bias.data[i]) / a.scale.data[i]),
      [c],
    );
    s.input = a.input;
    changed = true;
  }
  return changed;
}

/** prelu(x + b) and prelu(x) + b: the shifts move into the prelu (ReActNet's RPReLU). */
function shiftsIntoPrelu(graph: Graph): boolean {
  let changed = false;
  const folded = new Set<FloatNode>();
  for (const p of graph.nodes) {
    if (p.op !== 'prelu') continue;
    const before = p.shiftIn ? undefined : soleProducer(graph, p.input);
    if (before?.op === 'affine' && isShift(before)) {
      p.shiftIn = before.bias;
      p.input = before.input;
      changed = true;
    }
    const readers = graph.nodes.filter((n) => nodeInputs(n).includes(p.output));
    const after = readers.length === 1 && !graph.outputs.includes(p.output) ? readers[0] : undefined;
    if (!p.shiftOut && after?.op === 'affine' && isShift(after)) {
      p.shiftOut = after.bias;
      p.output = after.output;
      folded.add(after);
      changed = true;
    }
  }
  graph.nodes = graph.nodes.filter((n) => !folded.has(n));
  return changed;
}

/** Commutes every sign(maxpool) it can, in one pass (a chain of maxpools takes one pass each). */
function commuteSignMaxpool(graph: Graph): boolean {
  const consumers = consumerMap(graph.nodes);
  const prod = producers(graph.nodes);
  const outputs = new Set(graph.outputs);
  const names = new Set([...graph.inputs, ...graph.nodes.map((n) => n.output)]);
  const replaced = new Map<FloatNode, FloatNode[]>();
  for (const s of graph.nodes) {
    if (s.op !== 'sign') continue;
    const m = prod.get(s.input);
    if (m?.op !== 'maxpool' || replaced.has(m) || (consumers.get(s.input)?.length ?? 0) !== 1 || outputs.has(s.input))
      continue;
    let signed = `${m.input}:sign`;
    for (let k = 2; names.has(signed); ++k) signed = `${m.input}:sign${k}`;
    names.add(signed);
    const newSign: FloatNode = { op: 'sign', input: m.input, threshold: s.threshold, name: s.name, output: signed };
    m.input = signed;
    m.output = s.output;
    prod.set(s.output, m);
    replaced.set(s, []);
    replaced.set(m, [newSign, m]);
  }
  if (replaced.size === 0) return false;
  graph.nodes = graph.nodes.flatMap((n) => replaced.get(n) ?? [n]);
  return true;
}

/** affine(maxpool(z)) -> maxpool(affine(z)) for positive scales, in one pass. */
function commuteAffineMaxpool(graph: Graph): boolean {
  let changed = false;
  for (const a of graph.nodes) {
    if (a.op !== 'affine' || !a.scale.data.every((s) => s > 0)) continue;
    const m = soleProducer(graph, a.input);
    if (m?.op !== 'maxpool') continue;
    // Swap the two nodes' places: the affine reads z and writes the maxpool's old input name.
    const [z, pooled, out] = [m.input, m.output, a.output];
    const mid = `${pooled}:affine`;
    a.input = z;
    a.output = mid;
    m.input = mid;
    m.output = out;
    changed = true;
  }
  if (changed) graph.nodes = sortNodes(graph);
  return changed;
}

/** Simplifies a canonical graph; returns its live nodes in topological order. */
export function simplify(graph: Graph): FloatNode[] {
  const g: Graph = { ...graph, nodes: sortNodes({ ...graph, nodes: removeDead(graph) }) };
  for (;;) {
    let changed = signThroughClip(g);
    g.nodes = removeDead(g);
    while (foldAffines(g)) changed = true;
    while (signThroughAffine(g) || shiftsIntoPrelu(g) || commuteAffineMaxpool(g)) {
      changed = true;
      g.nodes = removeDead(g);
    }
    while (foldAffines(g) || commuteSignMaxpool(g)) changed = true;
    if (!changed) break;
  }
  return sortNodes({ ...g, nodes: removeDead(g) });
}
