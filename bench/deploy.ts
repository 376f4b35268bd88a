/**
 * `deploy` suite: whole binary networks as their authors' public PyTorch code writes them
 * (tools/bnn_zoo.py: Bi-Real Net-18, ReActNet-18, BiBench ResNet-18/34, CIFAR ResNet-20, VGG-Small;
 * random weights, measured batch-norm statistics), converted by lowbit from the straight-through
 * export and timed against onnxruntime-node fp32 on the same weights exported with a plain sign
 * (onnxruntime's best case); and float networks as torchvision defines them (tools/int_zoo.py:
 * ResNet-18 and MobileNetV2 at 224x224, random weights, measured batch-norm statistics) converted to
 * W8A8, W4A8 and mixed, against onnxruntime-node fp32 on the same export. Batch 1 with 1 and 2
 * threads, batch 16 with 2 threads. LOWBIT_DEPLOY_NETS=a,b runs a subset (names as in the table).
 *
 * The exports are made once into a cache folder under os.tmpdir() named by a hash of the script,
 * and reused; conversions are cached beside them under a hash of the ONNX file, the options and
 * lowbit's code (dist/lib and the addon), so a run after any change to the converter converts anew.
 * A network that does not convert prints its error and the suite goes on.
 */
import * as ort from 'onnxruntime-node';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  convertOnnxWithReport,
  exportOnnxQdq,
  isa,
  loadModel,
  setThreads,
  threads,
  type ConversionReport,
  type ConvertOptions,
  type Model,
} from '../lib/index.js';
import {
  measure,
  ms,
  random,
  ratio,
  round,
  tablePrinter,
  type Impl,
  type Row,
  type Suite,
  type SuiteOptions,
  type TimingPlan,
} from './harness.js';
import { ortSession } from './onnx-models.js';

const PYTHON = '/usr/bin/python3';
const here = dirname(fileURLToPath(import.meta.url)); // dist/bench
const BATCH = 16;

/** One conversion timed for each network of a zoo; `options` sees the sizes of the modes before it. */
interface Mode {
  name: string;
  options: (bytes: ReadonlyMap<string, number>) => ConvertOptions;
}

/** The networks of one export script of tools/, and how lowbit converts them. */
interface Zoo {
  /** the script, then the files its hash covers (the script and what it imports) */
  scripts: string[];
  /** what the cache folder is called */
  cache: string;
  /** table name -> the script's network name; small networks first: their rows come in seconds */
  nets: [string, string][];
  args: string[];
  modes: readonly Mode[];
  /** what onnxruntime runs: the plain-sign twin (binary networks) or the export itself */
  ortFile: (name: string) => string;
  /** also time onnxruntime int8 on each converted model's ONNX QDQ twin (`lowbit export --onnx-qdq`):
   *  the same quantization, run by onnxruntime's QLinearConv / QGemm kernels */
  int8Peer: boolean;
}

const BNN_ZOO: Zoo = {
  scripts: ['bnn_zoo.py'],
  cache: 'lowbit-bnn-zoo',
  nets: ['resnet20', 'vggsmall', 'bireal18', 'reactnet18', 'resnet18', 'resnet34'].map((n) => [n, n]),
  args: ['--batch-norm-stats'],
  modes: [
    { name: 'int8 boundary', options: () => ({ floatLayers: 'none' }) },
    { name: 'float boundary', options: () => ({ floatLayers: 'boundary' }) },
  ],
  ortFile: (name) => `${name}.plain.onnx`,
  int8Peer: false,
};

