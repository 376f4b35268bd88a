// lowbit serve (lib/serve/): the Open Inference Protocol over real HTTP on 127.0.0.1, with the
// shipped models: every endpoint, JSON and binary tensors, outputs equal to runSync's bit for bit
// with batching on and off, bad requests answered 4xx with what was wrong (and nothing leaking),
// queue overflow, deadlines, clients that leave, and SIGTERM under load through the CLI.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../lib/index.js';
import { OFF_LOOP_JSON_BYTES } from '../lib/serve/json-decoder.js';
import { createServer, type LowbitServer, type ServerOptions } from '../lib/serve/server.js';
import { childEnv, compiledLib, NODE_COMMAND, ROOT, spawnNode, timeLimit } from './helpers/compile-lib.js';
import { fileSeed, rngFor } from './helpers/rng.js';

const SEED = fileSeed('serve');
const SAMPLE = 28 * 28;
const models: Record<string, Model> = {
  binary: loadModel(join(ROOT, 'models/fashion-binary.lowbit')),
  w8a8: loadModel(join(ROOT, 'models/fashion-w8a8.lowbit')),
};
afterAll(() => Object.values(models).forEach((m) => m.dispose()));

function images(n: number, key: string): Float32Array {
  const rng = rngFor(SEED, key);
  return Float32Array.from({ length: n * SAMPLE }, () => rng.float());
}

const bits = (x: Float32Array) => Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length));

/** A server on a free port for the tests of a block; `url(path)` addresses it. */
function serving(options: Partial<ServerOptions> = {}) {
  const s: { server?: LowbitServer; base: string; url(path: string): string } = {
    base: '',
    url: (path) => `${s.base}${path}`,
  };
  beforeAll(async () => {
    s.server = createServer({ models, ...options });
    const { port } = await s.server.listen(0);
    s.base = `http://127.0.0.1:${port}`;
  });
  afterAll(() => s.server?.close(1000));
  return s;
}

const jsonInfer = (x: Float32Array, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    inputs: [{ name: 'input', shape: [x.length / SAMPLE, 1, 28, 28], datatype: 'FP32', data: Array.from(x) }],
    ...extra,
  });

/** A binary-extension request body: the JSON header, then the raw input. */
function binaryInfer(x: Float32Array, outputsBinary = true): { body: Buffer; headers: Record<string, string> } {
  const header = Buffer.from(
    JSON.stringify({
      inputs: [
        {
          name: 'input',
          shape: [x.length / SAMPLE, 1, 28, 28],
          datatype: 'FP32',
          parameters: { binary_data_size: x.byteLength },
        },
      ],
      parameters: { binary_data_output: outputsBinary },
    }),
  );
  return {
    body: Buffer.concat([header, Buffer.from(x.buffer, x.byteOffset, x.byteLength)]),
    headers: { 'inference-header-content-length': String(header.length), 'content-type': 'application/octet-stream' },
  };
}

