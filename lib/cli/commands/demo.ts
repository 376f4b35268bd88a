/**
 * `lowbit demo` (also `npm start`): the shipped Fashion-MNIST models side by side.
 * The float model `models/fashion-float.onnx` runs in onnxruntime-node as the reference; every
 * `.lowbit` model present (binary, binary with MST schedules, W8A8, W4A8, mixed) runs in lowbit.
 * Each is evaluated on the shipped 1000-image test slice (or with --full on the 10000 images of
 * Debian's dataset-fashion-mnist), then timed at batch 1 (median latency) and batch 64 (throughput)
 * in interleaved rounds, and one table compares accuracy, size and speed.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFashionMnist, readLbds, toInput, type Dataset } from '../../data.js';
import type { Model } from '../../model/model.js';
import { measure, type Impl } from '../../timing.js';
import { intOption, MAX_THREADS, type Command } from '../args.js';
import {
  engine,
  evaluateAccuracy,
  loadOrt,
  lowbitPredict,
  ortPredict,
  ortSession,
  type Ort,
  type OrtSession,
  type Predict,
} from '../evaluate.js';
import { formatInt, formatPercent, formatTable, modelKind, plural, Progress, type Io } from '../format.js';

const USAGE = `usage: lowbit demo [--full] [--threads N] [--models DIR]   (also: npm start [-- --full] ...)

The Fashion-MNIST example: the shipped .lowbit models against the float ONNX model in
onnxruntime-node: accuracy, size, latency at batch 1 and throughput at batch 64.
  --full              the 10000 test images of Debian's dataset-fashion-mnist instead of the
                      shipped 1000-image slice
  --threads N         threads of lowbit and of onnxruntime's intra-op pool (default: all)
  --models DIR        where the models and the slice are (default: the shipped models/)
`;

/** The .lowbit models the demo looks for, in table order. */
const DEMO_MODELS = ['fashion-binary', 'fashion-binary-mst', 'fashion-w8a8', 'fashion-w4a8', 'fashion-mixed'] as const;
const FLOAT_MODEL = 'fashion-float.onnx';
const SLICE = 'fashion-mnist-test-1000.lbds';

// Timing: every contender is timed in the same interleaved rounds (lib/timing.ts). With the float
// reference and five models this is about 8 s at batch 1 and 9 s at batch 64.
const PLAN_B1 = { warmupMs: 300, rounds: 5, roundMs: 200 };
const PLAN_B64 = { warmupMs: 300, rounds: 5, roundMs: 250 };

/** models/ of the repository or package: three levels up from lib/cli/commands/ (sources) or four (dist/lib/cli/commands/). */
function modelsDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [resolve(here, '../../../models'), resolve(here, '../../../../models')];
  return (
    candidates.find((d) => existsSync(join(d, SLICE)) || existsSync(join(d, FLOAT_MODEL))) ??
    candidates[candidates.length - 1]
  );
}

interface Contender {
  name: string;
  kind: string;
  bytes: number;
  predict: Predict;
  /** a timed call on a prepared batch */
  timed: (batch: number) => Impl;
  model?: Model;
  accuracy?: number;
  b1?: number;
  b64?: number;
}

function lowbitContender(loadModel: (path: string) => Model, name: string, path: string, ds: Dataset): Contender {
  const model = loadModel(path);
  return {
    name,
    kind: modelKind(model.metadata),
    bytes: model.bytes,
    predict: lowbitPredict(model),
    model,
    timed: (batch) => {
      const x = toInput(ds, 0, batch);
      return { name, run: () => model.runSync(x) };
    },
  };
}

function ortContender(ort: Ort, session: OrtSession, path: string, ds: Dataset): Contender {
  const shape = [ds.channels, ds.height, ds.width];
  const name = `${FLOAT_MODEL} (onnxruntime)`;
  return {
    name,
    kind: 'float32',
    bytes: statSync(path).size,
    predict: ortPredict(ort, session, shape),
    timed: (batch) => {
      const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', toInput(ds, 0, batch), [batch, ...shape]) };
      return { name, run: () => session.run(feeds), async: true };
    },
  };
}

function howToCreate(dir: string): string {
  const d = relative(process.cwd(), dir) || '.';
  const calib = `--calib ${join(d, SLICE)}`;
  const convert = (from: string, to: string, extra: string) =>
    `  npx lowbit convert ${join(d, from)} -o ${join(d, `${to}.lowbit`)} ${calib}${extra}\n`;
  return (
    `No .lowbit models in ${d} (looked for ${DEMO_MODELS.map((m) => `${m}.lowbit`).join(', ')}).\n` +
    'Convert the ONNX models, calibrating on the shipped slice:\n' +
    convert(FLOAT_MODEL, 'fashion-w8a8', ' --bits 8') +
    convert(FLOAT_MODEL, 'fashion-w4a8', ' --bits 4') +
    convert(FLOAT_MODEL, 'fashion-mixed', ' --size-budget <bytes, e.g. 60k>') +
    convert('fashion-binary.onnx', 'fashion-binary', '') +
    convert('fashion-binary-mst.onnx', 'fashion-binary-mst', ' --mst') +
    '(the binary ONNX models come from /usr/bin/python3 tools/train_fashion.py --model binary | binary-mst;\n' +
    ' inside the lowbit repository `npm run lowbit -- <command>` runs the same command line as npx lowbit)\n'
  );
}

