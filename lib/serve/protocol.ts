/**
 * The Open Inference Protocol (KServe v2) as lowbit serves it: decoding an infer request, JSON or
 * with the binary tensor extension (the JSON header, then the raw little-endian bytes of the inputs
 * that say `binary_data_size`, `Inference-Header-Content-Length` giving the header's length), and
 * encoding the response the same two ways. Every model input is FP32 with the batch first.
 * https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol
 */
import type { ModelTensorInfo } from '../model/model.js';

/** A client error: the HTTP status and the message of the JSON `{ "error": ... }` body. */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

/** One decoded request: the batch, one Float32Array per model input (in the model's order). */
export interface InferRequest {
  id?: string;
  batch: number;
  inputs: Float32Array[];
  /** the outputs asked for (all when the request names none), and whether each goes as binary */
  outputs: { name: string; binary: boolean }[];
  /** Triton's `timeout` parameter, in microseconds */
  timeoutUs?: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Flattens nested JSON arrays of numbers (row-major) into `out`; false when a leaf is not a number.
 * Self-contained: the JSON decoder's worker threads run its source too.
 */
export function flatten(data: unknown, out: number[]): boolean {
  if (typeof data === 'number') {
    out.push(data);
    return true;
  }
  if (!Array.isArray(data)) return false;
  for (const v of data) if (!flatten(v, out)) return false;
  return true;
}

/**
 * The length of the request's JSON part: `Inference-Header-Content-Length` when given, else the body.
 * @throws RequestError (400) when the header claims more than the body holds
 */
export function jsonLength(body: Buffer, headerLength: number | undefined): number {
  const length = headerLength ?? body.length;
  if (length > body.length)
    throw new RequestError(400, `Inference-Header-Content-Length ${length} exceeds the body's ${body.length} bytes`);
  return length;
}

/** JSON.parse of the request's JSON part. @throws RequestError (400) for malformed JSON */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new RequestError(400, `malformed JSON in the request: ${(error as Error).message}`);
  }
}

/**
 * Decodes `body` (the whole request body) for a model with `modelInputs` / `modelOutputs`.
 * `headerLength` is `Inference-Header-Content-Length` (undefined: all JSON). `parsed` is the JSON
 * part already parsed (by the JSON decoder's threads, each input's `data` flattened into a
 * Float32Array, or null where it held something other than numbers); it is parsed here when absent.
 * @throws RequestError (400) naming what is wrong
 */