describe('the protocol', () => {
  const s = serving();

  it('health, server and model metadata, readiness', async () => {
    expect(await (await fetch(s.url('/v2/health/live'))).json()).toEqual({ live: true });
    expect(await (await fetch(s.url('/v2/health/ready'))).json()).toEqual({ ready: true });
    expect(await (await fetch(s.url('/v2'))).json()).toMatchObject({
      name: 'lowbit',
      extensions: ['binary_tensor_data'],
    });
    for (const name of ['binary', 'w8a8']) {
      expect(await (await fetch(s.url(`/v2/models/${name}`))).json()).toEqual({
        name,
        versions: ['1'],
        platform: 'lowbit',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 1, 28, 28] }],
        outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 10] }],
      });
      const ready = await fetch(s.url(`/v2/models/${name}/versions/1/ready`));
      expect([ready.status, await ready.json()]).toEqual([200, { name, ready: true }]);
    }
  });

  it('JSON tensors, on each model: the outputs of runSync, bit for bit, and the request id back', async () => {
    for (const [name, model] of Object.entries(models)) {
      const x = images(3, `json ${name}`);
      const res = await fetch(s.url(`/v2/models/${name}/infer`), { method: 'POST', body: jsonInfer(x, { id: 'r-7' }) });
      expect(res.status).toBe(200);
      const body = (await res.json()) as {
        model_name: string;
        id: string;
        outputs: { name: string; shape: number[]; data: number[] }[];
      };
      expect([body.model_name, body.id, body.outputs[0].name, body.outputs[0].shape]).toEqual([
        name,
        'r-7',
        'logits',
        [3, 10],
      ]);
      expect(bits(Float32Array.from(body.outputs[0].data))).toEqual(bits(model.runSync(x).logits.data as Float32Array));
    }
  });

  it('nested JSON data, the versioned route, and an output asked for by name', async () => {
    const x = images(2, 'nested');
    const nested = [0, 1].map((n) => [
      [...Array(28)].map((_, r) => Array.from(x.subarray(n * SAMPLE + r * 28, n * SAMPLE + r * 28 + 28))),
    ]);
    const body = JSON.stringify({
      inputs: [{ name: 'input', shape: [2, 1, 28, 28], datatype: 'FP32', data: nested }],
      outputs: [{ name: 'logits' }],
    });
    const res = await fetch(s.url('/v2/models/binary/versions/1/infer'), { method: 'POST', body });
    const out = ((await res.json()) as { outputs: { data: number[] }[] }).outputs[0].data;
    expect(bits(Float32Array.from(out))).toEqual(bits(models.binary.runSync(x).logits.data as Float32Array));
  });

  it('large JSON bodies, parsed on worker threads: flat and nested equal runSync; bad ones are 400s', async () => {
    const x = images(40, 'large json'); // about 600 KB of JSON text, above OFF_LOOP_JSON_BYTES
    const want = bits(models.binary.runSync(x).logits.data as Float32Array);
    const nested = [...Array(40)].map((_, n) => [
      [...Array(28)].map((_, r) => Array.from(x.subarray(n * SAMPLE + r * 28, n * SAMPLE + r * 28 + 28))),
    ]);
    const tensor = (data: unknown) => ({ inputs: [{ name: 'input', shape: [40, 1, 28, 28], datatype: 'FP32', data }] });
    const bodies = [jsonInfer(x), JSON.stringify(tensor(nested))];
    expect(Math.min(...bodies.map((b) => b.length))).toBeGreaterThan(OFF_LOOP_JSON_BYTES);
    const post = (body: string) => fetch(s.url('/v2/models/binary/infer'), { method: 'POST', body });
    for (const res of await Promise.all([...bodies, ...bodies].map(post))) {
      expect(res.status).toBe(200);
      const out = ((await res.json()) as { outputs: { data: number[] }[] }).outputs[0].data;
      expect(bits(Float32Array.from(out))).toEqual(want);
    }
    const flat = Array.from(x) as unknown[];
    const bad: [string, RegExp][] = [
      [JSON.stringify(tensor([...flat.slice(0, -1), 'a'])), /'data' must be an array of numbers/],
      [JSON.stringify(tensor(flat.slice(1))), /31359 values, shape \[40,1,28,28\] needs 31360/],
      [bodies[0].slice(0, -2), /malformed JSON/],
    ];
    for (const [body, message] of bad) {
      const res = await post(body);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(message);
    }
  });

  it('binary tensors in and out; binary in, JSON out', async () => {
    const x = images(5, 'binary');
    const want = bits(models.w8a8.runSync(x).logits.data as Float32Array);
    const { body, headers } = binaryInfer(x);
    const res = await fetch(s.url('/v2/models/w8a8/infer'), { method: 'POST', body, headers });
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    const bytes = Buffer.from(await res.arrayBuffer());
    const jsonLength = Number(res.headers.get('inference-header-content-length'));
    const header = JSON.parse(bytes.subarray(0, jsonLength).toString()) as {
      outputs: { parameters: { binary_data_size: number } }[];
    };
    expect(header.outputs[0].parameters.binary_data_size).toBe(5 * 10 * 4);
    const raw = bytes.subarray(jsonLength);
    expect(bits(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length)))).toEqual(want);
    const asJson = binaryInfer(x, false);
    const res2 = await fetch(s.url('/v2/models/w8a8/infer'), {
      method: 'POST',
      body: asJson.body,
      headers: asJson.headers,
    });
    expect(bits(Float32Array.from(((await res2.json()) as { outputs: { data: number[] }[] }).outputs[0].data))).toEqual(
      want,
    );
  });
});

