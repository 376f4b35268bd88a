/**
 * `serve` suite: `lowbit serve` (lib/serve/, through the CLI) against a minimal node:http +
 * onnxruntime-node server written here, on `POST /v2/models/NAME/infer` with KServe v2 JSON
 * requests of one real Fashion-MNIST test image each. Models: the shipped binary CNN
 * (fashion-binary.lowbit vs fashion-binary.onnx, the ONNX it was converted from) and the W8A8 CNN
 * (fashion-w8a8.lowbit vs fashion-float.onnx, the float network it was quantized from), both ONNX
 * run in fp32 by onnxruntime. Each server runs alone in its own child process with the same thread
 * count (`--threads n`, `intraOpNumThreads: n`); autocannon loads it from this process at 1, 16 and
 * 64 connections. Rounds interleave the servers (starting with a different one each round) and the
 * table shows medians over rounds.
 *
 * `node dist/bench/serve.js ort ONNX THREADS MAX_BATCH MAX_DELAY_MS` runs the onnxruntime server
 * alone (what the suite spawns); it prints `listening PORT` once it listens.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { argmax, readLbds, toInput } from '../lib/data.js';
import type { Model } from '../lib/model/model.js';
import { Batcher } from '../lib/serve/batcher.js';
import { median, ms, rate, round, tablePrinter, type Row, type Suite, type SuiteOptions } from './harness.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/bench
const ROOT = join(here, '../..');
const CLI = join(ROOT, 'dist/lib/cli.js');
const SAMPLE = 28 * 28;
const CLASSES = 10;
const MAX_BATCH = 64;
const MAX_DELAY_MS = 2;
const CONNECTIONS = [1, 16, 64];
/** distinct images the load cycles through, and those the agreement check sends */
const IMAGES = 16;

/** A JSON serve row: `median_ms` is the median p50 latency; `gops` is 0 (no op count here). */
export interface ServeRow extends Row {
  connections: number;
  req_s: number;
  p50_ms: number;
  p99_ms: number;
  /** non-2xx answers, socket errors and timeouts, over all rounds */
  errors: number;
}

interface Impl {
  name: string;
  /** the command line of its server child: prints the port it listens on */
  args(model: Net, threads: number): string[];
}

interface Net {
  name: string;
  lowbit: string;
  onnx: string;
}

const NETS: Net[] = [
  { name: 'binary', lowbit: 'models/fashion-binary.lowbit', onnx: 'models/fashion-binary.onnx' },
  { name: 'w8a8', lowbit: 'models/fashion-w8a8.lowbit', onnx: 'models/fashion-float.onnx' },
];

const lowbitImpl = (name: string, maxBatch: number): Impl => ({
  name,
  args: (net, threads) => [
    CLI,
    'serve',
    join(ROOT, net.lowbit),
    ...['--port', '0', '--threads', String(threads), '--max-batch', String(maxBatch)],
    ...['--max-delay-ms', String(MAX_DELAY_MS)],
  ],
});
const ortImpl = (name: string, maxBatch: number): Impl => ({
  name,
  args: (net, threads) => [
    fileURLToPath(import.meta.url),
    'ort',
    join(ROOT, net.onnx),
    String(threads),
    String(maxBatch),
    String(MAX_DELAY_MS),
  ],
});
const IMPLS: Impl[] = [
  lowbitImpl('lowbit-batch', MAX_BATCH),
  lowbitImpl('lowbit', 1),
  ortImpl('ort', 1),
  ortImpl('ort-batch', MAX_BATCH),
];
/** the peer each lowbit row's ratio divides by */
const PEER: Record<string, string> = { 'lowbit-batch': 'ort', lowbit: 'ort', 'ort-batch': 'ort' };

/**
 * The onnxruntime server: what a user writes with node:http and onnxruntime-node. It parses the
 * same KServe v2 JSON request and answers the same JSON response as lowbit serve. With maxBatch 1
 * every request is its own `session.run`; otherwise lib/serve/batcher.ts batches them, as it does
 * for lowbit: up to maxBatch samples, two runs in flight, a run starting at once when none is in
 * flight, else when the oldest has waited maxDelayMs. (onnxruntime-node 1.30 runs `session.run` on
 * the main thread in a setImmediate, so its runs take turns with the HTTP work whatever is in flight.)
 */
