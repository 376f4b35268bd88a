/**
 * Pad of an activation: constant padding on H and W, kept symbolic (a "pad" value): a zero pad read
 * by a Conv or AveragePool folds into that operator's pads (PyTorch exports `nn.ZeroPad2d`, and
 * `AvgPool2d(count_include_pad=True)` with padding, as Pad + Conv / AveragePool); any other reader
 * gets a pad node (canon.ts materialize).
 */
import { UnsupportedError } from '../../errors.js';
import { nodeLabel, type RawNode } from '../proto.js';
import type { Canonicalizer } from '../canon.js';
import { rank4, scalarOf, type CanonRule, type Inputs } from './common.js';

const SUPPORTED = 'supported: mode "constant" (any finite value), non-negative pads on H and W only (not N or C)';

function pad(c: Canonicalizer, node: RawNode, ins: Inputs): void {
  const refuse = (what: string): never => {
    throw new UnsupportedError(`${nodeLabel(node)}: Pad ${what}; ${SUPPORTED}`);
  };
  const a = node.attrs;
  const mode = a.string('mode', 'constant');
  if (mode !== 'constant') refuse(`mode "${mode}" (attribute "mode")`);
  const x = c.activation(node, ins, 0);
  rank4(node, x);
  let pads: number[];
  let value: number;
  if (c.opset >= 11) {
    pads = Array.from(c.constant(node, ins, 1, 'pads').data);
    value = ins[2] ? scalarOf(node, c.constant(node, ins, 2, 'constant_value'), 'constant_value') : 0;
    if (ins[3]) {
      const axes = Array.from(c.constant(node, ins, 3, 'axes').data, (ax) => (ax < 0 ? ax + 4 : ax));
      const full = new Array<number>(8).fill(0);
      if (pads.length !== 2 * axes.length || axes.some((ax) => !(ax >= 0 && ax < 4)))
        refuse(`pads [${pads.join(', ')}] do not match axes [${axes.join(', ')}]`);
      axes.forEach((ax, i) => {
        full[ax] = pads[i];
        full[ax + 4] = pads[i + axes.length];
      });
      pads = full;
    }
  } else {
    pads = a.ints('pads') ?? [];
    value = a.float('value', 0);
  }
  if (pads.length !== 8) refuse(`pads [${pads.join(', ')}] are not 8 values for a rank-4 input`);
  if (!Number.isFinite(value)) refuse(`value ${value}`);
  if (pads.some((p) => p < 0)) refuse(`pads [${pads.join(', ')}] are negative`);
  if (pads[0] || pads[1] || pads[4] || pads[5]) refuse(`pads [${pads.join(', ')}] pad the batch or channel axis`);
  const [top, left, bottom, right] = [pads[2], pads[3], pads[6], pads[7]];
  if (top + left + bottom + right === 0) return c.set(node, x);
  const dims = [x.dims[0], x.dims[1], x.dims[2] + top + bottom, x.dims[3] + left + right];
  c.set(node, { kind: 'pad', x, pads: [top, left, bottom, right], value, dims, node });
}

export const PAD_RULES: Record<string, CanonRule> = {
  Pad: { attrs: ['mode', 'pads', 'value'], canonicalize: pad },
};