/** The binary model behind a gate: every run waits for `open()`; `runs` counts those started. */
function gated() {
  let open = () => {};
  const gate = new Promise<void>((resolve) => (open = resolve));
  const state = { runs: 0, open: () => open() };
  const model = {
    inputs: models.binary.inputs,
    outputs: models.binary.outputs,
    run: async (inputs: Record<string, Float32Array[]>, options: object) => {
      state.runs++;
      await gate;
      return models.binary.run(inputs, options);
    },
  } as unknown as Model;
  return { model, state };
}

/** A server whose one run slot a first request holds (behind the gate): what follows queues. */
async function heldServer(maxBatch = 64) {
  const { model, state } = gated();
  const server = createServer({ models: { binary: model }, maxBatch, maxInflight: 1 });
  const { port } = await server.listen(0);
  const infer = (body: string, signal?: AbortSignal) =>
    fetch(`http://127.0.0.1:${port}/v2/models/binary/infer`, { method: 'POST', body, signal });
  const first = infer(jsonInfer(images(1, 'first')));
  while (state.runs === 0) await new Promise((r) => setTimeout(r, 5));
  const metrics = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const depth = async () => Number(/^lowbit_queue_depth\{model="binary"\} (\d+)$/m.exec(await metrics())?.[1]);
  return { server, state, infer, first, metrics, depth };
}

describe('dynamic batching', () => {
  for (const [label, options] of [
    ['on', { maxBatch: 16, maxDelayMs: 20 }],
    ['off', { maxBatch: 1, maxDelayMs: 0 }],
  ] as const) {
    describe(`batching ${label}`, () => {
      const s = serving(options);
      it('48 concurrent requests of 1-3 images each get their own outputs, bit for bit', async () => {
        const xs = Array.from({ length: 48 }, (_, i) => images(1 + (i % 3), `batch ${label} ${i}`));
        const answers = await Promise.all(
          xs.map(async (x) => {
            const { body, headers } = binaryInfer(x);
            const res = await fetch(s.url('/v2/models/binary/infer'), { method: 'POST', body, headers });
            const bytes = Buffer.from(await res.arrayBuffer());
            const raw = bytes.subarray(Number(res.headers.get('inference-header-content-length')));
            return bits(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length)));
          }),
        );
        xs.forEach((x, i) =>
          expect(answers[i], `request ${i}`).toEqual(bits(models.binary.runSync(x).logits.data as Float32Array)),
        );
        const metrics = await (await fetch(s.url('/metrics'))).text();
        const runs = Number(/^lowbit_batch_size_count\{model="binary"\} (\d+)$/m.exec(metrics)?.[1]);
        const samples = Number(/^lowbit_batch_size_sum\{model="binary"\} (\d+)$/m.exec(metrics)?.[1]);
        expect(samples).toBe(xs.reduce((n, x) => n + x.length / SAMPLE, 0));
        if (label === 'off') expect(runs).toBe(48);
        else expect(runs).toBeLessThan(48); // some stacked (how many depends on arrivals: see below)
      });
    });
  }

  it('requests that queue behind a run are stacked into runs of at most maxBatch samples', async () => {
    const held = await heldServer(16);
    try {
      const xs = Array.from({ length: 47 }, (_, i) => images(1 + (i % 3), `held ${i}`));
      const answers = Promise.all(xs.map((x) => held.infer(jsonInfer(x)).then((r) => r.json())));
      while ((await held.depth()) < 47) await new Promise((r) => setTimeout(r, 5));
      held.state.open();
      const outputs = (await answers) as { outputs: { data: number[] }[] }[];
      outputs.forEach((o, i) =>
        expect(bits(Float32Array.from(o.outputs[0].data))).toEqual(
          bits(models.binary.runSync(xs[i]).logits.data as Float32Array),
        ),
      );
      // 93 samples in requests of 1-3, packed in arrival order: every run but the last holds 14-16.
      const samples = xs.reduce((n, x) => n + x.length / SAMPLE, 0);
      expect(held.state.runs - 1).toBeLessThanOrEqual(Math.ceil(samples / 14));
      expect(held.state.runs - 1).toBeGreaterThanOrEqual(Math.ceil(samples / 16));
    } finally {
      held.state.open();
      await held.server.close(1000);
    }
  });
});