// Random-weight networks have no margin between their logits, and 17 blocks of per-tensor 8-bit
// activations leave MobileNetV2 with more output error than the converter's default check accepts
// (it throws above 0.5 relative RMS for 8-bit layers): the notes print the error measured.
const ACCEPT: ConvertOptions = { maxOutputError: 10 };
const INT_ZOO: Zoo = {
  scripts: ['int_zoo.py', 'bnn_zoo.py'],
  cache: 'lowbit-int-zoo',
  nets: [
    ['mobilenetv2', 'mobilenetv2'],
    ['tv-resnet18', 'resnet18'],
  ],
  args: [],
  modes: [
    { name: 'W8A8', options: () => ({ ...ACCEPT, bits: 8 }) },
    { name: 'W4A8', options: () => ({ ...ACCEPT, bits: 4 }) },
    {
      // a size budget halfway between the W8A8 and W4A8 files
      name: 'mixed',
      options: (bytes) => ({
        ...ACCEPT,
        bits: 'mixed',
        sizeBudget: Math.round(((bytes.get('W8A8') ?? 0) + (bytes.get('W4A8') ?? 0)) / 2),
      }),
    },
  ],
  ortFile: (name) => `${name}.onnx`,
  int8Peer: true,
};

const QUICK: TimingPlan = { warmupMs: 0, rounds: 3, roundMs: 100 };
const FULL: TimingPlan = { warmupMs: 500, rounds: 6, roundMs: 400 };

/**
 * What tools/bnn_zoo.py writes beside each export (NAME.json); tools/int_zoo.py writes `macs` for
 * the float MACs and has no binary ones.
 */
interface ZooInfo {
  name: string;
  input: number[];
  classes: number;
  binary_macs?: number;
  float_macs?: number;
  macs?: number;
  onnx: string;
}

const sha256 = (...parts: (string | Uint8Array)[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

/** The exports of `names` in the zoo's cache folder, made by its script for those missing. */
function exportZoo(zoo: Zoo, names: readonly string[]): { dir: string; infos: Map<string, ZooInfo> } {
  const scripts = zoo.scripts.map((f) => join(here, '../../tools', f));
  const dir = join(tmpdir(), `${zoo.cache}-${sha256(...scripts.map((f) => readFileSync(f))).slice(0, 12)}`);
  const complete = (name: string) =>
    [`${name}.json`, `${name}.onnx`, zoo.ortFile(name)].every((file) => existsSync(join(dir, file)));
  const missing = names.filter((name) => !complete(name));
  const script = `tools/${zoo.scripts[0]}`;
  if (missing.length > 0) {
    console.log(`exporting ${missing.join(', ')} with ${PYTHON} ${script} into ${dir} ...`);
    // Into a fresh folder renamed at the end, so an interrupted export is never reused.
    const partial = `${dir}.partial-${process.pid}`;
    const args = [scripts[0], '--out', partial, '--nets', missing.join(','), ...zoo.args];
    const r = spawnSync(PYTHON, args, { encoding: 'utf8', stdio: ['ignore', 'inherit', 'pipe'] });
    if (r.status !== 0)
      throw new Error(
        `${PYTHON} ${script} failed (${r.error?.message ?? `exit ${r.status}`}): ` +
          `${r.stderr?.trim().split('\n').slice(-3).join(' ')}; it needs Debian's python3-torch`,
      );
    mkdirSync(dir, { recursive: true });
    for (const file of readdirSync(partial)) renameSync(join(partial, file), join(dir, file));
    rmSync(partial, { recursive: true, force: true });
  }
  const infos = new Map(
    names.map((name) => [name, JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as ZooInfo]),
  );
  return { dir, infos };
}

/** A hash of lowbit's compiled library and addon: a cached conversion is reused only by the same code. */
function lowbitCodeHash(): string {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.js')) files.push(path);
    }
  };
  walk(join(here, '../lib'));
  const addon = join(here, '../../build/Release/lowbit.node');
  if (existsSync(addon)) files.push(addon);
  return sha256(...files.map((f) => readFileSync(f)));
}

/** Seeded standard normal values (Box-Muller): inputs shaped like normalized images. */
function normal(n: number, seed: number): Float32Array {
  const rnd = random(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rnd()));
    const t = 2 * Math.PI * rnd();
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