export function decodeInferRequest(
  body: Buffer,
  headerLength: number | undefined,
  modelInputs: readonly ModelTensorInfo[],
  modelOutputs: readonly ModelTensorInfo[],
  parsed?: unknown,
): InferRequest {
  const length = jsonLength(body, headerLength);
  const json = parsed ?? parseJson(body.subarray(0, length).toString('utf8'));
  if (!isObject(json)) throw new RequestError(400, 'the request must be a JSON object');
  if (json.id !== undefined && typeof json.id !== 'string') throw new RequestError(400, "'id' must be a string");
  const params = json.parameters === undefined ? {} : json.parameters;
  if (!isObject(params)) throw new RequestError(400, "'parameters' must be an object");
  let timeoutUs: number | undefined;
  if (params.timeout !== undefined) {
    if (typeof params.timeout !== 'number' || !Number.isInteger(params.timeout) || params.timeout < 0)
      throw new RequestError(
        400,
        `parameters.timeout: expected microseconds (an integer >= 0), got ${JSON.stringify(params.timeout)}`,
      );
    timeoutUs = params.timeout;
  }
  if (!Array.isArray(json.inputs)) throw new RequestError(400, "'inputs' must be an array of tensors");

  let offset = length; // the next input's binary bytes
  let batch = -1;
  const byName = new Map<string, Float32Array>();
  for (const [i, item] of json.inputs.entries()) {
    const where = `inputs[${i}]`;
    if (!isObject(item)) throw new RequestError(400, `${where}: expected an object`);
    const name = item.name;
    if (typeof name !== 'string') throw new RequestError(400, `${where}.name: expected a string`);
    const info = modelInputs.find((t) => t.name === name);
    if (!info)
      throw new RequestError(
        400,
        `${where}: unknown input '${name}' (the model's inputs: ${modelInputs.map((t) => t.name).join(', ')})`,
      );
    if (byName.has(name)) throw new RequestError(400, `${where}: input '${name}' given twice`);
    if (item.datatype !== 'FP32')
      throw new RequestError(400, `${where} '${name}': datatype ${JSON.stringify(item.datatype)}, expected "FP32"`);
    const shape = item.shape;
    const expected = `[N, ${info.sampleShape.join(', ')}]`;
    if (
      !Array.isArray(shape) ||
      shape.length !== info.sampleShape.length + 1 ||
      !shape.every((d) => Number.isSafeInteger(d) && d >= 0) ||
      shape.slice(1).some((d, k) => d !== info.sampleShape[k])
    )
      throw new RequestError(400, `${where} '${name}': shape ${JSON.stringify(shape)}, expected ${expected}`);
    const n = shape[0] as number;
    if (n < 1) throw new RequestError(400, `${where} '${name}': a batch of ${n}, expected at least 1`);
    if (batch >= 0 && n !== batch)
      throw new RequestError(400, `${where} '${name}': batch ${n} differs from the other inputs' ${batch}`);
    batch = n;
    const count = info.sampleShape.reduce((a, b) => a * b, n);
    const inputParams = item.parameters === undefined ? {} : item.parameters;
    if (!isObject(inputParams)) throw new RequestError(400, `${where}.parameters: expected an object`);
    let data: Float32Array;
    if (inputParams.binary_data_size !== undefined) {
      const size = inputParams.binary_data_size;
      if (headerLength === undefined)
        throw new RequestError(400, `${where} '${name}': binary_data_size without Inference-Header-Content-Length`);
      if (size !== count * 4)
        throw new RequestError(
          400,
          `${where} '${name}': binary_data_size ${JSON.stringify(size)}, expected ${count * 4} (${count} FP32 values of shape ${JSON.stringify(shape)})`,
        );
      if (offset + size > body.length)
        throw new RequestError(
          400,
          `${where} '${name}': the body ends ${offset + size - body.length} bytes short of its binary data`,
        );
      // A view where the bytes are 4-aligned (the server places them so), else a copy.
      const at = body.byteOffset + offset;
      if (at % 4 === 0) data = new Float32Array(body.buffer, at, count);
      else new Uint8Array((data = new Float32Array(count)).buffer).set(body.subarray(offset, offset + size));
      offset += size;
    } else {
      let values: number[] | Float32Array = [];
      if (item.data instanceof Float32Array) values = item.data;
      else if (Array.isArray(item.data) && item.data.every((v) => typeof v === 'number'))
        values = item.data; // flat
      else if (!flatten(item.data, values))
        throw new RequestError(400, `${where} '${name}': 'data' must be an array of numbers (flat or nested)`);
      if (values.length !== count)
        throw new RequestError(
          400,
          `${where} '${name}': ${values.length} values, shape ${JSON.stringify(shape)} needs ${count}`,
        );
      data = values instanceof Float32Array ? values : Float32Array.from(values);
    }
    byName.set(name, data);
  }
  if (offset !== body.length)
    throw new RequestError(400, `${body.length - offset} bytes after the inputs' binary data`);
  const missing = modelInputs.filter((t) => !byName.has(t.name)).map((t) => t.name);
  if (missing.length) throw new RequestError(400, `missing input(s): ${missing.join(', ')}`);

  const binaryDefault = params.binary_data_output === true;
  let outputs = modelOutputs.map((t) => ({ name: t.name, binary: binaryDefault }));
  if (json.outputs !== undefined) {
    if (!Array.isArray(json.outputs)) throw new RequestError(400, "'outputs' must be an array");
    outputs = json.outputs.map((o, i) => {
      if (!isObject(o) || typeof o.name !== 'string') throw new RequestError(400, `outputs[${i}]: expected { name }`);
      if (!modelOutputs.some((t) => t.name === o.name))
        throw new RequestError(
          400,
          `outputs[${i}]: unknown output '${o.name}' (the model's outputs: ${modelOutputs.map((t) => t.name).join(', ')})`,
        );
      const p = isObject(o.parameters) ? o.parameters : {};
      return { name: o.name, binary: p.binary_data === undefined ? binaryDefault : p.binary_data === true };
    });
  }
  return {
    id: json.id as string | undefined,
    batch,
    inputs: modelInputs.map((t) => byName.get(t.name)!),
    outputs,
    timeoutUs,
  };
}

/** An encoded response: the body, and the extra headers of the binary extension. */
export interface EncodedResponse {
  body: Buffer;
  headers: Record<string, string>;
}

/** The response to `request` for one model's outputs (each `data` holds request.batch samples). */
export function encodeInferResponse(
  modelName: string,
  request: InferRequest,
  results: Map<string, { shape: number[]; data: Float32Array }>,
): EncodedResponse {
  const binary: Buffer[] = [];
  const outputs = request.outputs.map(({ name, binary: asBinary }) => {
    const { shape, data } = results.get(name)!;
    if (!asBinary) return { name, datatype: 'FP32', shape, data: Array.from(data) };
    binary.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    return { name, datatype: 'FP32', shape, parameters: { binary_data_size: data.byteLength } };
  });
  const header = Buffer.from(
    JSON.stringify({ model_name: modelName, model_version: '1', ...(request.id ? { id: request.id } : {}), outputs }),
  );
  if (binary.length === 0) return { body: header, headers: { 'content-type': 'application/json' } };
  return {
    body: Buffer.concat([header, ...binary]),
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
  };
}
