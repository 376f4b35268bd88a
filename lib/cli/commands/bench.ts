/**
 * `lowbit bench`: median latency and throughput per batch size, optionally against onnxruntime-node;
 * with --profile, the time of each node and of each operator instead.
 */
import { readFileSync } from 'node:fs';
import type { Model } from '../../model/model.js';
import { MAX_PROFILE_RUNS, type ModelProfile } from '../../model/profile.js';
import { measure, random, type Impl } from '../../timing.js';
import { choice, inputFile, intOption, MAX_THREADS, numberOption, UsageError, type Command } from '../args.js';
import { engine, loadOrt, ortSession, perSample, withModel } from '../evaluate.js';
import { formatInt, formatPercent, formatTable, plural } from '../format.js';

const USAGE = `usage: lowbit bench model.lowbit [options]

Median latency and throughput per batch size (warm-up, then interleaved timed rounds).
  --vs-onnx FILE      also time this ONNX model in onnxruntime-node, and the speed ratio
  --batch LIST        batch sizes, comma separated (default 1,64; with --profile 1)
  --threads N         threads of lowbit and of onnxruntime's intra-op pool (default: all)
  --seconds S         measuring time per batch size (default 3)

  --profile           time each node instead (one warm-up run, then --runs timed runs): its
                      op, kind, median time, share of the whole run, MACs per sample and
                      Gop/s (1-bit ones in binary layers); then the same per operator, most
                      time first
  --runs N            timed runs of --profile (default 10)
  --sort ORDER        --profile's node table in graph order (default) or by time
`;

export const bench: Command = {
  usage: USAGE,
  options: {
    'vs-onnx': { type: 'string' },
    batch: { type: 'string' },
    threads: { type: 'string' },
    seconds: { type: 'string' },
    profile: { type: 'boolean' },
    runs: { type: 'string' },
    sort: { type: 'string' },
  },
  file: 'a .lowbit model file',
  async run(args, io) {
    const profile = args.flag('profile');
    for (const flag of profile ? ['vs-onnx', 'seconds'] : ['runs', 'sort'])
      if (args.string(flag) !== undefined)
        throw new UsageError(`--${flag}: ${profile ? 'cannot be combined with' : 'applies to'} --profile`, 'bench');
    const batches = (args.string('batch') ?? (profile ? '1' : '1,64'))
      .split(',')
      .map((b) => intOption(b.trim(), '--batch', 1, 'bench'));
    const threadsText = args.string('threads');
    const threadCount =
      threadsText === undefined ? undefined : intOption(threadsText, '--threads', 1, 'bench', 1, MAX_THREADS);
    const seconds = numberOption(args.string('seconds'), '--seconds', 3, 'bench');
    const onnxPath = args.string('vs-onnx');
    if (onnxPath !== undefined) inputFile(onnxPath, 'an ONNX model file', 'bench');
    const runs = intOption(args.string('runs'), '--runs', 10, 'bench', 1, MAX_PROFILE_RUNS);
    const byTime = choice(args.string('sort'), '--sort', ['order', 'time'], 'bench') === 'time';

    const { isa, setThreads, threads } = await engine();
    if (threadCount !== undefined) setThreads(threadCount);
    const modelPath = args.positionals[0];
    if (profile)
      return withModel(modelPath, async (model) => {
        io.stdout.write(
          `lowbit bench --profile ${modelPath}: isa ${isa()}, ${plural(threads(), 'thread')}, ` +
            `medians of ${plural(runs, 'timed run')} after 1 warm-up\n`,
        );
        for (const batch of batches) io.stdout.write('\n' + formatProfile(profileBatch(model, batch, runs), byTime));
        return 0;
      });
    return withModel(modelPath, async (model) => {
      const size = perSample(model);
      const sampleShape = model.inputs[0].sampleShape;
      const ort = onnxPath === undefined ? undefined : await loadOrt();
      const session =
        ort && onnxPath !== undefined ? await ortSession(ort, readFileSync(onnxPath), threads()) : undefined;
      try {
        io.stdout.write(
          `lowbit bench ${modelPath}: isa ${isa()}, ${plural(threads(), 'thread')}` +
            (session ? `; onnxruntime-node ${onnxPath} with ${plural(threads(), 'intra-op thread')}` : '') +
            '\n\n',
        );
        const rows: string[][] = [];
        const rnd = random(1);
        for (const batch of batches) {
          const x = Float32Array.from({ length: batch * size }, rnd);
          const impls: Impl[] = [{ name: 'lowbit', run: () => model.runSync(x) }];
          if (ort && session) {
            const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', x, [batch, ...sampleShape]) };
            impls.push({ name: 'onnxruntime', run: () => session.run(feeds), async: true });
          }
          io.stderr.write(`timing batch ${batch} ...\n`);
          const rounds = 5;
          const timings = await measure(impls, {
            warmupMs: (seconds * 1000 * 0.2) / impls.length,
            rounds,
            roundMs: (seconds * 1000 * 0.8) / (rounds * impls.length),
          });
          const lowbit = timings.get('lowbit')!;
          const reference = timings.get('onnxruntime');
          for (const impl of impls) {
            const t = timings.get(impl.name)!;
            const row = [
              String(batch),
              impl.name,
              t.median.toFixed(3),
              t.min.toFixed(3),
              formatInt((1000 * batch) / t.median),
              String(t.runs),
            ];
            if (reference)
              row.push(impl.name === 'lowbit' ? `${(reference.median / lowbit.median).toFixed(2)}x` : '1.00x');
            rows.push(row);
          }
        }
        const header = ['batch', 'impl', 'median ms', 'min ms', 'images/s', 'runs'];
        if (session) header.push('speed vs ORT');
        io.stdout.write(formatTable(header, rows, ['right', 'left']));
        return 0;
      } finally {
        await session?.release();
      }
    });
  },
};