async function ortServer(onnx: string, threads: number, maxBatch: number, maxDelayMs: number): Promise<void> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(onnx, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const [inputName] = session.inputNames;
  const [outputName] = session.outputNames;
  const modelName = basename(onnx).replace(/\.onnx$/, '');
  const run = async (x: Float32Array, n: number) => {
    const out = await session.run({ [inputName]: new ort.Tensor('float32', x, [n, 1, 28, 28]) });
    return out[outputName].data as Float32Array;
  };

  // Batching: lib/serve's own Batcher, around the session as a model whose run stacks the requests.
  const ortModel = {
    inputs: [{ name: inputName, sampleShape: [1, 28, 28] }],
    outputs: [{ name: outputName, sampleShape: [CLASSES] }],
    async run(inputs: Record<string, Float32Array[]>) {
      const parts = inputs[inputName];
      const x = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
      parts.reduce((at, p) => (x.set(p, at), at + p.length), 0);
      return { [outputName]: { data: await run(x, x.length / SAMPLE) } };
    },
  } as unknown as Model;
  const batcher = new Batcher(
    modelName,
    ortModel,
    { maxBatch, maxDelayMs, maxQueue: Number.MAX_SAFE_INTEGER, maxInflight: 2 },
    { batch: () => {}, cancelled: () => {} },
  );
  const infer =
    maxBatch === 1
      ? run
      : async (x: Float32Array, n: number) =>
          (await batcher.submit({ batch: n, inputs: [x], outputs: [] })).get(outputName)!.data;

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = (status: number, body: string) =>
        res
          .writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
          .end(body);
      void (async () => {
        try {
          if (req.method !== 'POST' || !/^\/v2\/models\/[^/]+\/infer$/.test(req.url ?? ''))
            return answer(404, '{"error":"not found"}');
          const input = (
            JSON.parse(Buffer.concat(chunks).toString('utf8')) as { inputs: { shape: number[]; data: number[] }[] }
          ).inputs[0];
          const n = input.shape[0];
          const y = await infer(Float32Array.from(input.data), n);
          const outputs = [{ name: outputName, datatype: 'FP32', shape: [n, CLASSES], data: Array.from(y) }];
          answer(200, JSON.stringify({ model_name: modelName, model_version: '1', outputs }));
        } catch (e) {
          answer(400, JSON.stringify({ error: String(e) }));
        }
      })();
    });
  });
  process.on('SIGTERM', () => process.exit(0)); // a normal exit: `node --cpu-prof` writes its profile
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    console.log(`listening ${typeof address === 'object' && address ? address.port : 0}`);
  });
}

/** A server child and the base URL it listens on (the line with the port on stdout or stderr). */
async function start(args: string[]): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const port = await new Promise<number>((resolve, reject) => {
    const look = (chunk: Buffer) => {
      text += chunk.toString();
      const m = /(?:listening |127\.0\.0\.1:)(\d+)/.exec(text);
      if (m) resolve(Number(m[1]));
    };
    child.stdout!.on('data', look);
    child.stderr!.on('data', look);
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${text.trim()}`)));
  });
  return { child, base: `http://127.0.0.1:${port}` };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

// autocannon ships no types: the part of its programmatic API used here.
interface CannonResult {
  duration: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}
interface CannonInstance {
  on(event: 'response', listener: (client: unknown, status: number, bytes: number, ms: number) => void): void;
}
type Cannon = (
  options: Record<string, unknown>,
  done: (error: unknown, result: CannonResult) => void,
) => CannonInstance;
const autocannon = createRequire(import.meta.url)('autocannon') as Cannon;

interface Sample {
  reqS: number;
  p50: number;
  p99: number;
  errors: number;
}

/**
 * `connections` clients sending `bodies` in turn for `seconds`. Latencies are taken from each
 * response (autocannon's own histogram rounds them to whole milliseconds).
 */
async function load(url: string, bodies: string[], connections: number, seconds: number): Promise<Sample> {
  const times: number[] = [];
  const r = await new Promise<CannonResult>((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        connections,
        duration: seconds,
        requests: bodies.map((body) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body })),
      },
      (error, result) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve(result)),
    );
    instance.on('response', (_client, status, _bytes, ms) => {
      if (status >= 200 && status < 300) times.push(ms);
    });
  });
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? NaN;
  return { reqS: times.length / r.duration, p50: at(0.5), p99: at(0.99), errors: r.non2xx + r.errors + r.timeouts };
}

/** The top-1 class each request's answer gives. */
async function classes(url: string, bodies: string[]): Promise<number[]> {
  const out: number[] = [];
  for (const body of bodies) {
    const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
    const json = (await res.json()) as { outputs: { data: number[] }[] };
    out.push(argmax(json.outputs[0].data, 0, CLASSES));
  }
  return out;
}