describe('bad requests', () => {
  const s = serving({ maxBodyBytes: 1 << 20 });
  const post = async (path: string, body: string | Buffer, headers: Record<string, string> = {}) => {
    const res = await fetch(s.url(path), { method: 'POST', body, headers });
    return { status: res.status, error: ((await res.json()) as { error: string }).error, headers: res.headers };
  };
  const tensor = (extra: Record<string, unknown>) =>
    JSON.stringify({
      inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array(SAMPLE).fill(0), ...extra }],
    });

  it('each is a 4xx whose message names what was wrong, and the server keeps serving', async () => {
    const x = images(1, 'bad');
    const bin = binaryInfer(x);
    const cases: [string, string | Buffer, Record<string, string>, number, RegExp][] = [
      ['/v2/models/binary/infer', '{"inputs": [', {}, 400, /malformed JSON/],
      ['/v2/models/binary/infer', '[1, 2]', {}, 400, /must be a JSON object/],
      ['/v2/models/nope/infer', tensor({}), {}, 404, /unknown model 'nope' \(served: binary, w8a8\)/],
      ['/v2/models/binary/versions/2/infer', tensor({}), {}, 404, /version 1 only, not '2'/],
      [
        '/v2/models/binary/infer',
        tensor({ name: 'image' }),
        {},
        400,
        /unknown input 'image' \(the model's inputs: input\)/,
      ],
      [
        '/v2/models/binary/infer',
        tensor({ shape: [1, 1, 28, 27] }),
        {},
        400,
        /shape \[1,1,28,27\], expected \[N, 1, 28, 28\]/,
      ],
      ['/v2/models/binary/infer', tensor({ shape: [0, 1, 28, 28] }), {}, 400, /a batch of 0/],
      ['/v2/models/binary/infer', tensor({ datatype: 'INT8' }), {}, 400, /datatype "INT8", expected "FP32"/],
      ['/v2/models/binary/infer', tensor({ data: [1, 2, 3] }), {}, 400, /3 values, shape \[1,1,28,28\] needs 784/],
      ['/v2/models/binary/infer', tensor({ data: ['a'] }), {}, 400, /'data' must be an array of numbers/],
      ['/v2/models/binary/infer', '{"inputs": []}', {}, 400, /missing input\(s\): input/],
      [
        '/v2/models/binary/infer',
        bin.body.subarray(0, bin.body.length - 7),
        bin.headers,
        400,
        /7 bytes short of its binary data/,
      ],
      [
        '/v2/models/binary/infer',
        Buffer.concat([bin.body, Buffer.alloc(3)]),
        bin.headers,
        400,
        /3 bytes after the inputs' binary data/,
      ],
      ['/v2/models/binary/infer', bin.body, { 'inference-header-content-length': '99999' }, 400, /exceeds the body's/],
      [
        '/v2/models/binary/infer',
        bin.body,
        { 'inference-header-content-length': 'x' },
        400,
        /expected a byte count, got 'x'/,
      ],
      ['/v2/models/binary/infer', Buffer.alloc(2 << 20), {}, 413, /exceeds 1048576 bytes/],
      ['/v2/models/binary', '{}', {}, 405, /POST \/v2\/models\/binary: expected GET/],
      ['/v3/anything', '{}', {}, 404, /no route POST \/v3\/anything/],
    ];
    for (const [path, body, headers, status, message] of cases) {
      const r = await post(path, body, headers);
      expect([r.status, r.error], `${path} ${String(body).slice(0, 40)}`).toEqual([
        status,
        expect.stringMatching(message),
      ]);
    }
    const res = await fetch(s.url('/v2/models/binary/infer'), { method: 'POST', body: jsonInfer(x) });
    expect(res.status).toBe(200);
  });

  it('10,000 bad requests: the heap and RSS stay flat (child process)', () => {
    // Measured (a child, after gc): heap 11.1-11.6 MB throughout; RSS wanders 133-167 MB between
    // rounds of 5,000 with no trend. A leak of 2 KB a request would add 20 MB of heap.
    const lib = compiledLib();
    const script = `
      const { loadModel } = await import(${JSON.stringify(lib)});
      const { createServer } = await import(${JSON.stringify(join(dirname(lib), 'serve/server.js'))});
      const s = createServer({ models: { binary: loadModel(${JSON.stringify(join(ROOT, 'models/fashion-binary.lowbit'))}) } });
      const { port } = await s.listen(0);
      const bad = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 27], datatype: 'FP32', data: Array(784).fill(0) }] });
      const burst = async (n) => {
        for (let i = 0; i < n; i += 50)
          await Promise.all(Array.from({ length: 50 }, async () => {
            const r = await fetch('http://127.0.0.1:' + port + '/v2/models/binary/infer', { method: 'POST', body: bad });
            if (r.status !== 400) throw new Error('status ' + r.status);
            await r.text();
          }));
      };
      const mb = () => { globalThis.gc(); const m = process.memoryUsage(); return { rss: m.rss / 2 ** 20, heap: m.heapUsed / 2 ** 20 }; };
      await burst(2000);
      const before = mb();
      await burst(10000);
      console.log(JSON.stringify({ before, after: mb() }));
      await s.close(100);`;
    const r = spawnNode(['--expose-gc', '--input-type=module', '-e', script], {
      cwd: ROOT,
      env: childEnv({}),
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const { before, after } = JSON.parse(r.stdout) as Record<string, { rss: number; heap: number }>;
    expect(after.heap - before.heap, `heap ${before.heap.toFixed(1)} -> ${after.heap.toFixed(1)} MB`).toBeLessThan(8);
    expect(after.rss - before.rss, `RSS ${before.rss.toFixed(1)} -> ${after.rss.toFixed(1)} MB`).toBeLessThan(64);
  }, 150_000);
});

describe('limits', () => {
  it('a full queue answers 503 with Retry-After; every accepted request is answered', async () => {
    const server = createServer({ models, maxQueue: 2, maxInflight: 1, maxBatch: 1, maxDelayMs: 0 });
    const { port } = await server.listen(0);
    try {
      const x = images(64, 'queue');
      const statuses = await Promise.all(
        Array.from({ length: 24 }, async () => {
          const { body, headers } = binaryInfer(x);
          const res = await fetch(`http://127.0.0.1:${port}/v2/models/binary/infer`, { method: 'POST', body, headers });
          if (res.status === 503) expect(res.headers.get('retry-after')).toBe('1');
          await res.arrayBuffer();
          return res.status;
        }),
      );
      expect(statuses.filter((c) => c === 503).length).toBeGreaterThan(0);
      expect(statuses.every((c) => c === 200 || c === 503)).toBe(true);
    } finally {
      await server.close(1000);
    }
  });

  it('a request whose deadline passes in the queue is answered 504 and never runs', async () => {
    const held = await heldServer();
    try {
      const res = await held.infer(jsonInfer(images(1, 'deadline'), { parameters: { timeout: 20_000 } })); // 20 ms
      expect([res.status, ((await res.json()) as { error: string }).error]).toEqual([
        504,
        expect.stringMatching(/deadline passed/),
      ]);
      expect(await held.depth()).toBe(0);
      // A deadline shorter than the clock's millisecond has passed when the request would queue.
      const instant = await held.infer(jsonInfer(images(1, 'instant'), { parameters: { timeout: 1 } }));
      expect(instant.status).toBe(504);
      held.state.open();
      expect((await held.first).status).toBe(200);
      expect(held.state.runs).toBe(1); // the first request's only
      expect(await held.metrics()).toMatch(/lowbit_requests_total\{model="binary",code="504"\} 2/);
    } finally {
      held.state.open();
      await held.server.close(1000);
    }
  });

  it('a client that leaves takes its queued request out of the queue', async () => {
    const held = await heldServer();
    try {
      const abort = new AbortController();
      const gone = held.infer(jsonInfer(images(1, 'leave')), abort.signal).catch((e: Error) => e.name);
      while ((await held.depth()) === 0) await new Promise((r) => setTimeout(r, 5));
      abort.abort();
      expect(await gone).toBe('AbortError');
      while ((await held.depth()) === 1) await new Promise((r) => setTimeout(r, 5));
      held.state.open();
      expect((await held.first).status).toBe(200);
      await new Promise((r) => setTimeout(r, 50)); // time enough for a run of what was left
      expect(held.state.runs).toBe(1);
    } finally {
      held.state.open();
      await held.server.close(1000);
    }
  });

  it('a lone request starts at once, whatever maxDelayMs', async () => {
    const server = createServer({ models, maxBatch: 64, maxDelayMs: 60_000 });
    const { port } = await server.listen(0);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v2/models/binary/infer`, {
        method: 'POST',
        body: jsonInfer(images(1, 'lone')),
      });
      expect(res.status).toBe(200);
    } finally {
      await server.close(1000);
    }
  });

  it('a client that leaves while its run computes cancels that run', async () => {
    const server = createServer({ models, maxBatch: 1 });
    const { port } = await server.listen(0);
    const metric = async (name: string) =>
      Number(
        new RegExp(`^${name}\\{model="binary"\\} (\\d+)$`, 'm').exec(
          await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
        )?.[1] ?? 0,
      );
    try {
      const abort = new AbortController();
      const { body, headers } = binaryInfer(images(16_000, 'long')); // about 0.5 s of compute
      const gone = fetch(`http://127.0.0.1:${port}/v2/models/binary/infer`, {
        method: 'POST',
        body,
        headers,
        signal: abort.signal,
      }).catch((e: Error) => e.name);
      while ((await metric('lowbit_runs_in_flight')) === 0) await new Promise((r) => setTimeout(r, 5));
      abort.abort();
      expect(await gone).toBe('AbortError');
      while ((await metric('lowbit_runs_cancelled_total')) === 0) await new Promise((r) => setTimeout(r, 5));
      expect(await metric('lowbit_runs_in_flight')).toBe(0);
      // The model serves on: the next request gets its answer.
      const next = await fetch(`http://127.0.0.1:${port}/v2/models/binary/infer`, {
        method: 'POST',
        body: jsonInfer(images(1, 'after')),
      });
      expect(next.status).toBe(200);
      expect(await metric('lowbit_runs_cancelled_total')).toBe(1);
    } finally {
      await server.close(1000);
    }
  });
});

