/**
 * `createServer`: lowbit models behind the Open Inference Protocol (KServe v2) on node:http, so
 * Triton / KServe clients and load balancers work unchanged. Per model: dynamic batching, a bounded
 * queue (503 + Retry-After beyond it), per-request deadlines (504), and a client that leaves takes
 * its queued request with it. `GET /metrics` in the Prometheus format; `close()` stops accepting,
 * lets queued and running requests finish within a grace period, then refuses the rest.
 *
 * node:http rather than a framework: six routes, and every limit (body size, queue, deadline,
 * disconnects) is on the request path itself, where a framework would add layers, not remove code.
 */
import { createServer as httpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Model } from '../model/model.js';
import { threads } from '../runtime.js';
import { Batcher, type BatcherOptions } from './batcher.js';
import { Metrics } from './metrics.js';
import { JsonDecoder, OFF_LOOP_JSON_BYTES } from './json-decoder.js';
import { decodeInferRequest, encodeInferResponse, jsonLength, RequestError } from './protocol.js';

export interface ServerOptions extends Partial<BatcherOptions> {
  /** the models, by the name clients use in /v2/models/{name} */
  models: Record<string, Model>;
  /** the largest request body accepted, in bytes (413 beyond): default 64 MiB */
  maxBodyBytes?: number;
  /** a deadline for every request that sets none, in ms (0: none) */
  timeoutMs?: number;
  /** called with one object per answered request (an access log); off when absent */
  log?: (entry: AccessLogEntry) => void;
}

export interface AccessLogEntry {
  time: string;
  method: string;
  path: string;
  status: number;
  ms: number;
  bytesIn: number;
  bytesOut: number;
  remote?: string;
}

export interface LowbitServer {
  readonly http: Server;
  /** Starts listening; resolves with the bound address. */
  listen(port: number, host?: string): Promise<AddressInfo>;
  /** Stops accepting; queued and running requests get `graceMs` to finish, then 503. */
  close(graceMs?: number): Promise<void>;
}

const DEFAULTS = { maxBatch: 64, maxDelayMs: 2, maxQueue: 1024, maxInflight: 2, maxBodyBytes: 64 << 20, timeoutMs: 0 };

const NAME = /^[A-Za-z0-9_.-]+$/;

function check(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min)
    throw new RangeError(`${name}: expected an integer >= ${min}, got ${String(value)}`);
  return value;
}

