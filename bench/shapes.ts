/** Layer shapes of the benchmarks, read from the text files in bench/shapes/ (one layer a line). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** A 2-D convolution layer. Pads are [top, left, bottom, right]. */
export interface ConvShape {
  name: string;
  batch: number;
  cin: number;
  cout: number;
  h: number;
  w: number;
  kernel: number;
  stride: number;
  pads: [number, number, number, number];
  oh: number;
  ow: number;
  /** multiply-accumulates of one run: batch * oh * ow * cout * kernel^2 * cin */
  macs: number;
}

// Compiled to dist/bench/, the shape files stay in bench/shapes/ of the source tree.
const shapesDir = fileURLToPath(new URL('../../bench/shapes/', import.meta.url));

/** Parses `name cin cout h w kernel stride t,l,b,r [batch]` lines (batch 1 if absent); `#` starts a comment. */
export function loadConvShapes(file: string): ConvShape[] {
  const text = readFileSync(shapesDir + file, 'utf8');
  const shapes: ConvShape[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const fields = line.split(/\s+/);
    const numbers = fields.slice(1, 7).map(Number);
    const pads = (fields[7] ?? '').split(',').map(Number);
    const batch = Number(fields[8] ?? 1);
    if (
      (fields.length !== 8 && fields.length !== 9) ||
      ![...numbers, batch].every((n) => Number.isInteger(n) && n > 0) ||
      pads.length !== 4 ||
      !pads.every((p) => Number.isInteger(p) && p >= 0)
    )
      throw new Error(`${file}:${i + 1}: expected 'name cin cout h w kernel stride t,l,b,r [batch]', got '${raw}'`);
    const [cin, cout, h, w, kernel, stride] = numbers;
    const oh = Math.floor((h + pads[0] + pads[2] - kernel) / stride) + 1;
    const ow = Math.floor((w + pads[1] + pads[3] - kernel) / stride) + 1;
    shapes.push({
      name: fields[0],
      batch,
      cin,
      cout,
      h,
      w,
      kernel,
      stride,
      pads: pads as ConvShape['pads'],
      oh,
      ow,
      macs: batch * oh * ow * cout * kernel * kernel * cin,
    });
  });
  return shapes;
}