describe('the event loop copies no tensor', () => {
  it('binary inputs reach model.run as views of the request bodies, one list per input, never stacked', async () => {
    const seen: Float32Array[][] = [];
    const real = models.binary;
    const spy = {
      inputs: real.inputs,
      outputs: real.outputs,
      run: (inputs: Record<string, Float32Array[]>, options: object) => {
        seen.push(inputs.input);
        return real.run(inputs, options);
      },
    } as unknown as Model;
    const server = createServer({ models: { spy }, maxBatch: 64, maxDelayMs: 50 });
    const { port } = await server.listen(0);
    try {
      // Ids of 1-4 characters: JSON headers of every length mod 4, so binary parts start anywhere.
      const xs = [1, 2, 3, 4].map((n) => images(2, `view ${n}`));
      const answers = await Promise.all(
        xs.map(async (x, n) => {
          const { body, headers } = binaryInfer(x);
          const withId = Buffer.from(body.toString('latin1').replace('{', `{"id":"${'i'.repeat(n + 1)}",`), 'latin1');
          const length = Number(headers['inference-header-content-length']) + n + 8 + 1;
          const res = await fetch(`http://127.0.0.1:${port}/v2/models/spy/infer`, {
            method: 'POST',
            body: withId,
            headers: { ...headers, 'inference-header-content-length': String(length) },
          });
          expect(res.status, await res.clone().text()).toBe(200);
          const bytes = Buffer.from(await res.arrayBuffer());
          const raw = bytes.subarray(Number(res.headers.get('inference-header-content-length')));
          return bits(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length)));
        }),
      );
      answers.forEach((a, n) => expect(a).toEqual(bits(real.runSync(xs[n]).logits.data as Float32Array)));
      const parts = seen.flat();
      expect(parts.length).toBe(4);
      for (const part of parts) {
        expect(part.length).toBe(2 * SAMPLE);
        expect(part.byteOffset % 4).toBe(0);
        expect(part.buffer.byteLength).toBeGreaterThan(part.byteLength); // the body's buffer, JSON included
      }
    } finally {
      await server.close(1000);
    }
  });
});