interface Converted {
  bytes: Uint8Array;
  report: ConversionReport;
  cached: boolean;
  seconds: number;
}

async function convertCached(
  dir: string,
  info: ZooInfo,
  options: ConvertOptions,
  samples: number,
  codeHash: string,
): Promise<Converted> {
  const onnx = readFileSync(join(dir, info.onnx));
  const key = sha256(onnx, JSON.stringify(options), `calibration ${samples} normal seed 1`, codeHash).slice(0, 16);
  const file = join(dir, `${info.name}.${key}.lowbit`);
  if (existsSync(file) && existsSync(`${file}.report.json`))
    return {
      bytes: readFileSync(file),
      report: JSON.parse(readFileSync(`${file}.report.json`, 'utf8')) as ConversionReport,
      cached: true,
      seconds: 0,
    };
  const perSample = info.input.reduce((a, b) => a * b, 1);
  const start = performance.now();
  const { bytes, report } = await convertOnnxWithReport(onnx, {
    ...options,
    calibration: normal(samples * perSample, 1),
  });
  writeFileSync(`${file}.report.json`, JSON.stringify(report));
  writeFileSync(file, bytes);
  return { bytes, report, cached: false, seconds: (performance.now() - start) / 1000 };
}

/** Relative RMS difference and arg-max agreement of lowbit's logits against onnxruntime's. */
function agreement(got: Float32Array, want: Float32Array, classes: number): { rms: number; top1: number } {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; ++i) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  const argmax = (a: Float32Array, s: number) => {
    let best = s * classes;
    for (let i = best; i < (s + 1) * classes; ++i) if (a[i] > a[best]) best = i;
    return best;
  };
  const n = want.length / classes;
  let same = 0;
  for (let s = 0; s < n; ++s) same += argmax(got, s) === argmax(want, s) ? 1 : 0;
  return { rms: Math.sqrt(num / Math.max(den, 1e-30)), top1: same / n };
}

const kinds = (report: ConversionReport) => {
  const count = new Map<string, number>();
  for (const layer of report.layers) count.set(layer.kind, (count.get(layer.kind) ?? 0) + 1);
  return [...count].map(([kind, n]) => `${n} ${kind}`).join(', ');
};

