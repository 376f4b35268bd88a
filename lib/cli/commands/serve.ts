/** `lowbit serve`: models behind the Open Inference Protocol (KServe v2) over HTTP (lib/serve/). */
import { basename } from 'node:path';
import type { Model } from '../../model/model.js';
import type { AccessLogEntry } from '../../serve/server.js';
import { intOption, MAX_THREADS, UsageError, type Command } from '../args.js';
import { engine } from '../evaluate.js';

const USAGE = `usage: lowbit serve model.lowbit [more.lowbit ...] [options]

Serves the models over HTTP with the Open Inference Protocol (KServe v2), each under its file
name without .lowbit: GET /v2/health/live, /v2/health/ready, /v2/models/NAME (metadata),
POST /v2/models/NAME/infer (JSON tensors or the binary tensor extension), GET /metrics
(Prometheus). SIGTERM or SIGINT stops accepting, finishes what is queued, and exits 0.
  --port N            the port (default 8080; 0 picks a free one)
  --host H            the address to listen on (default 127.0.0.1)
  --threads N         threads per model run (default: all cores)
  --max-batch N       samples stacked into one run (default 64; 1 turns batching off)
  --max-delay-ms MS   how long a request waits for others to batch with (default 2)
  --max-queue N       requests waiting per model, beyond which 503 + Retry-After (default 1024)
  --max-body BYTES    the largest request body (default 64m; k, m and g suffixes)
  --max-activation BYTES  activation memory per run: a larger batch runs in chunks (default 256m)
  --max-pooled BYTES  idle activation memory kept per model for the next runs (default 64m)
  --timeout-ms MS     a deadline for requests that set none (default 0: none); 504 when it passes
  --grace-ms MS       how long shutdown waits for queued requests (default 10000)
  --access-log        one JSON line per request on stdout
`;

export const serve: Command = {
  usage: USAGE,
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    threads: { type: 'string' },
    'max-batch': { type: 'string' },
    'max-delay-ms': { type: 'string' },
    'max-queue': { type: 'string' },
    'max-body': { type: 'string' },
    'max-activation': { type: 'string' },
    'max-pooled': { type: 'string' },
    'timeout-ms': { type: 'string' },
    'grace-ms': { type: 'string' },
    'access-log': { type: 'boolean' },
  },
  file: 'a .lowbit model file',
  files: true,
  async run(args, io) {
    const int = (flag: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
      intOption(args.string(flag), `--${flag}`, fallback, 'serve', min, max);
    const port = int('port', 8080, 0, 65535);
    const bytes = (flag: string, fallback: string) => {
      const text = args.string(flag) ?? fallback;
      const m = /^(\d+)([kmg]?)$/i.exec(text);
      if (!m) throw new UsageError(`--${flag}: expected bytes (e.g. 1m, 512k), got '${text}'`, 'serve');
      return Number(m[1]) * 1024 ** ' kmg'.indexOf(m[2].toLowerCase() || ' ');
    };
    const options = {
      maxBatch: int('max-batch', 64, 1),
      maxDelayMs: int('max-delay-ms', 2, 0),
      maxQueue: int('max-queue', 1024, 1),
      maxBodyBytes: bytes('max-body', '64m'),
      timeoutMs: int('timeout-ms', 0, 0),
      log: args.flag('access-log')
        ? (entry: AccessLogEntry) => io.stdout.write(`${JSON.stringify(entry)}\n`)
        : undefined,
    };
    const load = { maxActivationBytes: bytes('max-activation', '256m'), maxPooledBytes: bytes('max-pooled', '64m') };
    const graceMs = int('grace-ms', 10_000, 0);
    const threadCount = args.string('threads') === undefined ? undefined : int('threads', 1, 1, MAX_THREADS);
    const names = args.positionals.map((path) => basename(path).replace(/\.lowbit$/, ''));
    const twice = names.find((name, i) => names.indexOf(name) !== i);
    if (twice !== undefined) throw new UsageError(`two models named '${twice}' (file names must differ)`, 'serve');

    const { loadModel, setThreads, threads } = await engine();
    const { createServer } = await import('../../serve/server.js');
    if (threadCount !== undefined) setThreads(threadCount);
    const models: Record<string, Model> = {};
    args.positionals.forEach((path, i) => (models[names[i]] = loadModel(path, load)));
    const server = createServer({ models, ...options });
    const address = await server.listen(port, args.string('host') ?? '127.0.0.1');
    io.stderr.write(
      `lowbit serve: ${Object.keys(models).join(', ')} on http://${address.address}:${address.port} (${threads()} threads)\n`,
    );
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        io.stderr.write(`lowbit serve: ${signal}, shutting down\n`);
        process.off('SIGTERM', onTerm);
        process.off('SIGINT', onInt);
        resolve();
      };
      const onTerm = () => stop('SIGTERM');
      const onInt = () => stop('SIGINT');
      process.on('SIGTERM', onTerm);
      process.on('SIGINT', onInt);
    });
    await server.close(graceMs);
    for (const model of Object.values(models)) model.dispose();
    return 0;
  },
};
