/**
 * Datasets of labelled 8-bit images, and raw float samples, for calibration and evaluation:
 * LBDS files (the shipped test slice), Debian's gzip'd IDX Fashion-MNIST files, `.f32` files.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ModelFormatError } from './errors.js';
import { describe } from './tensor.js';

/** `count` images of `channels x height x width` uint8 pixels, each with a uint8 label. */
export interface Dataset {
  count: number;
  channels: number;
  height: number;
  width: number;
  /** count * channels * height * width values, image-major, then channel, row, column (NCHW) */
  pixels: Uint8Array;
  /** count values */
  labels: Uint8Array;
}

export const LBDS_VERSION = 1;
const LBDS_HEADER_BYTES = 24;

function bytesOf(source: string | Uint8Array, what: string): Uint8Array {
  if (typeof source === 'string') return readFileSync(source);
  if (source instanceof Uint8Array) return source;
  throw new TypeError(`${what}: expected a file path or a Uint8Array, got ${describe(source)}`);
}

/**
 * Reads an LBDS dataset: "LBDS", u32 version = 1, u32 count, channels, height, width (little
 * endian), then count x channels x height x width uint8 pixels and count uint8 labels.
 * @throws ModelFormatError naming the field for a malformed file (bad magic or version, a zero
 *   size, or a byte length that differs from what the header describes)
 * @example const ds = readLbds('models/fashion-mnist-test-1000.lbds'); const x = toInput(ds, 0, 64);
 */
export function readLbds(source: string | Uint8Array): Dataset {
  const bytes = bytesOf(source, 'LBDS');
  const where = typeof source === 'string' ? `LBDS file ${source}` : 'LBDS data';
  if (bytes.length < LBDS_HEADER_BYTES)
    throw new ModelFormatError(`${where}: header: expected at least ${LBDS_HEADER_BYTES} bytes, got ${bytes.length}`);
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (magic !== 'LBDS') throw new ModelFormatError(`${where}: magic: expected "LBDS", got ${JSON.stringify(magic)}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(4, true);
  if (version !== LBDS_VERSION)
    throw new ModelFormatError(`${where}: version: expected ${LBDS_VERSION}, got ${version}`);
  const fields = ['count', 'channels', 'height', 'width'] as const;
  const [count, channels, height, width] = fields.map((name, i) => {
    const v = view.getUint32(8 + 4 * i, true);
    if (v === 0) throw new ModelFormatError(`${where}: ${name}: expected at least 1, got 0`);
    return v;
  });
  // In BigInt: four u32 factors may overflow every fixed-width integer and lose precision as doubles.
  const expected =
    BigInt(LBDS_HEADER_BYTES) + BigInt(count) * BigInt(channels) * BigInt(height) * BigInt(width) + BigInt(count);
  if (expected !== BigInt(bytes.length))
    throw new ModelFormatError(
      `${where}: count: ${count} images of ${channels}x${height}x${width} need ${expected} bytes (header, pixels, labels), got ${bytes.length}`,
    );
  const pixelBytes = count * channels * height * width; // exact now: it is below bytes.length
  // Copies (plain Uint8Arrays, never views of a Node Buffer's pool).
  const pixels = new Uint8Array(bytes.subarray(LBDS_HEADER_BYTES, LBDS_HEADER_BYTES + pixelBytes));
  const labels = new Uint8Array(bytes.subarray(LBDS_HEADER_BYTES + pixelBytes));
  return { count, channels, height, width, pixels, labels };
}

/** Checks that a dataset's arrays match its sizes. @throws RangeError / TypeError */
function checkDataset(ds: Dataset, what = 'dataset'): void {
  if (typeof ds !== 'object' || ds === null)
    throw new TypeError(`${what}: expected a dataset object, got ${describe(ds)}`);
  for (const name of ['count', 'channels', 'height', 'width'] as const)
    if (!Number.isInteger(ds[name]) || ds[name] < 1 || ds[name] > 0xffffffff)
      throw new RangeError(`${what}.${name}: expected an integer in [1, 2^32 - 1], got ${String(ds[name])}`);
  if (!(ds.pixels instanceof Uint8Array))
    throw new TypeError(`${what}.pixels: expected a Uint8Array, got ${describe(ds.pixels)}`);
  if (!(ds.labels instanceof Uint8Array))
    throw new TypeError(`${what}.labels: expected a Uint8Array, got ${describe(ds.labels)}`);
  const size = ds.count * ds.channels * ds.height * ds.width;
  if (ds.pixels.length !== size)
    throw new RangeError(
      `${what}.pixels: expected ${size} values (${ds.count} x ${ds.channels}x${ds.height}x${ds.width}), got ${ds.pixels.length}`,
    );
  if (ds.labels.length !== ds.count)
    throw new RangeError(`${what}.labels: expected ${ds.count} values, got ${ds.labels.length}`);
}

/** The LBDS bytes of a dataset (the inverse of {@link readLbds}). */
export function encodeLbds(ds: Dataset): Uint8Array {
  checkDataset(ds);
  const out = new Uint8Array(LBDS_HEADER_BYTES + ds.pixels.length + ds.labels.length);
  out.set([0x4c, 0x42, 0x44, 0x53], 0); // "LBDS"
  const view = new DataView(out.buffer);
  [LBDS_VERSION, ds.count, ds.channels, ds.height, ds.width].forEach((v, i) => view.setUint32(4 + 4 * i, v, true));
  out.set(ds.pixels, LBDS_HEADER_BYTES);
  out.set(ds.labels, LBDS_HEADER_BYTES + ds.pixels.length);
  return out;
}

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

const FASHION_MISSING =
  "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or use the shipped slice models/fashion-mnist-test-1000.lbds";

/** One IDX array (ubyte only): its dims and values. */
function readIdx(path: string, expectedRank: number): { dims: number[]; data: Uint8Array } {
  let bytes: Uint8Array = readFileSync(path);
  if (path.endsWith('.gz')) {
    try {
      bytes = gunzipSync(bytes);
    } catch (error) {
      throw new ModelFormatError(`IDX file ${path}: not valid gzip data (${(error as Error).message})`);
    }
  }
  if (bytes.length < 4 + 4 * expectedRank)
    throw new ModelFormatError(
      `IDX file ${path}: header: expected at least ${4 + 4 * expectedRank} bytes, got ${bytes.length}`,
    );
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  const expectedMagic = 0x800 + expectedRank; // unsigned bytes, `expectedRank` dimensions
  if (magic !== expectedMagic)
    throw new ModelFormatError(
      `IDX file ${path}: magic: expected 0x${expectedMagic.toString(16).padStart(8, '0')}, got 0x${magic.toString(16).padStart(8, '0')}`,
    );
  const dims = Array.from({ length: expectedRank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const header = 4 + 4 * expectedRank;
  const size = dims.reduce((a, b) => a * b, 1);
  if (dims.some((d) => d === 0) || header + size !== bytes.length)
    throw new ModelFormatError(
      `IDX file ${path}: dims: [${dims.join(', ')}] need ${header + size} bytes, got ${bytes.length}`,
    );
  return { dims, data: new Uint8Array(bytes.subarray(header)) };
}

function idxPath(dir: string, name: string): string {
  for (const candidate of [join(dir, `${name}.gz`), join(dir, name)]) if (existsSync(candidate)) return candidate;
  throw new Error(`fashion-mnist: ${join(dir, `${name}.gz`)} not found; ${FASHION_MISSING}`);
}

/**
 * Reads a split of Fashion-MNIST from gzip'd (or plain) IDX files, as Debian's
 * `dataset-fashion-mnist` package installs them: 1 channel of 28 x 28 pixels, labels 0-9.
 * @param split 't10k' (the 10000 test images) or 'train' (60000)
 * @throws Error if the files are missing, ModelFormatError if they are malformed
 */
export function readFashionMnist(dir: string = FASHION_MNIST_DIR, split: 't10k' | 'train' = 't10k'): Dataset {
  if (split !== 't10k' && split !== 'train')
    throw new RangeError(`split: expected 't10k' or 'train', got ${String(split)}`);
  const images = readIdx(idxPath(dir, `${split}-images-idx3-ubyte`), 3);
  const labels = readIdx(idxPath(dir, `${split}-labels-idx1-ubyte`), 1);
  const [count, height, width] = images.dims;
  if (labels.dims[0] !== count)
    throw new ModelFormatError(
      `fashion-mnist ${split}: ${count} images but ${labels.dims[0]} labels (dims of ${dir}'s labels file)`,
    );
  return { count, channels: 1, height, width, pixels: images.data, labels: labels.data };
}

/** pixel / 255 as float32, for every byte value. */
const UNIT = Float32Array.from({ length: 256 }, (_, v) => v / 255);

/**
 * Model input of images [start, start + count): float32 NCHW, pixel / 255 (the convention of the
 * shipped models: no mean / std normalisation).
 */
export function toInput(ds: Dataset, start = 0, count = ds.count - start): Float32Array {
  checkDataset(ds);
  if (!Number.isInteger(start) || start < 0 || start >= ds.count)
    throw new RangeError(`start: expected an integer in [0, ${ds.count - 1}], got ${String(start)}`);
  if (!Number.isInteger(count) || count < 1 || start + count > ds.count)
    throw new RangeError(`count: expected an integer in [1, ${ds.count - start}], got ${String(count)}`);
  const size = ds.channels * ds.height * ds.width;
  const pixels = ds.pixels.subarray(start * size, (start + count) * size);
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; ++i) out[i] = UNIT[pixels[i]];
  return out;
}

