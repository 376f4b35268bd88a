/** `lowbit convert`: an ONNX model to a .lowbit file, with the per-layer report. */
import { readFileSync, writeFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { ConvertOptions } from '../../convert/convert.js';
import { readF32, readFashionMnist, readLbds, toInput } from '../../data.js';
import { ShapeError } from '../../errors.js';
import {
  choice,
  inputFile,
  intOption,
  numberOption,
  outputFile,
  parseSize,
  UsageError,
  type Command,
} from '../args.js';
import { formatBytes, formatInt, formatReport, Progress } from '../format.js';

const USAGE = `usage: lowbit convert model.onnx -o model.lowbit --calib FILE [options]

Converts an ONNX model to a .lowbit file and prints the per-layer report.
  -o, --output FILE           the .lowbit file to write (required)
  --bits 8|7|4|mixed          weight bits of the integer layers (default 8; 7: INT8 weights in [-64, 64],
                              exact vpmaddubsw on AVX2 CPUs without VNNI)
  --reduced-range auto|off    for --bits 8 and mixed: auto (default) puts an inner layer's weights in
                              [-64, 64] (W7A8) where the conversion measures no cost (within 1% of
                              the output error); off keeps every 8-bit layer at full range
  --size-budget SIZE          for --bits mixed: the largest file, e.g. 120k (KiB), 1.5m (MiB) or bytes;
                              implies --bits mixed
  --boundary-bits 8|4         weight bits of the first and last integer layers (default 8)
  --calib FILE                calibration samples (required): a .lbds dataset, a .f32 file of input
                              samples, or fashion-mnist-train (Debian's Fashion-MNIST training images)
  --calib-count N             calibration samples used (default 500)
  --calib-method minmax|percentile   activation ranges (default minmax)
  --percentile P              for percentile ranges: the percentile of |x| kept (default 99.99)
  --rounding gptq|nearest     weights of the integer layers: gptq (default) rounds them to keep
                              each layer's output close on the calibration samples, with bias
                              correction; nearest rounds each weight to its nearest level
  --mst                       build MST schedules for the binary layers
  --float none|boundary|NAMES layers kept in float32: none; boundary (a binary network's other
                              layers and real-valued stream, as trained; else the first and last
                              layer); or conv / dense node names, comma-separated (default:
                              boundary for a network with binary layers, else none)
`;

/** The samples of `--calib` (a .lbds or .f32 file, checked already, or fashion-mnist-train). */
async function calibrationSamples(path: string, onnx: Uint8Array, count: number): Promise<Float32Array> {
  if (path === 'fashion-mnist-train' || extname(path).toLowerCase() === '.lbds') {
    const ds = path === 'fashion-mnist-train' ? readFashionMnist(undefined, 'train') : readLbds(path);
    return toInput(ds, 0, Math.min(count, ds.count));
  }
  const values = readF32(path);
  // Whole samples of the ONNX model's input, when its dims are known (else every value).
  let size = 0;
  try {
    const { decodeModel } = await import('../../onnx/proto.js');
    const dims = decodeModel(onnx).inputs[0]?.dims.slice(1) ?? [];
    if (dims.length > 0 && dims.every((d) => typeof d === 'number' && d > 0))
      size = (dims as number[]).reduce((a, b) => a * b, 1);
  } catch {
    size = 0; // the converter reports a malformed model itself
  }
  if (size === 0) return values;
  if (values.length % size !== 0)
    throw new ShapeError(
      `--calib ${path}: ${values.length} values are not whole samples of ${size} values (the ONNX model's input)`,
    );
  return values.subarray(0, Math.min(values.length, count * size));
}

export const convert: Command = {
  usage: USAGE,
  options: {
    output: { type: 'string', short: 'o' },
    bits: { type: 'string' },
    'size-budget': { type: 'string' },
    'boundary-bits': { type: 'string' },
    calib: { type: 'string' },
    'calib-count': { type: 'string' },
    'calib-method': { type: 'string' },
    percentile: { type: 'string' },
    mst: { type: 'boolean' },
    rounding: { type: 'string' },
    'reduced-range': { type: 'string' },
    float: { type: 'string' },
  },
  file: 'an ONNX model file',
  async run(args, io) {
    const output = args.string('output');
    if (!output) throw new UsageError('convert: missing -o / --output model.lowbit', 'convert');
    outputFile(output, '--output', 'convert');
    const bitsText = choice(args.string('bits'), '--bits', ['8', '7', '4', 'mixed'] as const, 'convert');
    const budgetText = args.string('size-budget');
    const sizeBudget = budgetText === undefined ? undefined : parseSize(budgetText, '--size-budget', 'convert');
    let bits: ConvertOptions['bits'] =
      bitsText === 'mixed' ? 'mixed' : bitsText === undefined ? undefined : (Number(bitsText) as 8 | 7 | 4);
    if (sizeBudget !== undefined && bits === undefined) bits = 'mixed';
    if (bits === 'mixed' && sizeBudget === undefined)
      throw new UsageError('--bits mixed: needs --size-budget', 'convert');
    if (sizeBudget !== undefined && bits !== 'mixed')
      throw new UsageError(`--size-budget: applies to --bits mixed, not --bits ${bits}`, 'convert');
    const boundary = choice(args.string('boundary-bits'), '--boundary-bits', ['8', '4'] as const, 'convert');
    const rounding = choice(args.string('rounding'), '--rounding', ['gptq', 'nearest'] as const, 'convert');
    const reducedRange = choice(args.string('reduced-range'), '--reduced-range', ['auto', 'off'] as const, 'convert');
    let method = choice(args.string('calib-method'), '--calib-method', ['minmax', 'percentile'] as const, 'convert');
    const percentileText = args.string('percentile');
    let percentile: number | undefined;
    if (percentileText !== undefined) {
      percentile = numberOption(percentileText, '--percentile', 99.99, 'convert');
      if (percentile > 100)
        throw new UsageError(`--percentile: expected a number in (0, 100], got '${percentileText}'`, 'convert');
      if (method === 'minmax') throw new UsageError('--percentile: applies to --calib-method percentile', 'convert');
      method = 'percentile';
    }
    const floatText = args.string('float');
    if (floatText !== undefined && floatText.trim() === '')
      throw new UsageError("--float: expected none, boundary or layer names, got ''", 'convert');
    const floatLayers: ConvertOptions['floatLayers'] =
      floatText === undefined || floatText === 'none' || floatText === 'boundary'
        ? floatText
        : floatText.split(',').map((s) => s.trim());
    const calibCount = intOption(args.string('calib-count'), '--calib-count', 500, 'convert');
    const calibPath = args.string('calib');
    if (calibPath === undefined)
      throw new UsageError(
        'convert: missing --calib FILE (calibration samples: a .lbds dataset, a .f32 file or fashion-mnist-train)',
        'convert',
      );
    if (calibPath !== 'fashion-mnist-train') {
      const ext = extname(calibPath).toLowerCase();
      if (ext !== '.lbds' && ext !== '.f32')
        throw new UsageError(
          `--calib: expected a .lbds or .f32 file or fashion-mnist-train, got '${calibPath}'`,
          'convert',
        );
      inputFile(calibPath, `a ${ext} file`, 'convert');
    }

    const onnx = readFileSync(args.positionals[0]);
    const calibration = await calibrationSamples(calibPath, onnx, calibCount);
    const { convertOnnxWithReport } = await import('../../convert/convert.js');
    let bar: Progress | undefined;
    let phase: string | undefined;
    const start = performance.now();
    const { bytes, report } = await convertOnnxWithReport(onnx, {
      calibration,
      bits,
      sizeBudget,
      boundaryBits: boundary === undefined ? undefined : boundary === '4' ? 4 : 8,
      calibrationMethod: method,
      percentile,
      mst: args.flag('mst'),
      rounding,
      reducedRange,
      floatLayers,
      onProgress: (p, done, total) => {
        if (p !== phase) {
          bar?.finish();
          bar = new Progress(io.stderr, p, total);
          phase = p;
        }
        bar!.update(done);
      },
    }).finally(() => bar?.finish());
    writeFileSync(output, bytes);
    io.stdout.write(formatReport(report));
    io.stdout.write(
      `wrote ${output}: ${formatInt(bytes.length)} bytes (${formatBytes(bytes.length)}) in ${((performance.now() - start) / 1000).toFixed(1)} s\n`,
    );
    return 0;
  },
};