/** The demo on the models in `dir`; returns the exit code (1 when there are none). */
async function runDemo(full: boolean, dir: string, io: Io): Promise<number> {
  const started = performance.now();
  const present = DEMO_MODELS.filter((m) => existsSync(join(dir, `${m}.lowbit`)));
  if (present.length === 0) {
    io.stderr.write(howToCreate(dir));
    return 1;
  }
  const { loadModel, isa, threads } = await engine();

  let ds: Dataset;
  let dataName: string;
  if (full) {
    try {
      ds = readFashionMnist();
    } catch (error) {
      io.stderr.write(`--full: ${(error as Error).message}\n`);
      return 1;
    }
    dataName = `the Fashion-MNIST test set (${ds.count} images, Debian's dataset-fashion-mnist)`;
  } else {
    ds = readLbds(join(dir, SLICE));
    dataName = `the shipped slice ${SLICE} (the first ${ds.count} test images)`;
  }

  const contenders: Contender[] = [];
  let session: OrtSession | undefined;
  try {
    const floatPath = join(dir, FLOAT_MODEL);
    let reference: Contender | undefined;
    if (existsSync(floatPath)) {
      try {
        const ort = await loadOrt();
        session = await ortSession(ort, readFileSync(floatPath), threads());
        reference = ortContender(ort, session, floatPath, ds);
        contenders.push(reference);
      } catch (error) {
        io.stderr.write(`note: no float reference: ${(error as Error).message}\n`);
      }
    } else {
      io.stderr.write(`note: no float reference: ${floatPath} not found\n`);
    }
    for (const m of present) contenders.push(lowbitContender(loadModel, `${m}.lowbit`, join(dir, `${m}.lowbit`), ds));

    const n = threads();
    io.stdout.write(
      `lowbit Fashion-MNIST demo: isa ${isa()}, ${plural(n, 'thread')}` +
        (session ? `, reference onnxruntime-node with ${plural(n, 'intra-op thread')}` : '') +
        `\nevaluated on ${dataName}\n\n`,
    );

    for (const c of contenders) {
      const bar = new Progress(io.stderr, `accuracy ${c.name}`, ds.count, false);
      const r = await evaluateAccuracy(c.predict, ds, { batch: 64, progress: (done) => bar.update(done) });
      bar.finish();
      c.accuracy = r.correct / r.total;
    }

    for (const [batch, plan] of [
      [1, PLAN_B1],
      [64, PLAN_B64],
    ] as const) {
      if (batch > ds.count) continue;
      io.stderr.write(`timing batch ${batch} ...\n`);
      const timings = await measure(
        contenders.map((c) => c.timed(batch)),
        plan,
      );
      contenders.forEach((c) => {
        const ms = timings.get(c.name)!.median;
        if (batch === 1) c.b1 = ms;
        else c.b64 = (1000 * batch) / ms;
      });
    }

    const ratio = (v: number | undefined, ref: number | undefined, invert: boolean) =>
      v === undefined || ref === undefined ? '-' : `${(invert ? ref / v : v / ref).toFixed(2)}x`;
    const rows = contenders.map((c) => [
      c.name,
      c.kind,
      formatPercent(c.accuracy!),
      formatInt(c.bytes),
      c.b1 === undefined ? '-' : c.b1.toFixed(3),
      c.b64 === undefined ? '-' : formatInt(c.b64),
      ratio(c.b1, reference?.b1, true),
      ratio(c.b64, reference?.b64, false),
    ]);
    io.stdout.write(
      formatTable(
        ['model', 'kind', 'accuracy', 'bytes', 'batch 1 ms', 'batch 64 img/s', 'speed-up b1', 'speed-up b64'],
        rows,
        ['left', 'left'],
      ),
    );
    io.stdout.write(
      (reference
        ? `\nspeed-up: against ${FLOAT_MODEL} in onnxruntime-node; batch 1 from median latencies, batch 64 from throughputs.\n`
        : '\n(no float reference: speed-ups need models/fashion-float.onnx and onnxruntime-node)\n') +
        "kind: from the converter's report in each model's metadata (`npx lowbit info <model>` lists its layers).\n" +
        `total ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
    );
    return 0;
  } finally {
    for (const c of contenders) c.model?.dispose();
    await session?.release();
  }
}

export const demo: Command = {
  usage: USAGE,
  options: { full: { type: 'boolean' }, threads: { type: 'string' }, models: { type: 'string' } },
  async run(args, io) {
    const threadsText = args.string('threads');
    const threads =
      threadsText === undefined ? undefined : intOption(threadsText, '--threads', 1, 'demo', 1, MAX_THREADS);
    if (threads !== undefined) (await engine()).setThreads(threads);
    return await runDemo(args.flag('full'), args.string('models') ?? modelsDir(), io);
  },
};