describe('lowbit serve (the CLI)', () => {
  it(
    'SIGTERM under load: every request answered (200, or 503 once shutting down), exit 0',
    async () => {
      const child = spawn(
        NODE_COMMAND[0],
        [
          ...NODE_COMMAND.slice(1),
          join(dirname(compiledLib()), 'cli.js'),
          'serve',
          join(ROOT, 'models/fashion-binary.lowbit'),
          '--port',
          '0',
          '--max-delay-ms',
          '5',
        ],
        { env: childEnv({}), stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      const port = await new Promise<number>((resolve, reject) => {
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          const m = /on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
          if (m) resolve(Number(m[1]));
        });
        child.on('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
      });
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      const x = images(8, 'sigterm');
      const send = async () => {
        const { body, headers } = binaryInfer(x);
        try {
          const res = await fetch(`http://127.0.0.1:${port}/v2/models/fashion-binary/infer`, {
            method: 'POST',
            body,
            headers,
          });
          await res.arrayBuffer();
          return res.status;
        } catch {
          return 'refused'; // a connection after the listener closed
        }
      };
      const first = Array.from({ length: 32 }, send);
      await new Promise((r) => setTimeout(r, 30));
      child.kill('SIGTERM');
      const later = Array.from({ length: 8 }, send);
      const statuses = await Promise.all([...first, ...later]);
      expect(await exited, stderr).toBe(0);
      expect(stderr).toMatch(/SIGTERM, shutting down/);
      expect(statuses.filter((c) => c === 200).length).toBeGreaterThan(0);
      expect(
        statuses.every((c) => c === 200 || c === 503 || c === 'refused'),
        String(statuses),
      ).toBe(true);
    },
    timeLimit(60_000),
  );
});
