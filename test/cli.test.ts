/**
 * The `lowbit` command line, driven in process through `main(argv, io)` with captured output,
 * plus one check of the compiled entry point (shebang, exit codes) in a child process.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseSize } from '../lib/cli/args.js';
import { Progress, type Io } from '../lib/cli/format.js';
import { main } from '../lib/cli/main.js';
import { encodeF32, encodeLbds, FASHION_MNIST_DIR, readF32 } from '../lib/data.js';
import { encodeModel } from '../lib/model/format.js';
import { childEnv, compiledLib, ROOT, spawnNode } from './helpers/compile-lib.js';
import {
  i as int,
  model as onnxModel,
  node,
  ORT_IN_PROCESS,
  runOrt,
  tensor as onnxTensor,
  valueInfo,
} from './helpers/onnx-builder.js';
import { binaryModel } from './helpers/tiny-models.js';

/** Whether the addon has the whole-model binding yet (`native.loadModel`). */
const native = await import('../lib/native.js').then(
  (m) => m.native as unknown as Record<string, unknown>,
  () => undefined,
);
const HAS_MODELS = typeof native?.loadModel === 'function';
const HAS_DEBIAN = existsSync(join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz'));
const SLICE = join(ROOT, 'models/fashion-mnist-test-1000.lbds');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(...argv: string[]): Promise<Result> {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s), isTTY: false },
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

// Four 1x2x2 images; the tiny model's logits are the first three pixels / 255, so the arg-max is
// the brightest of them. The last label is wrong on purpose: accuracy 3/4.
const PIXELS = [
  [200, 10, 20, 0],
  [10, 250, 30, 0],
  [5, 6, 255, 0],
  [100, 50, 20, 0],
];
const LABELS = [0, 1, 2, 2];
const PREDICTED = [0, 1, 2, 0];

/**
 * input f32 [1, 2, 2] -> quantize u8 (scale 1/255) -> reshape [4] -> qdense s32 [3] (weights pick
 * pixels 0, 1, 2) -> affine (scale 1/255) -> logits f32 [3]; with a conversion report in its metadata.
 */
function tinyModel(): Uint8Array {
  const weights = Int8Array.from({ length: 12 }, (_, i) => (i % 5 === 0 ? 1 : 0)); // rows c: 1 at column c
  return encodeModel({
    producer: 'lowbit test',
    inputs: [{ name: 'input', tensor: 0 }],
    outputs: [{ name: 'logits', tensor: 4 }],
    tensors: [
      { name: 'input', dtype: 'f32', shape: [1, 2, 2] },
      { name: 'x', dtype: 'u8', shape: [2, 2, 1], scale: 1 / 255, zero_point: 0 },
      { name: 'flat', dtype: 'u8', shape: [4], scale: 1 / 255, zero_point: 0 },
      { name: 'acc', dtype: 's32', shape: [3] },
      { name: 'logits', dtype: 'f32', shape: [3] },
    ],
    nodes: [
      { name: 'input.quantize', op: 'quantize', inputs: [0], outputs: [1] },
      { name: 'flatten', op: 'reshape', inputs: [1], outputs: [2] },
      {
        name: 'fc',
        op: 'qdense',
        inputs: [2],
        outputs: [3],
        attrs: { bits: 8 },
        data: { weights, bias: new Int32Array(3) },
      },
      {
        name: 'fc.dequantize',
        op: 'affine',
        inputs: [3],
        outputs: [4],
        data: { scale: new Float32Array(3).fill(1 / 255), bias: new Float32Array(3) },
      },
    ],
    metadata: {
      report: {
        layers: [{ name: 'fc', kind: 'W8A8', bytes: 48, error: 0.0123, metric: 'relative-rms' }],
        outputError: { logits: 0.0123 },
        top1Agreement: { logits: 0.98 },
        modelBytes: 1234,
        calibrationSamples: 4,
      },
      options: { bits: 8 },
    },
  });
}

/** The float model the tiny model stands for: Flatten -> Gemm picking pixels 0, 1, 2. */
function tinyOnnx(): Uint8Array {
  return onnxModel({
    nodes: [
      node('Flatten', ['input'], ['flat'], { axis: int(1) }),
      node('Gemm', ['flat', 'W', 'b'], ['logits'], { transB: int(1) }),
    ],
    inputs: [valueInfo('input', ['N', 1, 2, 2])],
    outputs: ['logits'],
    initializers: [
      onnxTensor(
        'W',
        [3, 4],
        Array.from({ length: 12 }, (_, k) => (k % 5 === 0 ? 1 : 0)),
      ),
      onnxTensor('b', [3], [0, 0, 0]),
    ],
  });
}