async function run({ quick }: SuiteOptions): Promise<Row[]> {
  const rounds = quick ? 2 : 3;
  const seconds = quick ? 1 : 2;
  const threadCounts = quick ? [1] : [1, 2];
  const ds = readLbds(join(ROOT, 'models/fashion-mnist-test-1000.lbds'));
  const bodies = Array.from({ length: IMAGES }, (_, i) =>
    JSON.stringify({
      inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array.from(toInput(ds, i, 1)) }],
    }),
  );
  console.log(
    `\n## serve: lowbit serve vs node:http + onnxruntime-node (fp32), KServe v2 JSON, one image per request (${bodies[0].length} bytes)`,
  );
  console.log(
    `autocannon ${seconds} s per cell, ${rounds} rounds, medians; lowbit-batch: --max-batch ${MAX_BATCH} --max-delay-ms ${MAX_DELAY_MS}; ` +
      `lowbit: --max-batch 1; ort: session.run per request; ort-batch: the same batching as lowbit-batch`,
  );
  console.log(`load average ${loadavg()[0].toFixed(2)}\n`);
  const row = tablePrinter([
    ['model', 6],
    ['thr', 3],
    ['conn', 4],
    ['impl', 12],
    ['req/s', 7],
    ['p50 ms', 7],
    ['p99 ms', 7],
    ['vs ort req/s', 6],
    ['ort p99 ms', 7],
    ['errors', 3],
  ]);
  const rows: ServeRow[] = [];
  const warnings: string[] = [];
  const targets: string[] = [];
  for (const net of NETS) {
    for (const threads of threadCounts) {
      // samples[impl][connections] over rounds
      const samples = new Map(IMPLS.map((i) => [i.name, new Map(CONNECTIONS.map((c) => [c, [] as Sample[]]))]));
      const answers = new Map<string, number[]>();
      for (let r = 0; r < rounds; ++r) {
        for (let k = 0; k < IMPLS.length; ++k) {
          const impl = IMPLS[(k + r) % IMPLS.length];
          const { child, base } = await start(impl.args(net, threads));
          try {
            const modelName = basename(impl.name.startsWith('ort') ? net.onnx : net.lowbit).replace(/\.\w+$/, '');
            const url = `${base}/v2/models/${modelName}/infer`;
            if (!answers.has(impl.name)) answers.set(impl.name, await classes(url, bodies));
            await load(url, bodies, 16, quick ? 0.3 : 1); // warm-up
            for (const c of CONNECTIONS)
              samples
                .get(impl.name)!
                .get(c)!
                .push(await load(url, bodies, c, seconds));
          } finally {
            await stop(child);
          }
        }
      }
      const reference = answers.get('ort')!;
      for (const [name, got] of answers) {
        const same = got.filter((v, i) => v === reference[i]).length;
        if (same < got.length)
          warnings.push(`${net.name} ${threads}T: ${name} agrees with ort on ${same} of ${got.length} top-1 classes`);
      }
      for (const c of CONNECTIONS) {
        const stat = (name: string) => {
          const s = samples.get(name)!.get(c)!;
          return {
            reqS: median(s.map((x) => x.reqS)),
            p50: median(s.map((x) => x.p50)),
            p99: median(s.map((x) => x.p99)),
            minP50: Math.min(...s.map((x) => x.p50)),
            errors: s.reduce((a, x) => a + x.errors, 0),
          };
        };
        for (const impl of IMPLS) {
          const s = stat(impl.name);
          const peer = PEER[impl.name] ? stat(PEER[impl.name]) : undefined;
          row([
            net.name,
            String(threads),
            String(c),
            impl.name,
            rate(s.reqS),
            ms(s.p50),
            ms(s.p99),
            peer ? `${(s.reqS / peer.reqS).toFixed(2)}x` : '',
            peer ? ms(peer.p99) : '',
            String(s.errors),
          ]);
          if (s.errors > 0) warnings.push(`${net.name} ${threads}T ${c} conns: ${impl.name} had ${s.errors} errors`);
          rows.push({
            workload: `${net.name}-c${c}`,
            impl: impl.name,
            threads,
            median_ms: round(s.p50, 3),
            gops: 0,
            min_ms: round(s.minP50, 3),
            runs: rounds,
            connections: c,
            req_s: round(s.reqS, 1),
            p50_ms: round(s.p50, 3),
            p99_ms: round(s.p99, 3),
            errors: s.errors,
          });
          if (net.name === 'binary' && c === 64 && impl.name.startsWith('lowbit') && peer) {
            const x = s.reqS / peer.reqS;
            const met = x >= 2 && s.p99 < peer.p99;
            targets.push(
              `binary, 64 connections, ${threads}T, ${impl.name}: ${x.toFixed(2)}x ort's req/s (target 2x), ` +
                `p99 ${ms(s.p99)} vs ${ms(peer.p99)} ms: ${met ? 'met' : 'MISSED'}`,
            );
          }
        }
      }
    }
  }
  console.log(`\nload average ${loadavg()[0].toFixed(2)}`);
  for (const t of targets) console.log(`target: ${t}`);
  for (const w of warnings) console.log(`WARNING: ${w}`);
  return rows;
}

export const suite: Suite = { run };

if (process.argv[2] === 'ort' && process.argv[1] === fileURLToPath(import.meta.url)) {
  const [onnx, threads, maxBatch, maxDelayMs] = process.argv.slice(3);
  void ortServer(onnx, Number(threads), Number(maxBatch), Number(maxDelayMs));
}
