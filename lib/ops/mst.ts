/**
 * MST schedules of binary layers (MST-compression, Vo et al., ICCV 2023): output channels ordered
 * along a minimum spanning tree of their weight Hamming distances, so a child channel is computed
 * from its parent's result plus a correction over only the positions where their weights differ:
 *   y_child =  y_parent + 2d - 4 popcount((W_child XOR X) AND M)            M = W_parent XOR W_child, d = |M|
 *   y_child = -y_parent + 2e - 4 popcount((W_child XOR X) AND NOT M)        negated parent, e = K - d
 * This module builds the schedule offline and reports what it saves; pass it to bconv2d / bdense
 * (`{ mst: schedule }`) to run the layer through the tree, with outputs identical to the dense kernel.
 */
import { callNative } from '../errors.js';
import { native, type NativeMstHandle, type NativeMstSchedule } from '../native.js';
import { describe, expectTensor, type Tensor } from '../tensor.js';
import { PackedBinaryWeights } from './binary-weights.js';

export interface BuildMstOptions {
  /** deepest allowed child (a root has depth 0); default unbounded. 0 makes every channel a root */
  maxDepth?: number;
  /** let a child hang off the complement of its parent, at cost K - d; default false */
  allowNegation?: boolean;
}

export interface MstStats {
  /** sum of the children's costs (bit positions each evaluates) */
  totalDistance: number;
  /** the deepest channel's depth */
  depth: number;
  /** dense bit-ops / MST bit-ops (roots cost K, a child its distance) */
  opRatio: number;
  /** dense weight bits / MST weight bits (a root K bits; a child its parent index, the negate bit
   * and the smaller of a K-bit mask or an index list of its positions) */
  storageRatio: number;
}

/** The MST schedule of one binary layer. Per-channel arrays are indexed by output channel. */
export class MstSchedule {
  /** @internal */
  readonly handle: NativeMstHandle;
  /** every channel once, parents before children (by depth) */
  readonly order: Int32Array;
  /** -1 for a root (computed densely), else the parent channel (always in the same group) */
  readonly parent: Int32Array;
  /** 1 where the child is computed from its parent's complement */
  readonly negate: Uint8Array;
  readonly depth: Uint32Array;
  /** bit positions each channel evaluates: K for a root, d (or K - d negated) for a child */
  readonly cost: Uint32Array;
  readonly stats: MstStats;

  /** @internal use buildMst */
  constructor(r: NativeMstSchedule) {
    this.handle = r.handle;
    this.order = r.order;
    this.parent = r.parent;
    this.negate = r.negate;
    this.depth = r.depth;
    this.cost = r.cost;
    this.stats = {
      totalDistance: r.totalDistance,
      depth: r.maxDepth,
      opRatio: r.opRatio,
      storageRatio: r.storageRatio,
    };
  }

  /** Channels computed densely. */
  get roots(): number[] {
    return [...this.parent.keys()].filter((c) => this.parent[c] < 0);
  }

  /**
   * The schedule with its compressed weights, compactly (roots: K bits; children: parent, negate flag
   * and their positions as a K-bit mask or a 16-bit index list, whichever is smaller). {@link loadMst} reads it back.
   */
  serialize(): Uint8Array {
    return callNative(() => native.serializeMst(this.handle));
  }

  /**
   * The per-layer cost model behind `mstPolicy: 'auto'`: predicted time (one arbitrary unit for both)
   * of a {@link bconv2d} / {@link bdense} call over `outputPixels` output pixels (N x OH x OW, or rows)
   * with the current thread count and ISA, dense and through the tree. `useMst` is what 'auto' picks:
   * MST only when predicted at least 10% faster. `runnable` is false for layers too large for the MST
   * path (more than 2^18 weight positions x groups), which always run dense.
   */
  predictCost(outputPixels: number): { dense: number; mst: number; useMst: boolean; runnable: boolean } {
    if (!Number.isInteger(outputPixels) || outputPixels < 1)
      throw new RangeError(`outputPixels: expected a positive integer, got ${String(outputPixels)}`);
    return callNative(() => native.mstCost(this.handle, outputPixels));
  }

  /** The weight positions child `channel` evaluates (its difference set; agreements if negated); empty for a root. */
  positions(channel: number): Uint32Array {
    return callNative(() => native.mstPositions(this.handle, channel));
  }
}

/**
 * Builds the MST schedule of packed binary weights: Hamming distances between output channels,
 * Prim's algorithm from a virtual root (cost K = compute from scratch) within each group, ties to
 * the shallower parent, an optional depth bound and negated parents.
 * @throws TypeError for weights that are not PackedBinaryWeights, RangeError for a bad maxDepth
 * @example const s = buildMst(w, { maxDepth: 8, allowNegation: true }); console.log(s.stats.opRatio);
 */
export function buildMst(weights: PackedBinaryWeights, options: BuildMstOptions = {}): MstSchedule {
  if (!(weights instanceof PackedBinaryWeights))
    throw new TypeError(`weights: expected PackedBinaryWeights, got ${describe(weights)}`);
  if (typeof options !== 'object' || options === null)
    throw new TypeError('options: expected { maxDepth?, allowNegation? }');
  const { maxDepth, allowNegation = false } = options;
  if (maxDepth !== undefined && (!Number.isInteger(maxDepth) || maxDepth < 0))
    throw new RangeError(`maxDepth: expected an integer >= 0, got ${String(maxDepth)}`);
  if (typeof allowNegation !== 'boolean')
    throw new TypeError(`allowNegation: expected a boolean, got ${describe(allowNegation)}`);
  return new MstSchedule(callNative(() => native.buildMst(weights.handle, maxDepth ?? -1, allowNegation)));
}

/**
 * Reads {@link MstSchedule.serialize}'s bytes: rebuilds the packed weights from the compressed form
 * and the schedule, checking every size, index and enum first (a parent must come before its child,
 * positions must lie inside K).
 * @throws ShapeError (truncated or oversized data), RangeError (an index or enum out of range), TypeError
 */
export function loadMst(bytes: Uint8Array | Tensor<'u8'>): { weights: PackedBinaryWeights; schedule: MstSchedule } {
  const data = bytes instanceof Uint8Array ? bytes : expectTensor(bytes, 'bytes', ['u8']).data;
  const r = callNative(() => native.loadMst(data));
  return { weights: new PackedBinaryWeights(r.weights, r.shape, r.groups), schedule: new MstSchedule(r.schedule) };
}