let dir = '';
let onnxPath = '';
let modelPath = '';
let dataPath = '';
let f32Path = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lowbit-cli-'));
  modelPath = join(dir, 'tiny.lowbit');
  dataPath = join(dir, 'tiny.lbds');
  f32Path = join(dir, 'tiny.f32');
  onnxPath = join(dir, 'tiny.onnx');
  writeFileSync(modelPath, tinyModel());
  writeFileSync(onnxPath, tinyOnnx());
  writeFileSync(
    dataPath,
    encodeLbds({
      count: 4,
      channels: 1,
      height: 2,
      width: 2,
      pixels: Uint8Array.from(PIXELS.flat()),
      labels: Uint8Array.from(LABELS),
    }),
  );
  writeFileSync(f32Path, encodeF32(Float32Array.from(PIXELS.flat(), (p) => p / 255)));
});

describe('help', () => {
  it("prints the command summary and each command's usage on stdout, exit 0", async () => {
    for (const argv of [['--help'], ['-h'], ['help']]) {
      const r = await cli(...argv);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^usage: lowbit <command>/);
      for (const c of ['convert', 'info', 'run', 'eval', 'bench', 'demo']) expect(r.stdout).toContain(`  ${c} `);
      expect(r.stderr).toBe('');
    }
    for (const c of ['convert', 'info', 'run', 'eval', 'bench', 'demo']) {
      const a = await cli('help', c);
      const b = await cli(c, '--help');
      expect(a.code).toBe(0);
      expect(a.stdout).toMatch(new RegExp(`^usage: lowbit ${c}`));
      expect(b).toEqual(a);
    }
    expect((await cli('help', 'convert')).stdout).toMatch(
      /--size-budget SIZE[\s\S]*--calib-method minmax\|percentile[\s\S]*--mst/,
    );
  });
});

