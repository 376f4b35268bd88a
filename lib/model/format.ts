/**
 * Writes `.lowbit` model files (docs/model-format.md): a JSON graph in section 0 and every data
 * array of every node in its own 64-byte aligned, CRC32-checked data section. The native loader
 * reads and validates them; this side only builds them.
 */
import { crc32 } from 'node:zlib';
import { ModelFormatError } from '../errors.js';

export type GraphDType = 'f32' | 'u8' | 's8' | 's32' | 'b1';

export interface GraphTensor {
  name: string;
  dtype: GraphDType;
  /** one sample's shape: [C, H, W] for f32 unless layout is 'hwc', [H, W, C] otherwise, or [C] */
  shape: number[];
  /** rank-3 f32 only: 'hwc' for a float activation inside the graph (default 'chw') */
  layout?: 'hwc';
  scale?: number;
  zero_point?: number;
}

export type GraphData = Float32Array | Int32Array | Uint8Array | Int8Array | BigUint64Array;

export interface GraphNode {
  name: string;
  op: string;
  inputs: number[];
  outputs: number[];
  /** JSON attributes (kernel, stride, clamp, ...) */
  attrs?: Record<string, unknown>;
  /** binary arrays, each written to a data section and referenced as { section: k } */
  data?: Record<string, GraphData>;
}

export interface Graph {
  producer?: string;
  inputs: { name: string; tensor: number }[];
  outputs: { name: string; tensor: number }[];
  tensors: GraphTensor[];
  nodes: GraphNode[];
  metadata?: unknown;
}

export const MAGIC = Uint8Array.from([0x4c, 0x4f, 0x57, 0x42, 0x49, 0x54, 0x0d, 0x0a]); // "LOWBIT\r\n"
export const FORMAT_VERSION = 1;
const HEADER_BYTES = 64;
const ENTRY_BYTES = 32;
const ALIGN = 64;
const KIND_JSON = 1;
const KIND_DATA = 2;

const alignUp = (n: number) => Math.ceil(n / ALIGN) * ALIGN;
const bytesOf = (a: GraphData) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Serialises a graph (no validation here: the native loader checks every field). */
export function encodeModel(graph: Graph): Uint8Array {
  const sections: Uint8Array[] = [new Uint8Array(0)]; // section 0: the JSON, filled in below
  const nodes = graph.nodes.map((node) => {
    const { data, attrs, ...rest } = node;
    const refs: Record<string, { section: number }> = {};
    for (const [key, array] of Object.entries(data ?? {})) {
      refs[key] = { section: sections.length };
      sections.push(bytesOf(array));
    }
    return { ...rest, ...attrs, ...refs };
  });
  const json = {
    lowbit: FORMAT_VERSION,
    producer: graph.producer ?? 'lowbit',
    inputs: graph.inputs,
    outputs: graph.outputs,
    tensors: graph.tensors,
    nodes,
    metadata: graph.metadata ?? {},
  };
  sections[0] = new TextEncoder().encode(JSON.stringify(json));
  return encodeSections(sections);
}

/**
 * Recomputes the header and section CRCs of a (possibly edited) file in place, so tests can
 * check what the loader does with a well-sealed file whose content is wrong.
 */
export function resealModel(file: Uint8Array): Uint8Array {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const count = view.getUint32(12, true);
  const tableEnd = HEADER_BYTES + ENTRY_BYTES * count;
  for (let i = 0; i < count; ++i) {
    const entry = HEADER_BYTES + ENTRY_BYTES * i;
    const offset = Number(view.getBigUint64(entry + 8, true));
    const length = Number(view.getBigUint64(entry + 16, true));
    view.setUint32(entry + 4, crc32(file.subarray(offset, offset + length)), true);
  }
  view.setUint32(24, 0, true);
  view.setUint32(24, crc32(file.subarray(0, tableEnd)), true);
  return file;
}

/** Replaces the JSON graph of a file (for tests of the loader's validation). */
export function withJson(file: Uint8Array, edit: (json: Record<string, unknown>) => unknown): Uint8Array {
  const sections = readSections(file);
  const json = JSON.parse(new TextDecoder().decode(sections[0]));
  sections[0] = new TextEncoder().encode(JSON.stringify(edit(json) ?? json));
  return encodeSections(sections);
}

