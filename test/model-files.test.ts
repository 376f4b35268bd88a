// Malformed `.lowbit` files through the public API: every one ends in a ModelFormatError that
// names what is wrong, never a crash. (The native suite fuzzes the loader far more thoroughly,
// under AddressSanitizer; this checks what a JS caller sees.)
import { describe, expect, it } from 'vitest';
import { loadModel, ModelFormatError } from '../lib/index.js';
import { resealModel, withJson } from '../lib/model/format.js';
import { binaryModel, integerModel } from './helpers/tiny-models.js';

type Json = { tensors: { shape: number[]; dtype: string; scale?: number }[]; nodes: Record<string, unknown>[] };
const good = integerModel();
const expectFormatError = (bytes: Uint8Array, message?: RegExp) => {
  let error: unknown;
  try {
    loadModel(bytes).dispose();
  } catch (e) {
    error = e;
  }
  expect(error, `loaded a malformed file (${message})`).toBeInstanceOf(ModelFormatError);
  if (message) expect((error as Error).message).toMatch(message);
};

describe('malformed .lowbit files', () => {
  it('loads the untouched files', () => {
    expect(() => loadModel(good).dispose()).not.toThrow();
    expect(() => loadModel(binaryModel()).dispose()).not.toThrow();
  });

  it('truncated at any length', () => {
    for (let n = 0; n < good.length; n += n < 200 ? 1 : 37) expectFormatError(good.slice(0, n));
  });

  it('with any byte flipped (the CRCs or the zero padding catch it)', () => {
    for (let i = 0; i < good.length; i += 3) {
      const bad = good.slice();
      bad[i] ^= 0xff;
      expectFormatError(bad);
    }
  });

  it('with bad section offsets and lengths, even when the CRCs are recomputed', () => {
    const entry = (bytes: Uint8Array, i: number) => new DataView(bytes.buffer, bytes.byteOffset + 64 + 32 * i, 32);
    const edits: [what: string, edit: (b: Uint8Array) => void, message: RegExp][] = [
      ['misaligned offset', (b) => entry(b, 1).setBigUint64(8, entry(b, 1).getBigUint64(8, true) + 8n, true), /offset/],
      ['offset past the end', (b) => entry(b, 1).setBigUint64(8, 1n << 40n, true), /offset|outside|beyond/],
      ['huge length', (b) => entry(b, 1).setBigUint64(16, (1n << 64n) - 1n, true), /length|outside|beyond/],
      [
        'overlapping sections',
        (b) => entry(b, 2).setBigUint64(8, entry(b, 1).getBigUint64(8, true), true),
        /overlap|order/,
      ],
      ['a second JSON section', (b) => entry(b, 1).setUint32(0, 1, true), /kind/],
      ['wrong version', (b) => new DataView(b.buffer).setUint32(8, 2, true), /version/],
    ];
    for (const [, edit, message] of edits) {
      const bad = good.slice();
      edit(bad);
      expectFormatError(resealModel(bad), message);
    }
  });

  it('with JSON fields out of range, each error naming the field', () => {
    const edits: [(j: Json) => void, RegExp][] = [
      [(j) => (j.tensors[2].shape = [2 ** 40, 6, 5]), /tensors\[2\]\.shape/],
      [(j) => (j.tensors[2].shape = [2 ** 24, 2 ** 24, 2 ** 24]), /tensors\[2\]/],
      [(j) => (j.tensors[2].shape = [-6, 6, 5]), /tensors\[2\]\.shape/],
      [(j) => (j.tensors[2].shape = [6.5, 6, 5]), /tensors\[2\]\.shape/],
      [(j) => (j.tensors[2].dtype = 'f16'), /dtype/],
      [(j) => (j.tensors[2].scale = 0), /scale/],
      [(j) => (j.nodes[1].inputs = [99]), /nodes\[1\]\.inputs/],
      [(j) => (j.nodes[1].op = 'lstm'), /lstm/],
      [(j) => (j.nodes[1].weights = { section: 99 }), /section/],
      [(j) => (j.nodes[1].weights = { section: 2 }), /weights|length/],
      [(j) => (j.nodes[1].kernel = [5, 5]), /conv1|shape|weights/],
      [(j) => (j.nodes[1].pads = [9, 9, 9, 9]), /conv1|pad/],
      [(j) => (j.nodes[1].bits = 3), /bits/],
      [(j) => j.nodes.reverse(), /before|written|order/],
      [(j) => (j.tensors[2].shape = [6, 6, 6]), /conv1|shape/],
    ];
    for (const [edit, message] of edits)
      expectFormatError(
        withJson(good, (j) => void edit(j as unknown as Json)),
        message,
      );
  });

  it('with JSON that is not JSON, or too deep', () => {
    const replaceJson = (s: string) => {
      const file = withJson(good, () => undefined);
      const view = new DataView(file.buffer);
      const offset = Number(view.getBigUint64(64 + 8, true)),
        length = Number(view.getBigUint64(64 + 16, true));
      const bytes = new TextEncoder().encode(s.padEnd(length, ' ').slice(0, length));
      file.set(bytes, offset);
      return resealModel(file);
    };
    expectFormatError(replaceJson('{"lowbit": 1, "tensors": [1, 2'), /json/i);
    expectFormatError(replaceJson('['.repeat(1000)), /json|deep|nesting/i);
    expectFormatError(replaceJson('{"a": 1, "a": 2}'), /json|duplicate/i);
    expectFormatError(replaceJson('{}'), /json/i);
  });
});
