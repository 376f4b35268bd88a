/** Random bconv2d cases with awkward sizes, bounded so each stays cheap for the JS oracle. */
import type { BinaryPadding } from '../../lib/index.js';
import { AWKWARD_CHANNELS, samePadsOracle, type ConvGeometry, type Pads } from './oracle.js';
import type { Rng } from './rng.js';

export type PaddingKind = 'valid' | 'same-one' | 'same-zero' | 'explicit-one' | 'explicit-zero';
export const PADDING_KINDS: readonly PaddingKind[] = [
  'valid',
  'same-one',
  'same-zero',
  'explicit-one',
  'explicit-zero',
];

export interface ConvCase extends ConvGeometry {
  paddingKind: PaddingKind;
  /** what is passed as options.padding */
  padding: BinaryPadding;
  inDtype: 'f32' | 's8' | 'b1';
  wDtype: 'f32' | 's8';
}

export function describeConv(c: ConvCase): string {
  return (
    `x[${c.n},${c.h},${c.w},${c.c}](${c.inDtype}) w[${c.o},${c.kh},${c.kw},${c.c / c.groups}](${c.wDtype}) ` +
    `groups=${c.groups} strides=${c.sh}x${c.sw} dil=${c.dh}x${c.dw} pad=${c.paddingKind}[${c.pads.join(',')}]`
  );
}

/** Multiply-accumulates the oracle does for a case. */
export function convCost(g: ConvGeometry): number {
  const oh = Math.floor((g.h + g.pads[0] + g.pads[2] - ((g.kh - 1) * g.dh + 1)) / g.sh) + 1;
  const ow = Math.floor((g.w + g.pads[1] + g.pads[3] - ((g.kw - 1) * g.dw + 1)) / g.sw) + 1;
  return g.n * oh * ow * g.o * g.kh * g.kw * (g.c / g.groups);
}

/** Resolves pads for the padding kind (SAME from its definition, explicit random below k*d). */
function resolve(rng: Rng, c: Omit<ConvCase, 'pads' | 'padding' | 'padValue'>): ConvCase {
  let pads: Pads;
  let padding: BinaryPadding;
  const padValue = c.paddingKind.endsWith('zero') ? 'zero' : 'one';
  switch (c.paddingKind) {
    case 'valid':
      pads = [0, 0, 0, 0];
      padding = 'valid';
      break;
    case 'same-one':
    case 'same-zero': {
      const [t, b] = samePadsOracle(c.h, c.kh, c.sh, c.dh);
      const [l, r] = samePadsOracle(c.w, c.kw, c.sw, c.dw);
      pads = [t, l, b, r];
      padding = c.paddingKind;
      break;
    }
    default: {
      // The addon requires each pad < kernel * dilation (a documented limit of the native driver).
      const ph = () => rng.int(0, c.kh * c.dh - 1);
      const pw = () => rng.int(0, c.kw * c.dw - 1);
      pads = [ph(), pw(), ph(), pw()];
      padding = { pads: [...pads], value: padValue };
    }
  }
  return { ...c, pads, padding, padValue };
}

function fits(c: ConvCase): boolean {
  return c.h + c.pads[0] + c.pads[2] >= (c.kh - 1) * c.dh + 1 && c.w + c.pads[1] + c.pads[3] >= (c.kw - 1) * c.dw + 1;
}

/**
 * A random case within `budget` oracle multiply-accumulates: large C only gets small images and
 * 56x56 images only small C, because the image shrinks until the cost fits.
 */
export function randomConvCase(
  rng: Rng,
  budget = 3_000_000,
  channels: readonly number[] = AWKWARD_CHANNELS,
  paddingKind?: PaddingKind,
): ConvCase {
  for (;;) {
    const c = rng.pick(channels);
    const groups = rng.pick([1, 2, 4].filter((g) => c % g === 0));
    const kh = rng.pick([1, 3, 5]);
    const kw = rng.bool(0.75) ? kh : rng.pick([1, 3, 5]);
    const outChoices = [1, 3, 8, 63, 64, 65, 127, 128, 200].filter((o) => o % groups === 0);
    const base = {
      n: rng.bool(0.2) ? 2 : 1,
      c,
      o: rng.pick(outChoices.length ? outChoices : [groups * 2]),
      kh,
      kw,
      groups,
      sh: rng.int(1, 2),
      sw: rng.int(1, 2),
      dh: rng.int(1, 2),
      dw: rng.int(1, 2),
      paddingKind: paddingKind ?? rng.pick(PADDING_KINDS),
      inDtype: rng.pick(['f32', 'f32', 's8', 'b1'] as const),
      wDtype: rng.pick(['f32', 's8'] as const),
    };
    // Image side: mostly small, sometimes up to 56; shrink until the oracle cost fits the budget.
    let h = rng.bool(0.3) ? rng.int(1, 56) : rng.int(1, 12);
    let w = rng.bool(0.7) ? h : rng.bool(0.3) ? rng.int(1, 56) : rng.int(1, 12);
    let cs = resolve(rng, { ...base, h, w });
    while (convCost(cs) > budget && (h > 1 || w > 1)) {
      h = Math.max(1, Math.floor(h * 0.8));
      w = Math.max(1, Math.floor(w * 0.8));
      cs = resolve(rng, { ...base, h, w });
    }
    if (!fits(cs)) {
      // valid/explicit padding needs the image at least as large as the dilated kernel
      const need = (x: number, k: number, d: number, a: number, b: number) => Math.max(x, (k - 1) * d + 1 - a - b);
      cs = {
        ...cs,
        h: need(cs.h, cs.kh, cs.dh, cs.pads[0], cs.pads[2]),
        w: need(cs.w, cs.kw, cs.dw, cs.pads[1], cs.pads[3]),
      };
      if (cs.paddingKind.startsWith('same')) cs = resolve(rng, cs);
    }
    if (fits(cs) && convCost(cs) <= budget * 2) return cs;
  }
}

/** A case with fixed geometry (for the deterministic edge list). */
export function fixedConvCase(
  rng: Rng,
  g: Partial<ConvCase> & Pick<ConvCase, 'h' | 'w' | 'c' | 'o' | 'kh' | 'kw' | 'paddingKind'>,
): ConvCase {
  const c = resolve(rng, {
    n: 1,
    groups: 1,
    sh: 1,
    sw: 1,
    dh: 1,
    dw: 1,
    inDtype: 'f32',
    wDtype: 'f32',
    ...g,
  });
  if (g.pads && c.paddingKind.startsWith('explicit'))
    return { ...c, pads: g.pads, padding: { pads: [...g.pads], value: c.padValue } };
  return c;
}