export function createServer(options: ServerOptions): LowbitServer {
  const o = { ...DEFAULTS, ...options };
  check('maxBatch', o.maxBatch, 1);
  check('maxDelayMs', o.maxDelayMs, 0);
  check('maxQueue', o.maxQueue, 1);
  check('maxInflight', o.maxInflight, 1);
  check('maxBodyBytes', o.maxBodyBytes, 1);
  check('timeoutMs', o.timeoutMs, 0);
  if (typeof o.models !== 'object' || o.models === null || Object.keys(o.models).length === 0)
    throw new TypeError('models: expected an object { name: Model } with at least one model');
  const metrics = new Metrics();
  const batchers = new Map<string, Batcher>();
  for (const [name, model] of Object.entries(o.models)) {
    if (!NAME.test(name)) throw new TypeError(`models: the name '${name}' may use only letters, digits, _ . -`);
    batchers.set(
      name,
      new Batcher(name, model, o, {
        batch: (m, samples) => metrics.batch(m, samples),
        cancelled: (m) => metrics.cancelled(m),
      }),
    );
  }
  const json = new JsonDecoder();
  let closing = false;

  const send = (
    res: ServerResponse,
    status: number,
    body: Buffer | string | object,
    headers: Record<string, string> = {},
  ) => {
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const type = Buffer.isBuffer(body) || typeof body !== 'object' ? {} : { 'content-type': 'application/json' };
    if (!res.headersSent) {
      for (const [k, v] of Object.entries({ ...type, ...headers, 'content-length': String(bytes.length) }))
        res.setHeader(k, v);
      res.writeHead(status);
    }
    res.end(bytes);
  };
  const fail = (res: ServerResponse, error: unknown) => {
    if (error instanceof RequestError) return send(res, error.status, { error: error.message }, error.headers);
    const e = error as Error;
    // An error of the model itself (a bad input value the checks let through) is the client's.
    const status = e?.name === 'ShapeError' || e?.name === 'TypeError' || e?.name === 'RangeError' ? 400 : 500;
    send(res, status, { error: `${e?.name ?? 'Error'}: ${e?.message ?? String(error)}` });
  };

  /**
   * The whole body, refusing one longer than maxBodyBytes (413) before reading it all. With a
   * Content-Length, the chunks go straight into one buffer, placed so that what follows the first
   * `jsonLength` bytes (the binary tensors) is 4-aligned: the inputs are then views of it, not copies.
   */
  const readBody = (req: IncomingMessage, jsonLength: number): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
      const tooLarge = () =>
        new RequestError(413, `the request body exceeds ${o.maxBodyBytes} bytes`, { connection: 'close' });
      if (declared !== undefined && declared > o.maxBodyBytes) return reject(tooLarge());
      const pad = (4 - (jsonLength % 4)) % 4;
      const whole = declared === undefined ? undefined : Buffer.allocUnsafeSlow(declared + pad).subarray(pad);
      const chunks: Buffer[] = [];
      let length = 0;
      req.on('data', (chunk: Buffer) => {
        if (length + chunk.length > (whole?.length ?? o.maxBodyBytes)) {
          req.removeAllListeners('data');
          return reject(tooLarge()); // node:http ends a body at its Content-Length: this is a chunked one
        }
        if (whole) chunk.copy(whole, length);
        else chunks.push(chunk);
        length += chunk.length;
      });
      req.on('end', () => resolve(whole ? whole.subarray(0, length) : Buffer.concat(chunks, length)));
      // A client that leaves mid-body: nobody to answer (499, as nginx logs it).
      req.on('error', () => reject(new RequestError(499, 'the client closed the connection')));
    });

  const modelMetadata = (name: string) => {
    const model = batchers.get(name)!.model;
    const tensor = (t: Model['inputs'][number]) => ({ name: t.name, datatype: 'FP32', shape: t.shape });
    return {
      name,
      versions: ['1'],
      platform: 'lowbit',
      inputs: model.inputs.map(tensor),
      outputs: model.outputs.map(tensor),
    };
  };

  const infer = async (name: string, req: IncomingMessage, res: ServerResponse): Promise<number> => {
    const batcher = batchers.get(name)!;
    const headerLength = req.headers['inference-header-content-length'];
    let declared: number | undefined;
    if (headerLength !== undefined) {
      declared = Number(headerLength);
      if (!Number.isSafeInteger(declared) || declared < 0)
        throw new RequestError(400, `Inference-Header-Content-Length: expected a byte count, got '${headerLength}'`);
    }
    const body = await readBody(req, declared ?? 0);
    const length = jsonLength(body, declared);
    const parsed = length >= OFF_LOOP_JSON_BYTES ? await json.parse(body, length) : undefined;
    const request = decodeInferRequest(body, declared, batcher.model.inputs, batcher.model.outputs, parsed);
    const timeoutMs = request.timeoutUs !== undefined ? request.timeoutUs / 1000 : o.timeoutMs;
    const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : undefined;
    // A client that leaves before its answer takes its queued request with it.
    const gone = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) gone.abort(new RequestError(499, 'the client closed the connection'));
    });
    const outputs = await batcher.submit(request, deadline, gone.signal);
    const encoded = encodeInferResponse(name, request, outputs);
    send(res, 200, encoded.body, encoded.headers);
    return encoded.body.length;
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<{ model?: string; bytesIn: number }> => {
    const path = (req.url ?? '/').split('?')[0];
    const method = req.method ?? 'GET';
    const only = (allowed: string) => {
      if (method !== allowed) throw new RequestError(405, `${method} ${path}: expected ${allowed}`, { allow: allowed });
    };
    if (path === '/v2/health/live') {
      only('GET');
      send(res, 200, { live: true });
    } else if (path === '/v2/health/ready') {
      only('GET');
      send(res, closing ? 503 : 200, { ready: !closing });
    } else if (path === '/v2') {
      only('GET');
      send(res, 200, { name: 'lowbit', version: '0.1.0', extensions: ['binary_tensor_data'] });
    } else if (path === '/metrics') {
      only('GET');
      const queue = new Map([...batchers].map(([n, b]) => [n, b.depth]));
      const running = new Map([...batchers].map(([n, b]) => [n, b.running]));
      send(res, 200, metrics.render({ queue, running, threads: threads() }), {
        'content-type': 'text/plain; version=0.0.4',
      });
    } else {
      const m = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/ready|\/infer)?$/.exec(path);
      if (!m) throw new RequestError(404, `no route ${method} ${path}`);
      const name = decodeURIComponent(m[1]);
      if (!batchers.has(name))
        throw new RequestError(404, `unknown model '${name}' (served: ${[...batchers.keys()].join(', ')})`);
      if (m[2] !== undefined && m[2] !== '1')
        throw new RequestError(404, `model '${name}' has version 1 only, not '${m[2]}'`);
      if (m[3] === '/infer') {
        only('POST');
        if (closing) throw new RequestError(503, 'the server is shutting down', { 'retry-after': '1' });
        const bytesIn = Number(req.headers['content-length'] ?? 0);
        await infer(name, req, res);
        return { model: name, bytesIn };
      }
      only('GET');
      if (m[3] === '/ready') send(res, closing ? 503 : 200, { name, ready: !closing });
      else send(res, 200, modelMetadata(name));
    }
    return { bytesIn: 0 };
  };

  const server = httpServer((req, res) => {
    const start = process.hrtime.bigint();
    let model: string | undefined;
    const path = (req.url ?? '/').split('?')[0];
    const inferModel = /^\/v2\/models\/([^/]+)(?:\/versions\/[^/]+)?\/infer$/.exec(path)?.[1];
    route(req, res)
      .then((r) => (model = r.model))
      .catch((error: unknown) => {
        if ((error as RequestError)?.status === 499) return; // nobody to answer
        fail(res, error);
      })
      .finally(() => {
        const seconds = Number(process.hrtime.bigint() - start) / 1e9;
        const name =
          model ??
          (inferModel && batchers.has(decodeURIComponent(inferModel)) ? decodeURIComponent(inferModel) : undefined);
        if (name) metrics.request(name, res.headersSent ? res.statusCode : 499, seconds);
        o.log?.({
          time: new Date().toISOString(),
          method: req.method ?? '',
          path,
          status: res.headersSent ? res.statusCode : 499,
          ms: Math.round(seconds * 1e6) / 1e3,
          bytesIn: Number(req.headers['content-length'] ?? 0),
          bytesOut: Number(res.getHeader('content-length') ?? 0),
          remote: req.socket.remoteAddress,
        });
      });
  });

  return {
    http: server,
    listen: (port, host = '127.0.0.1') =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      }),
    async close(graceMs = 10_000) {
      closing = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      const within = (p: Promise<unknown>, ms: number) =>
        Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
      const idle = () => Promise.all([...batchers.values()].map((b) => b.idle()));
      if (!(await within(idle(), graceMs))) {
        const refused = new RequestError(503, 'the server shut down before the request ran', { 'retry-after': '1' });
        for (const b of batchers.values()) b.drainQueue(refused);
        await within(idle(), graceMs);
      }
      // Idle keep-alive connections close now, busy ones once their answer is written.
      const sweep = setInterval(() => server.closeIdleConnections(), 20);
      if (!(await within(stopped, 2000))) server.closeAllConnections();
      clearInterval(sweep);
      await stopped;
      await json.close();
    },
  };
}