async function run({ quick }: SuiteOptions): Promise<Row[]> {
  const plan = quick ? QUICK : FULL;
  const savedThreads = threads();
  const load = () => loadavg()[0].toFixed(2);
  console.log(
    `deploy: lowbit (isa ${isa()}) vs onnxruntime-node ${ort.env.versions.node ?? ort.env.versions.common} fp32 on whole binary networks` +
      ` (tools/bnn_zoo.py) and integer conversions of float ones (tools/int_zoo.py), ${cpus()[0]?.model ?? 'unknown CPU'} x ${cpus().length},` +
      ` node ${process.version}`,
  );
  console.log(`load average (1 min) before: ${load()}; anything else running on these cores skews the results`);

  const only = process.env.LOWBIT_DEPLOY_NETS?.split(',').filter((n) => n !== '');
  const zoos: { zoo: Zoo; dir: string; infos: Map<string, ZooInfo>; nets: [string, string][] }[] = [];
  for (const zoo of [BNN_ZOO, INT_ZOO]) {
    const nets = zoo.nets.filter(([label]) => !only || only.includes(label));
    if (nets.length === 0) continue;
    try {
      zoos.push({ zoo, nets, ...exportZoo(zoo, [...new Set(nets.map(([, name]) => name))]) });
    } catch (error) {
      console.log(`deploy: no networks of tools/${zoo.scripts[0]}: ${(error as Error).message}`);
    }
  }
  if (zoos.length === 0) return [];
  const codeHash = lowbitCodeHash();
  const samples = quick ? 1 : 4;
  console.log(
    `lowbit converts the export (NAME.onnx: for binary networks the straight-through form) calibrated on ${samples}` +
      ` random normal image(s); onnxruntime runs the same export, or for binary networks the plain-sign one (NAME.plain.onnx). Timing: medians of ${plan.rounds} interleaved rounds of` +
      ` ${plan.roundMs} ms per impl after ${plan.warmupMs} ms (and at least 3 calls) of warm-up (${quick ? 'quick' : 'full'} run).` +
      ` "vs ort" = onnxruntime fp32 median / lowbit median: above 1, lowbit is faster. "int8": onnxruntime on the` +
      ` converted model's ONNX QDQ twin (exportOnnxQdq: the same scales and zero points, run as QLinearConv / QGemm).\n`,
  );
  const row = tablePrinter([
    ['network', 11],
    ['mode', 13],
    ['bin GMAC', 0],
    ['fp MMAC', 0],
    ['.lowbit MB', 0],
    ['ONNX MB', 0],
    ['b1 1T ms', 0],
    ['ort', 6],
    ['vs ort', 0],
    ['int8', 6],
    ['vs int8', 0],
    ['b1 2T ms', 0],
    ['ort', 6],
    ['vs ort', 0],
    ['int8', 6],
    ['vs int8', 0],
    ['2T/1T', 0],
    [`b${BATCH} 2T img/s`, 0],
    ['ort', 6],
    ['vs ort', 0],
    ['int8', 6],
    ['vs int8', 0],
  ]);
  const rows: Row[] = [];
  const notes: string[] = [];
  const failures: string[] = [];
  try {
    for (const [{ zoo, dir, infos }, [label, name]] of zoos.flatMap((z) => z.nets.map((n) => [z, n] as const))) {
      const info = infos.get(name)!;
      const perSample = info.input.reduce((a, b) => a * b, 1);
      const binaryMacs = info.binary_macs ?? 0;
      const floatMacs = info.float_macs ?? info.macs ?? 0;
      const totalMacs = binaryMacs + floatMacs;
      const x1 = normal(perSample, 2);
      const x16 = normal(BATCH * perSample, 3);
      const plain = readFileSync(join(dir, zoo.ortFile(name)));
      const sizes = new Map<string, number>();
      const sessions = new Map<number, ort.InferenceSession>();
      for (const n of [1, 2]) sessions.set(n, await ortSession(plain, n, false));
      const ortRun = (session: ort.InferenceSession, x: Float32Array, batch: number) => {
        const feeds = { input: new ort.Tensor('float32', x, [batch, ...info.input]) };
        const fetches = {
          logits: new ort.Tensor('float32', new Float32Array(batch * info.classes), [batch, info.classes]),
        };
        return () => session.run(feeds, fetches);
      };
      try {
        for (const mode of zoo.modes) {
          let converted: Converted;
          try {
            converted = await convertCached(dir, info, mode.options(sizes), samples, codeHash);
            sizes.set(mode.name, converted.bytes.length);
          } catch (error) {
            failures.push(`${label} (${mode.name}): not converted: ${(error as Error).message}`);
            console.log(`| ${label} | ${mode.name} | not converted: ${(error as Error).message} |`);
            continue;
          }
          const model: Model = loadModel(converted.bytes);
          // onnxruntime int8 on the model's QDQ twin, one session per thread count
          const int8 = new Map<number, ort.InferenceSession>();
          try {
            if (zoo.int8Peer) {
              const twin = exportOnnxQdq(converted.bytes);
              for (const n of [1, 2]) int8.set(n, await ortSession(twin, n, false));
            }
            setThreads(2);
            const want = (await sessions.get(2)!.run({ input: new ort.Tensor('float32', x16, [BATCH, ...info.input]) }))
              .logits.data as Float32Array;
            const check = agreement(model.runSync(x16).logits.data as Float32Array, want, info.classes);
            notes.push(
              `${label} (${mode.name}): ${kinds(converted.report)}; against onnxruntime on ${BATCH} images: relative RMS ` +
                `${check.rms.toFixed(3)}, top-1 agreement ${(check.top1 * 100).toFixed(0)}%; ` +
                (converted.cached ? 'conversion cached' : `converted in ${converted.seconds.toFixed(1)} s`),
            );
            const lowbitRun = (n: number, x: Float32Array): Impl => ({
              name: `lowbit ${n}`,
              run: () => model.runSync(x),
              before: () => setThreads(n),
            });
            // One interleaved measurement per batch size over every thread count, so that 2T/1T
            // compares rounds taken side by side (this VM's speed drifts by 1.5x between minutes).
            const time = async (counts: number[], x: Float32Array, batch: number) => {
              const impls = counts.flatMap((n): Impl[] => [
                lowbitRun(n, x),
                { name: `ort-fp32 ${n}`, run: ortRun(sessions.get(n)!, x, batch), async: true },
                ...(int8.has(n) ? [{ name: `ort-int8 ${n}`, run: ortRun(int8.get(n)!, x, batch), async: true }] : []),
              ]);
              const t = await measure(impls, plan);
              const workload = `${label}${zoo.modes.length > 1 ? `-${mode.name.replace(/ /g, '-')}` : ''}-b${batch}`;
              const medians = new Map<string, number>();
              for (const [key, { median, min, runs }] of t) {
                const [impl, n] = key.split(' ');
                medians.set(key, median);
                rows.push({
                  workload,
                  impl,
                  threads: Number(n),
                  median_ms: round(median, 4),
                  gops: round((2 * totalMacs * batch) / (median * 1e6), 2),
                  min_ms: round(min, 4),
                  runs,
                });
              }
              return (n: number) => ({
                lowbit: medians.get(`lowbit ${n}`)!,
                ort: medians.get(`ort-fp32 ${n}`)!,
                int8: medians.get(`ort-int8 ${n}`),
              });
            };
            const single = await time([1, 2], x1, 1);
            const [one, two] = [single(1), single(2)];
            const batched = (await time([2], x16, BATCH))(2);
            const perSecond = (median: number) => ((BATCH * 1000) / median).toFixed(0);
            // the int8 peer's time and lowbit's speed against it, or dashes without a twin
            const peer = (t: { lowbit: number; int8?: number }, show: (v: number) => string) =>
              t.int8 === undefined ? ['-', '-'] : [show(t.int8), ratio(t.int8, t.lowbit)];
            row([
              label,
              mode.name,
              (binaryMacs / 1e9).toFixed(3),
              (floatMacs / 1e6).toFixed(1),
              (converted.bytes.length / 1e6).toFixed(2),
              (plain.length / 1e6).toFixed(1),
              ms(one.lowbit),
              ms(one.ort),
              ratio(one.ort, one.lowbit),
              ...peer(one, ms),
              ms(two.lowbit),
              ms(two.ort),
              ratio(two.ort, two.lowbit),
              ...peer(two, ms),
              ratio(one.lowbit, two.lowbit),
              perSecond(batched.lowbit),
              perSecond(batched.ort),
              ratio(batched.ort, batched.lowbit),
              ...peer(batched, perSecond),
            ]);
          } finally {
            model.dispose();
            for (const session of int8.values()) await session.release();
          }
        }
      } finally {
        for (const session of sessions.values()) await session.release();
      }
    }
  } finally {
    setThreads(savedThreads);
  }
  console.log(`\nload average (1 min) after: ${load()}`);
  console.log(
    'bin GMAC / fp MMAC: binary and float multiply-accumulates per image; ONNX MB: the float export onnxruntime runs;' +
      ` 2T/1T: lowbit's batch-1 speed-up from the second thread; exports and conversions cached in` +
      ` ${zoos.map((z) => z.dir).join(', ')}`,
  );
  for (const note of notes) console.log(note);
  for (const failure of failures) console.log(failure);
  return rows;
}

export const suite: Suite = { run };
