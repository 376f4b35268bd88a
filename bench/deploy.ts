/**
 * `deploy` suite: whole binary networks as their authors' public PyTorch code writes them
 * (tools/bnn_zoo.py: Bi-Real Net-18, ReActNet-18, BiBench ResNet-18/34, CIFAR ResNet-20, VGG-Small;
 * random weights, measured batch-norm statistics), converted by lowbit from the straight-through
 * export and timed against onnxruntime-node fp32 on the same weights exported with a plain sign
 * (onnxruntime's best case). Batch 1 with 1 and 2 threads, batch 16 with 2 threads.
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
const ZOO_SCRIPT = join(here, '../../tools/bnn_zoo.py');
/** Small networks first: their rows come in seconds. */
const NETS = ['resnet20', 'vggsmall', 'bireal18', 'reactnet18', 'resnet18', 'resnet34'];
const BATCH = 16;

/** The conversions timed for each network; a mode is one line (e.g. a float-boundary option). */
const MODES: readonly { name: string; options: ConvertOptions }[] = [
  { name: 'int8 boundary', options: { floatLayers: 'none' } },
  { name: 'float boundary', options: { floatLayers: 'boundary' } },
];

const QUICK: TimingPlan = { warmupMs: 0, rounds: 3, roundMs: 100 };
const FULL: TimingPlan = { warmupMs: 500, rounds: 6, roundMs: 400 };

/** What tools/bnn_zoo.py writes beside each export (NAME.json). */
interface ZooInfo {
  name: string;
  description: string;
  input: number[];
  classes: number;
  binary_macs: number;
  float_macs: number;
  binary_layers: number;
  float_layers: number;
  onnx: string;
  plain: string;
  onnx_bytes: number;
  plain_bytes: number;
}