/** A profile of `batch` random samples. */
function profileBatch(model: Model, batch: number, runs: number): ModelProfile {
  const rnd = random(1);
  return model.profile(Float32Array.from({ length: batch * perSample(model) }, rnd), { runs });
}

const gops = (g: number | null) => (g === null ? '' : g.toFixed(2));
// Four decimals below a millisecond: a small node's microseconds.
const ms = (t: number) => t.toFixed(t < 1 ? 4 : 3);
// The kind only where it says more than the op (weighted layers).
const kind = (k: { op: string; kind: string }) => (k.kind === k.op ? '' : k.kind);
const macs = (m: number | null) => (m === null ? '' : formatInt(m));

/** A profile's node table (graph order, or most time first), its total and its per-operator summary. */
function formatProfile(p: ModelProfile, byTime = false): string {
  const nodes = byTime ? [...p.nodes].sort((a, b) => b.medianMs - a.medianMs) : p.nodes;
  const nodeMs = p.nodes.reduce((s, n) => s + n.medianMs, 0);
  let text = `batch ${p.batch}: median run ${ms(p.medianMs)} ms (mean ${ms(p.meanMs)} ms)\n\n`;
  text += formatTable(
    ['node', 'op', 'kind', 'median ms', 'mean ms', 'share', 'MACs/sample', 'Gop/s'],
    nodes.map((n) => [
      n.name,
      n.op,
      kind(n),
      ms(n.medianMs),
      ms(n.meanMs),
      formatPercent(n.share, 1),
      macs(n.macs),
      gops(n.gops),
    ]),
    ['left', 'left', 'left'],
  );
  text += `nodes: ${ms(nodeMs)} ms of the ${ms(p.medianMs)} ms run (${formatPercent(nodeMs / p.medianMs, 1)})\n\n`;
  text += formatTable(
    ['op', 'kind', 'count', 'ms', 'share', 'MACs/sample', 'Gop/s'],
    p.ops.map((o) => [o.op, kind(o), String(o.count), ms(o.ms), formatPercent(o.share, 1), macs(o.macs), gops(o.gops)]),
    ['left', 'left'],
  );
  return text;
}