/** The index of the largest of `a[offset, offset + length)` (the first one on a tie): a row's top-1 class. */
export function argmax(a: ArrayLike<number>, offset: number, length: number): number {
  let best = 0;
  for (let i = 1; i < length; ++i) if (a[offset + i] > a[offset + best]) best = i;
  return best;
}

/**
 * Reads raw float samples: little-endian float32 values, a whole number of samples.
 * @param sampleSize values per sample; when given, the value count must be a multiple of it
 * @throws ModelFormatError for a byte length that is not whole values or whole samples
 */
export function readF32(source: string | Uint8Array, sampleSize?: number): Float32Array {
  const bytes = bytesOf(source, 'f32');
  const where = typeof source === 'string' ? `f32 file ${source}` : 'f32 data';
  if (bytes.length === 0 || bytes.length % 4 !== 0)
    throw new ModelFormatError(
      `${where}: length: expected a positive multiple of 4 bytes (float32 values), got ${bytes.length}`,
    );
  const values = new Float32Array(bytes.length / 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < values.length; ++i) values[i] = view.getFloat32(4 * i, true);
  if (sampleSize !== undefined) {
    if (!Number.isInteger(sampleSize) || sampleSize < 1)
      throw new RangeError(`sampleSize: expected an integer >= 1, got ${String(sampleSize)}`);
    if (values.length % sampleSize !== 0)
      throw new ModelFormatError(
        `${where}: length: ${values.length} values are not a whole number of samples of ${sampleSize} values`,
      );
  }
  return values;
}

/** Little-endian float32 bytes of `values` (the `.f32` file form). */
export function encodeF32(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; ++i) view.setFloat32(4 * i, values[i], true);
  return out;
}
