/** `lowbit bench`: median latency and throughput per batch size, optionally against onnxruntime-node. */
import { readFileSync } from 'node:fs';
import { measure, random, type Impl } from '../../timing.js';
import { inputFile, intOption, MAX_THREADS, numberOption, type Command } from '../args.js';
import { engine, loadOrt, ortSession, perSample, withModel } from '../evaluate.js';
import { formatInt, formatTable, plural } from '../format.js';

const USAGE = `usage: lowbit bench model.lowbit [options]

Median latency and throughput per batch size (warm-up, then interleaved timed rounds).
  --vs-onnx FILE      also time this ONNX model in onnxruntime-node, and the speed ratio
  --batch LIST        batch sizes, comma separated (default 1,64)
  --threads N         threads of lowbit and of onnxruntime's intra-op pool (default: all)
  --seconds S         measuring time per batch size (default 3)
`;

export const bench: Command = {
  usage: USAGE,
  options: {
    'vs-onnx': { type: 'string' },
    batch: { type: 'string' },
    threads: { type: 'string' },
    seconds: { type: 'string' },
  },
  file: 'a .lowbit model file',
  async run(args, io) {
    const batches = (args.string('batch') ?? '1,64').split(',').map((b) => intOption(b.trim(), '--batch', 1, 'bench'));
    const threadsText = args.string('threads');
    const threadCount =
      threadsText === undefined ? undefined : intOption(threadsText, '--threads', 1, 'bench', 1, MAX_THREADS);
    const seconds = numberOption(args.string('seconds'), '--seconds', 3, 'bench');
    const onnxPath = args.string('vs-onnx');
    if (onnxPath !== undefined) inputFile(onnxPath, 'an ONNX model file', 'bench');

    const { isa, setThreads, threads } = await engine();
    if (threadCount !== undefined) setThreads(threadCount);
    const modelPath = args.positionals[0];
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