const sha256 = (...parts: (string | Uint8Array)[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

/** The exports of `names` in the cache folder, made by the script for those missing. */
function exportZoo(names: readonly string[]): { dir: string; infos: Map<string, ZooInfo> } {
  const dir = join(tmpdir(), `lowbit-bnn-zoo-${sha256(readFileSync(ZOO_SCRIPT)).slice(0, 12)}`);
  const complete = (name: string) =>
    ['.json', '.onnx', '.plain.onnx'].every((suffix) => existsSync(join(dir, name + suffix)));
  const missing = names.filter((name) => !complete(name));
  if (missing.length > 0) {
    console.log(`exporting ${missing.join(', ')} with ${PYTHON} tools/bnn_zoo.py into ${dir} ...`);
    // Into a fresh folder renamed at the end, so an interrupted export is never reused.
    const partial = `${dir}.partial-${process.pid}`;
    const args = [ZOO_SCRIPT, '--out', partial, '--nets', missing.join(','), '--batch-norm-stats'];
    const r = spawnSync(PYTHON, args, { encoding: 'utf8', stdio: ['ignore', 'inherit', 'pipe'] });
    if (r.status !== 0)
      throw new Error(
        `${PYTHON} tools/bnn_zoo.py failed (${r.error?.message ?? `exit ${r.status}`}): ` +
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
      ` (tools/bnn_zoo.py), ${cpus()[0]?.model ?? 'unknown CPU'} x ${cpus().length}, node ${process.version}`,
  );
  console.log(`load average (1 min) before: ${load()}; anything else running on these cores skews the results`);

  let zoo: ReturnType<typeof exportZoo>;
  try {
    zoo = exportZoo(NETS);
  } catch (error) {
    console.log(`deploy: no networks: ${(error as Error).message}`);
    return [];
  }
  const codeHash = lowbitCodeHash();
  const samples = quick ? 1 : 4;
  console.log(
    `lowbit converts the straight-through export (NAME.onnx) calibrated on ${samples} random normal image(s);` +
      ` onnxruntime runs the plain-sign export (NAME.plain.onnx). Timing: medians of ${plan.rounds} interleaved rounds of` +
      ` ${plan.roundMs} ms per impl after ${plan.warmupMs} ms (and at least 3 calls) of warm-up (${quick ? 'quick' : 'full'} run).` +
      ` "vs ort" = onnxruntime median / lowbit median: above 1, lowbit is faster.\n`,
  );
  const row = tablePrinter([
    ['network', 10],
    ['mode', 13],
    ['bin GMAC', 0],
    ['fp MMAC', 0],
    ['.lowbit MB', 0],
    ['ONNX MB', 0],
    ['b1 1T ms', 0],
    ['ort', 6],
    ['vs ort', 0],
    ['b1 2T ms', 0],
    ['ort', 6],
    ['vs ort', 0],
    ['2T/1T', 0],
    [`b${BATCH} 2T img/s`, 0],
    ['ort', 6],
    ['vs ort', 0],
  ]);
  const rows: Row[] = [];
  const notes: string[] = [];
  const failures: string[] = [];
  try {
    for (const name of NETS) {
      const info = zoo.infos.get(name)!;
      const perSample = info.input.reduce((a, b) => a * b, 1);
      const totalMacs = info.binary_macs + info.float_macs;
      const x1 = normal(perSample, 2);
      const x16 = normal(BATCH * perSample, 3);
      const plain = readFileSync(join(zoo.dir, info.plain));
      const sessions = new Map<number, ort.InferenceSession>();
      for (const n of [1, 2]) sessions.set(n, await ortSession(plain, n, false));
      const ortRun = (n: number, x: Float32Array, batch: number) => {
        const feeds = { input: new ort.Tensor('float32', x, [batch, ...info.input]) };
        const fetches = {
          logits: new ort.Tensor('float32', new Float32Array(batch * info.classes), [batch, info.classes]),
        };
        return () => sessions.get(n)!.run(feeds, fetches);
      };
      try {
        for (const mode of MODES) {
          let converted: Converted;
          try {
            converted = await convertCached(zoo.dir, info, mode.options, samples, codeHash);
          } catch (error) {
            failures.push(`${name} (${mode.name}): not converted: ${(error as Error).message}`);
            console.log(`| ${name} | ${mode.name} | not converted: ${(error as Error).message} |`);
            continue;
          }
          const model: Model = loadModel(converted.bytes);
          try {
            setThreads(2);
            const want = (await sessions.get(2)!.run({ input: new ort.Tensor('float32', x16, [BATCH, ...info.input]) }))
              .logits.data as Float32Array;
            const check = agreement(model.runSync(x16).logits.data as Float32Array, want, info.classes);
            notes.push(
              `${name} (${mode.name}): ${kinds(converted.report)}; against onnxruntime on ${BATCH} images: relative RMS ` +
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
                { name: `ort-fp32 ${n}`, run: ortRun(n, x, batch), async: true },
              ]);
              const t = await measure(impls, plan);
              const workload = `${name}${MODES.length > 1 ? `-${mode.name.replace(/ /g, '-')}` : ''}-b${batch}`;
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
              return (n: number) => ({ lowbit: medians.get(`lowbit ${n}`)!, ort: medians.get(`ort-fp32 ${n}`)! });
            };
            const single = await time([1, 2], x1, 1);
            const [one, two] = [single(1), single(2)];
            const batched = (await time([2], x16, BATCH))(2);
            const perSecond = (median: number) => ((BATCH * 1000) / median).toFixed(0);
            row([
              name,
              mode.name,
              (info.binary_macs / 1e9).toFixed(3),
              (info.float_macs / 1e6).toFixed(1),
              (converted.bytes.length / 1e6).toFixed(2),
              (info.plain_bytes / 1e6).toFixed(1),
              ms(one.lowbit),
              ms(one.ort),
              ratio(one.ort, one.lowbit),
              ms(two.lowbit),
              ms(two.ort),
              ratio(two.ort, two.lowbit),
              ratio(one.lowbit, two.lowbit),
              perSecond(batched.lowbit),
              perSecond(batched.ort),
              ratio(batched.ort, batched.lowbit),
            ]);
          } finally {
            model.dispose();
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
    'bin GMAC / fp MMAC: binary and float multiply-accumulates per image (tools/bnn_zoo.py); ONNX MB: the float plain export;' +
      ` 2T/1T: lowbit's batch-1 speed-up from the second thread; exports and conversions cached in ${zoo.dir}`,
  );
  for (const note of notes) console.log(note);
  for (const failure of failures) console.log(failure);
  return rows;
}

export const suite: Suite = { run };