describe('usage errors: exit 2 with a message and the usage on stderr', () => {
  const cases: [string[], RegExp, string][] = [
    [[], /missing a command/, 'usage: lowbit <command>'],
    [['frobnicate'], /unknown command 'frobnicate'/, 'usage: lowbit <command>'],
    [['--bogus'], /unknown option '--bogus'/, 'usage: lowbit <command>'],
    [['help', 'frobnicate'], /help: unknown command 'frobnicate'/, 'usage: lowbit <command>'],
    [['info'], /info: missing the model file/, 'usage: lowbit info'],
    [['info', 'a.lowbit', 'b.lowbit'], /unexpected argument 'b.lowbit'/, 'usage: lowbit info'],
    [['info', 'a.lowbit', '--bogus'], /Unknown option '--bogus'/, 'usage: lowbit info'],
    [['run', 'a.lowbit'], /run: missing --input/, 'usage: lowbit run'],
    [['run', 'a.lowbit', '--input'], /--input/, 'usage: lowbit run'],
    [['run', 'a.lowbit', '--input', 'x.png'], /--input: expected a .lbds or .f32 file/, 'usage: lowbit run'],
    [
      ['run', 'a.lowbit', '--input', 'x.f32', '--batch', '0'],
      /--batch: expected an integer >= 1, got '0'/,
      'usage: lowbit run',
    ],
    [['eval', 'a.lowbit'], /eval: missing --dataset/, 'usage: lowbit eval'],
    [
      ['eval', 'a.lowbit', '--dataset', 'x.lbds', '--count', '12abc'],
      /--count: expected an integer >= 1/,
      'usage: lowbit eval',
    ],
    [
      ['eval', 'a.lowbit', '--dataset', 'mnist'],
      /--dataset: expected fashion-mnist or an .lbds file/,
      'usage: lowbit eval',
    ],
    [['serve'], /serve: missing the model file/, 'usage: lowbit serve'],
    [['serve', 'a.lowbit', '--max-activation', '1x'], /--max-activation: expected bytes/, 'usage: lowbit serve'],
    [['serve', 'a.lowbit', '--max-batch', '0'], /--max-batch: expected an integer >= 1/, 'usage: lowbit serve'],
    [['serve', 'a.lowbit', 'x/a.lowbit'], /two models named 'a'/, 'usage: lowbit serve'],
    [['convert', 'a.onnx'], /convert: missing -o/, 'usage: lowbit convert'],
    [
      ['convert', 'a.onnx', '-o', 'a.lowbit', '--bits', '3'],
      /--bits: expected 8 or 7 or 4 or mixed, got '3'/,
      'usage: lowbit convert',
    ],
    [
      ['convert', 'a.onnx', '-o', 'a.lowbit', '--reduced-range', 'on'],
      /--reduced-range: expected auto or off, got 'on'/,
      'usage: lowbit convert',
    ],
    [
      ['convert', 'a.onnx', '-o', 'a.lowbit', '--bits', 'mixed'],
      /--bits mixed: needs --size-budget/,
      'usage: lowbit convert',
    ],
    [
      ['convert', 'a.onnx', '-o', 'a.lowbit', '--bits', '8', '--size-budget', '10k'],
      /--size-budget: applies to --bits mixed/,
      'usage: lowbit convert',
    ],
    [
      ['convert', 'a.onnx', '-o', 'a.lowbit', '--size-budget', 'lots'],
      /--size-budget: expected a size/,
      'usage: lowbit convert',
    ],
    [
      ['convert', 'a.onnx', '-o', 'a.lowbit', '--percentile', '101'],
      /--percentile: expected a number in \(0, 100\]/,
      'usage: lowbit convert',
    ],
    [
      ['convert', 'a.onnx', '-o', 'a.lowbit', '--calib-method', 'minmax', '--percentile', '99'],
      /--percentile: applies to --calib-method percentile/,
      'usage: lowbit convert',
    ],
    [['bench', 'a.lowbit', '--batch', '1,x'], /--batch: expected an integer >= 1, got 'x'/, 'usage: lowbit bench'],
    [['bench', 'a.lowbit', '--seconds', '0'], /--seconds: expected a number > 0/, 'usage: lowbit bench'],
    [
      ['bench', 'a.lowbit', '--threads', '1000'],
      /--threads: expected an integer in \[1, 256\], got '1000'/,
      'usage: lowbit bench',
    ],
    [['convert', 'a.onnx', '-o', 'a.lowbit'], /convert: missing --calib FILE/, 'usage: lowbit convert'],
    [
      ['convert', 'a.onnx', '-o', 'a.lowbit', '--float', ''],
      /--float: expected none, boundary or layer names/,
      'usage: lowbit convert',
    ],
    [
      ['convert', 'a.onnx', '-o', 'a.lowbit', '--calib', 'x.png'],
      /--calib: expected a .lbds or .f32 file or fashion-mnist-train, got 'x.png'/,
      'usage: lowbit convert',
    ],
    [['demo', '--fast'], /Unknown option '--fast'/, 'usage: lowbit demo'],
    [['demo', '--threads', '1000'], /--threads: expected an integer in \[1, 256\], got '1000'/, 'usage: lowbit demo'],
  ];
  it.each(cases)('%j', async (argv, message, usage) => {
    const r = await cli(...argv);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^lowbit( demo)?: /);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain(usage);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});

describe('file arguments that are directories: exit 2, naming the path, before any work', () => {
  it('every file argument of every command', async () => {
    const [lbds, f32, onnx] = ['d.lbds', 'd.f32', 'd.onnx'].map((name) => join(dir, name));
    for (const d of [lbds, f32, onnx]) mkdirSync(d, { recursive: true });
    const out = join(dir, 'never.lowbit');
    const cases: [string[], string][] = [
      [['info', dir], dir],
      [['run', dir, '--input', dataPath], dir],
      [['run', modelPath, '--input', lbds], lbds],
      [['run', modelPath, '--input', f32], f32],
      [['run', modelPath, '--input', dataPath, '--output', dir], dir],
      [['eval', dir, '--dataset', dataPath], dir],
      [['eval', modelPath, '--dataset', lbds], lbds],
      [['bench', dir], dir],
      [['bench', modelPath, '--vs-onnx', onnx], onnx],
      [['convert', onnx, '-o', out, '--calib', dataPath], onnx],
      [['convert', onnxPath, '-o', dir, '--calib', dataPath], dir],
      [['convert', onnxPath, '-o', out, '--calib', lbds], lbds],
      [['convert', onnxPath, '-o', out, '--calib', f32], f32],
    ];
    for (const [argv, path] of cases) {
      const r = await cli(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr, argv.join(' ')).toContain(`${path}: is a directory, expected a`);
      expect(r.stderr).toContain(`usage: lowbit ${argv[0]}`);
    }
    expect(existsSync(out)).toBe(false);
  });

  it('an output file in a directory that does not exist', async () => {
    for (const argv of [
      ['convert', onnxPath, '-o', join(dir, 'nope', 'x.lowbit'), '--calib', dataPath],
      ['run', modelPath, '--input', dataPath, '--output', join(dir, 'nope', 'x.f32')],
    ]) {
      const r = await cli(...argv);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${join(dir, 'nope')} does not exist`);
    }
  });
});

describe('runtime errors: exit 1, `lowbit: <ErrorClass>: message`', () => {
  it('names a missing file', async () => {
    for (const argv of [
      ['info', join(dir, 'missing.lowbit')],
      ['run', join(dir, 'missing.lowbit'), '--input', dataPath],
      ['convert', join(dir, 'missing.onnx'), '-o', join(dir, 'x.lowbit'), '--calib', dataPath],
    ]) {
      const r = await cli(...argv);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`lowbit: Error: ${argv[1]}: no such file or directory\n`);
    }
  });

  it.skipIf(!HAS_MODELS)('reports a corrupt model file as a ModelFormatError', async () => {
    const corrupt = tinyModel();
    corrupt[corrupt.length - 1] ^= 0xff; // a data section's CRC no longer matches
    const path = join(dir, 'corrupt.lowbit');
    writeFileSync(path, corrupt);
    const garbage = join(dir, 'garbage.lowbit');
    writeFileSync(garbage, Buffer.from('this is not a model'));
    for (const p of [path, garbage]) {
      const r = await cli('info', p);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^lowbit: ModelFormatError: \S/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stdout).toBe('');
    }
  });

  it('reports a malformed dataset as a ModelFormatError', async () => {
    const bad = join(dir, 'bad.lbds');
    writeFileSync(bad, Buffer.from('LBDS\x01\x00\x00\x00'));
    const r = await cli('convert', join(dir, 'whatever.onnx'), '-o', join(dir, 'x.lowbit'), '--calib', bad);
    // the ONNX file is read first
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^lowbit: Error: .*whatever\.onnx: no such file or directory/);
    if (!HAS_MODELS) return;
    const r2 = await cli('run', modelPath, '--input', bad);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(
      /^lowbit: ModelFormatError: LBDS file .*bad\.lbds: header: expected at least 24 bytes, got 8/,
    );
  });
});

describe.skipIf(!HAS_MODELS)('commands on a small model', () => {
  it('info: inputs, outputs, operators, the report, file size and activation memory', async () => {
    const r = await cli('info', modelPath);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const bytes = readFileSync(modelPath).length;
    expect(r.stdout).toContain(`${bytes.toLocaleString('en-US')} bytes`);
    expect(r.stdout).toMatch(/input\s+input\s+\[N, 1, 2, 2\]\s+f32/);
    expect(r.stdout).toMatch(/output\s+logits\s+\[N, 3\]\s+f32/);
    expect(r.stdout).toMatch(/nodes: 4 \(/);
    expect(r.stdout).toMatch(/qdense 1/);
    expect(r.stdout).toMatch(/fc\s+W8A8\s+48\s+0\.0123 rel\. RMS/);
    expect(r.stdout).toMatch(/top-1 agreement with the float model 98\.00%/);
    expect(r.stdout).toMatch(/batch 1\s+\d[\d,]* B/);
    expect(r.stdout).toMatch(/batch 64\s+\d[\d,]* B/);
  });

  it('export --onnx-qdq: the integer model as ONNX QDQ, which onnxruntime runs to the same arg-max', async () => {
    const out = join(dir, 'tiny.qdq.onnx');
    const r = await cli('export', modelPath, '--onnx-qdq', '-o', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^wrote .*tiny\.qdq\.onnx: ONNX QDQ, opset 13, [\d,]+ bytes/);
    const pixels = Float32Array.from(PIXELS.flat(), (p) => p / 255);
    const { logits } = await runOrt(readFileSync(out), { input: { dims: [4, 1, 2, 2], data: pixels } });
    const argmax = PIXELS.map((_, n) => [0, 1, 2].reduce((b, c) => (logits[n * 3 + c] > logits[n * 3 + b] ? c : b), 0));
    expect(argmax).toEqual(PREDICTED);
    const missing = await cli('export', modelPath, '-o', out);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('export: missing the format: --onnx-qdq');
    const binary = join(dir, 'binary.lowbit');
    writeFileSync(binary, binaryModel());
    const refused = await cli('export', binary, '--onnx-qdq', '-o', out);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^lowbit: UnsupportedError: node 'sign' \(sign\): reads or writes 1-bit tensors/);
  });

  it('run: the arg-max and the label of every sample of a dataset', async () => {
    const r = await cli('run', modelPath, '--input', dataPath, '--batch', '3');
    expect(r.code).toBe(0);
    const rows = r.stdout
      .trim()
      .split('\n')
      .slice(2, 6)
      .map((l) => l.trim().split(/\s+/).map(Number));
    expect(rows).toEqual(PREDICTED.map((p, i) => [i, p, LABELS[i]]));
    expect(r.stdout).toContain('accuracy 75.00% (3/4)');
    const two = await cli('run', modelPath, '--input', dataPath, '--count', '2');
    expect(two.stdout).toContain('accuracy 100.00% (2/2)');
  });

  it('run: raw float samples, and raw float outputs', async () => {
    const r = await cli('run', modelPath, '--input', f32Path);
    expect(r.code).toBe(0);
    const rows = r.stdout
      .trim()
      .split('\n')
      .slice(2)
      .map((l) => l.trim().split(/\s+/).map(Number));
    expect(rows).toEqual(PREDICTED.map((p, i) => [i, p]));
    const out = join(dir, 'out.f32');
    const w = await cli('run', modelPath, '--input', dataPath, '--output', out, '--batch', '2');
    expect(w.code).toBe(0);
    expect(w.stdout).toMatch(/logits \[4, 3\]/);
    const values = readF32(out, 3);
    expect(values.length).toBe(12);
    PIXELS.forEach((p, i) => [0, 1, 2].forEach((c) => expect(values[3 * i + c]).toBeCloseTo(p[c] / 255, 5)));
  });

  it('run: a file of partial samples is an error', async () => {
    const path = join(dir, 'partial.f32');
    writeFileSync(path, encodeF32(new Float32Array(6)));
    const r = await cli('run', modelPath, '--input', path);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^lowbit: ModelFormatError: .*6 values are not a whole number of samples of 4 values/);
  });

  it('eval: accuracy with a progress bar, and the latency', async () => {
    const r = await cli('eval', modelPath, '--dataset', dataPath, '--batch', '2');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('accuracy 75.00% (3/4)');
    expect(r.stdout).toMatch(/latency: median [\d.]+ ms per batch of 2 .* images\/s/);
    expect(r.stderr).toMatch(/eval 4\/4/);
  });

  it.skipIf(!HAS_DEBIAN)('eval: a dataset whose images do not fit the model is a ShapeError', async () => {
    const r = await cli('eval', modelPath, '--dataset', 'fashion-mnist', '--count', '10');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^lowbit: ShapeError: fashion-mnist: images of 1x28x28 do not fit the model's input input \[N, 1, 2, 2\]/,
    );
  });

  it('bench: median latency and throughput per batch size', async () => {
    const r = await cli('bench', modelPath, '--batch', '1,8', '--seconds', '0.2', '--threads', '1');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/isa \w+, 1 thread\n/);
    expect(r.stdout).toMatch(/^\s*1\s+lowbit\s+[\d.]+\s+[\d.]+\s+[\d,]+\s+\d+$/m);
    expect(r.stdout).toMatch(/^\s*8\s+lowbit\s+/m);
  });

  it.skipIf(!ORT_IN_PROCESS)('bench --vs-onnx: onnxruntime-node on the same batches, and the speed ratio', async () => {
    const r = await cli(
      'bench',
      modelPath,
      '--vs-onnx',
      onnxPath,
      '--batch',
      '4',
      '--seconds',
      '0.3',
      '--threads',
      '1',
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/onnxruntime-node .*tiny\.onnx with 1 intra-op thread\n/);
    expect(r.stdout).toMatch(/speed vs ORT/);
    expect(r.stdout).toMatch(/^\s*4\s+lowbit\s+[\d.]+\s+[\d.]+\s+[\d,]+\s+\d+\s+[\d.]+x$/m);
    expect(r.stdout).toMatch(/^\s*4\s+onnxruntime\s+[\d.]+\s+[\d.]+\s+[\d,]+\s+\d+\s+1\.00x$/m);
  });

  it('convert: an ONNX model with calibration data, the report, then info and eval on the result', async () => {
    const out = join(dir, 'converted.lowbit');
    const r = await cli('convert', onnxPath, '-o', out, '--calib', dataPath, '--calib-count', '3');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/W8A8/);
    expect(r.stdout).toMatch(/top-1 agreement with the float model/);
    expect(r.stdout).toMatch(/calibration samples: 3\n/);
    expect(r.stdout).toMatch(
      new RegExp(`wrote .*converted\\.lowbit: ${readFileSync(out).length.toLocaleString('en-US')} bytes`),
    );
    expect(r.stderr).toMatch(/calibrate \d+\/\d+/);
    const info = await cli('info', out);
    expect(info.code).toBe(0);
    expect(info.stdout).toMatch(/W8A8/);
    const ev = await cli('eval', out, '--dataset', dataPath);
    expect(ev.stdout).toContain('accuracy 75.00% (3/4)');
    const f32 = await cli(
      'convert',
      onnxPath,
      '-o',
      join(dir, 'converted4.lowbit'),
      '--calib',
      f32Path,
      '--bits',
      '4',
      '--calib-method',
      'percentile',
    );
    expect(f32.code).toBe(0);
    expect(f32.stdout).toMatch(/calibration samples: 4\n/);
    // --bits 7 (reduced-range INT8) applies to inner layers: this model's one layer keeps the
    // boundary's 8 bits.
    const seven = await cli(
      'convert',
      onnxPath,
      '-o',
      join(dir, 'converted7.lowbit'),
      '--calib',
      dataPath,
      '--bits',
      '7',
    );
    expect(seven.code).toBe(0);
    expect(seven.stdout).toMatch(/Gemm_1\s+W8A8/);
    // --float boundary on a network without binary layers: its first and last layers in float.
    const float = await cli(
      'convert',
      onnxPath,
      '-o',
      join(dir, 'float.lowbit'),
      '--calib',
      dataPath,
      '--float',
      'boundary',
    );
    expect(float.code).toBe(0);
    const rows = float.stdout.split('\n').filter((l) => /^\S+\s+(f32|W8A8|W7A8|W4A8)\s/.test(l));
    const kinds = rows.map((l) => l.split(/\s+/)[1]);
    expect(kinds.length).toBeGreaterThan(0);
    expect([kinds[0], kinds[kinds.length - 1]]).toEqual(['f32', 'f32']);
    // (inner layers at 8 bits; reduced range where it costs nothing)
    expect(kinds.slice(1, -1).every((k) => k === 'W8A8' || k === 'W7A8')).toBe(true);
  });
});

describe.skipIf(!HAS_MODELS)('conversion warnings', () => {
  it("convert and info print the report's warnings (here: all-zero calibration data)", async () => {
    const zeros = join(dir, 'zeros.f32');
    writeFileSync(zeros, encodeF32(new Float32Array(16)));
    const out = join(dir, 'zeros.lowbit');
    const r = await cli('convert', onnxPath, '-o', out, '--calib', zeros);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^warning: calibration: every calibration sample is all zeros \(input "input"\)/m);
    const info = await cli('info', out);
    expect(info.stdout).toMatch(/^warning: calibration: every calibration sample is all zeros/m);
  });
});

describe.skipIf(!HAS_MODELS)('Model.fromOnnx', () => {
  it('converts and loads in one call', async () => {
    const { Model } = await import('../lib/model/model.js');
    const { readLbds, toInput } = await import('../lib/data.js');
    const model = await Model.fromOnnx(tinyOnnx(), { calibration: toInput(readLbds(dataPath)) });
    try {
      expect(model.inputs.map((i) => i.shape)).toEqual([[-1, 1, 2, 2]]);
      const logits = model.runSync(toInput(readLbds(dataPath))).logits;
      expect(logits.shape).toEqual([4, 3]);
      PIXELS.forEach((p, i) => [0, 1, 2].forEach((c) => expect(logits.data[3 * i + c]).toBeCloseTo(p[c] / 255, 2)));
    } finally {
      model.dispose();
    }
  });
});

describe('demo', () => {
  it('says how to create the models when there are none, exit 1', async () => {
    const empty = join(dir, 'no-models');
    mkdirSync(empty, { recursive: true });
    const r = await cli('demo', '--models', empty);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^No .lowbit models in .*no-models \(looked for fashion-binary.lowbit, /);
    expect(r.stderr).toMatch(
      /npx lowbit convert .*fashion-float\.onnx -o .*fashion-w8a8\.lowbit --calib .*fashion-mnist-test-1000\.lbds --bits 8/,
    );
  });

  it.skipIf(!HAS_MODELS || !existsSync(SLICE) || !ORT_IN_PROCESS)(
    'compares the models found with the float reference in one table',
    async () => {
      // A linear 784 -> 10 classifier stands in for the shipped models.
      const models = join(dir, 'demo-models');
      mkdirSync(models, { recursive: true });
      copyFileSync(SLICE, join(models, 'fashion-mnist-test-1000.lbds'));
      const w = Float32Array.from({ length: 7840 }, (_, k) => Math.sin(k * 12.9898) * 0.1);
      writeFileSync(
        join(models, 'fashion-float.onnx'),
        onnxModel({
          nodes: [
            node('Flatten', ['input'], ['flat'], { axis: int(1) }),
            node('Gemm', ['flat', 'W', 'b'], ['logits'], { transB: int(1) }),
          ],
          inputs: [valueInfo('input', ['N', 1, 28, 28])],
          outputs: ['logits'],
          initializers: [onnxTensor('W', [10, 784], w), onnxTensor('b', [10], new Array(10).fill(0))],
        }),
      );
      const c = await cli(
        'convert',
        join(models, 'fashion-float.onnx'),
        '-o',
        join(models, 'fashion-w8a8.lowbit'),
        '--calib',
        SLICE,
        '--calib-count',
        '100',
      );
      expect(c.code).toBe(0);
      const r = await cli('demo', '--models', models, '--threads', '1');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/isa \w+, 1 thread, reference onnxruntime-node with 1 intra-op thread/);
      expect(r.stdout).toMatch(
        /model\s+kind\s+accuracy\s+bytes\s+batch 1 ms\s+batch 64 img\/s\s+speed-up b1\s+speed-up b64/,
      );
      expect(r.stdout).toMatch(
        /fashion-float\.onnx \(onnxruntime\)\s+float32\s+\d+\.\d\d%\s+[\d,]+\s+[\d.]+\s+[\d,]+\s+1\.00x\s+1\.00x/,
      );
      expect(r.stdout).toMatch(
        /fashion-w8a8\.lowbit\s+W8A8\s+\d+\.\d\d%\s+[\d,]+\s+[\d.]+\s+[\d,]+\s+[\d.]+x\s+[\d.]+x/,
      );
    },
  );
});

describe('pieces', () => {
  it('parses sizes: k and m are KiB and MiB', () => {
    expect(parseSize('120k')).toBe(120 * 1024);
    expect(parseSize('1.5m')).toBe(1.5 * 1024 * 1024);
    expect(parseSize('250000')).toBe(250000);
    expect(parseSize('64KiB')).toBe(65536);
    expect(() => parseSize('12q')).toThrow(/expected a size/);
  });

  it('draws a progress bar in place on a terminal, plain lines elsewhere', () => {
    let tty = '';
    const bar = new Progress({ write: (s: string) => (tty += s), isTTY: true }, 'calibrate', 500);
    bar.update(250);
    bar.update(500);
    bar.finish();
    expect(tty).toBe('\rcalibrate [##########..........] 250/500\rcalibrate [####################] 500/500\n');
    let log = '';
    const plain = new Progress({ write: (s: string) => (log += s) }, 'eval', 10);
    for (let i = 1; i <= 10; ++i) plain.update(i);
    plain.finish();
    expect(log).toBe('eval 2/10\neval 4/10\neval 6/10\neval 8/10\neval 10/10\n');
  });
});

describe('the compiled entry point', () => {
  it('runs as a script: shebang, usage exit codes', () => {
    const cliJs = join(compiledLib(), '../cli.js');
    expect(readFileSync(cliJs, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    const help = spawnNode([cliJs, '--help'], { env: childEnv(), encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: lowbit <command>/);
    const bad = spawnNode([cliJs, 'frobnicate'], { env: childEnv(), encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^lowbit: unknown command 'frobnicate'/);
    const missing = spawnNode([cliJs, 'info', '/nonexistent/m.lowbit'], {
      env: childEnv(),
      encoding: 'utf8',
    });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe('lowbit: Error: /nonexistent/m.lowbit: no such file or directory\n');
  });
});