/** A file's sections (copies), in order: the JSON graph first. Assumes a file the loader accepted. */
function readSections(file: Uint8Array): Uint8Array[] {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const count = view.getUint32(12, true);
  const sections: Uint8Array[] = [];
  for (let i = 0; i < count; ++i) {
    const entry = HEADER_BYTES + ENTRY_BYTES * i;
    const offset = Number(view.getBigUint64(entry + 8, true));
    // A copy with its own buffer (a Node Buffer's slice is a view of a shared pool).
    sections.push(new Uint8Array(file.subarray(offset, offset + Number(view.getBigUint64(entry + 16, true)))));
  }
  return sections;
}

/** A file's graph as stored: the JSON, and each data section's bytes by section index. */
export interface StoredModel {
  json: {
    inputs: { name: string; tensor: number }[];
    outputs: { name: string; tensor: number }[];
    tensors: GraphTensor[];
    /** each node's fields as stored: attributes, and data fields as { section: k } */
    nodes: (Record<string, unknown> & { name: string; op: string; inputs: number[]; outputs: number[] })[];
    metadata?: unknown;
  };
  sections: Uint8Array[];
}

/**
 * Reads a `.lowbit` file's graph and data sections in JavaScript, for tools that rewrite a model
 * (the ONNX exporter). Checks only the container (magic, version, sizes); the native loader checks
 * the rest, so load the file with it first. @throws ModelFormatError for a file that is no `.lowbit` file
 */
export function decodeModel(file: Uint8Array): StoredModel {
  const isLowbit = file.length >= HEADER_BYTES && MAGIC.every((b, k) => file[k] === b);
  if (!isLowbit) throw new ModelFormatError('header: not a .lowbit file (the magic bytes "LOWBIT\\r\\n" are missing)');
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const version = view.getUint32(8, true);
  if (version !== FORMAT_VERSION)
    throw new ModelFormatError(`header: format version ${version}, this lowbit reads version ${FORMAT_VERSION}`);
  const count = view.getUint32(12, true);
  if (count < 1 || HEADER_BYTES + ENTRY_BYTES * count > file.length)
    throw new ModelFormatError('header: truncated section table');
  for (let i = 0; i < count; ++i) {
    const entry = HEADER_BYTES + ENTRY_BYTES * i;
    const end = Number(view.getBigUint64(entry + 8, true)) + Number(view.getBigUint64(entry + 16, true));
    if (end > file.length) throw new ModelFormatError(`section ${i}: extends past the end of the file (truncated)`);
  }
  const sections = readSections(file);
  let json: StoredModel['json'];
  try {
    json = JSON.parse(new TextDecoder().decode(sections[0]));
  } catch (e) {
    throw new ModelFormatError(`section 0: the JSON graph does not parse (${(e as Error).message})`);
  }
  return { json, sections };
}

function encodeSections(sections: Uint8Array[]): Uint8Array {
  const tableEnd = HEADER_BYTES + ENTRY_BYTES * sections.length;
  const offsets: number[] = [];
  let end = alignUp(tableEnd);
  for (const s of sections) {
    offsets.push(end);
    end = alignUp(end + s.length);
  }
  const fileSize = offsets[offsets.length - 1] + sections[sections.length - 1].length;
  const file = new Uint8Array(fileSize);
  const view = new DataView(file.buffer);
  file.set(MAGIC, 0);
  view.setUint32(8, FORMAT_VERSION, true);
  view.setUint32(12, sections.length, true);
  view.setBigUint64(16, BigInt(fileSize), true);
  sections.forEach((s, i) => {
    const entry = HEADER_BYTES + ENTRY_BYTES * i;
    view.setUint32(entry, i === 0 ? KIND_JSON : KIND_DATA, true);
    view.setBigUint64(entry + 8, BigInt(offsets[i]), true);
    view.setBigUint64(entry + 16, BigInt(s.length), true);
    file.set(s, offsets[i]);
  });
  return resealModel(file);
}
