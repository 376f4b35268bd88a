/** `lowbit run`: a model over a dataset or raw samples; arg-max per sample, or the raw outputs. */
import { writeFileSync } from 'node:fs';
import { extname } from 'node:path';
import { argmax, encodeF32, readF32, readLbds, toInput, type Dataset } from '../../data.js';
import { inputFile, intOption, outputFile, UsageError, type Command } from '../args.js';
import { checkDatasetFits, perSample, withModel } from '../evaluate.js';
import { formatInt, formatPercent, formatTable } from '../format.js';

const USAGE = `usage: lowbit run model.lowbit --input FILE [options]

Runs a model and prints, per sample, the arg-max of its first output (and the label for a
dataset), or writes the raw outputs.
  --input FILE        a .lbds dataset (pixels / 255) or a .f32 file of whole input samples (required)
  --count N           the first N samples only
  --batch B           samples per run (default 64)
  --output FILE       write every output as little-endian float32 values instead (.f32)
`;

export const run: Command = {
  usage: USAGE,
  options: {
    input: { type: 'string' },
    count: { type: 'string' },
    batch: { type: 'string' },
    output: { type: 'string' },
  },
  file: 'a .lowbit model file',
  async run(args, io) {
    const inputPath = args.string('input');
    if (!inputPath) throw new UsageError('run: missing --input FILE (.lbds or .f32)', 'run');
    const ext = extname(inputPath).toLowerCase();
    if (ext !== '.lbds' && ext !== '.f32')
      throw new UsageError(`--input: expected a .lbds or .f32 file, got '${inputPath}'`, 'run');
    inputFile(inputPath, 'a .lbds or .f32 file', 'run');
    const countLimit = intOption(args.string('count'), '--count', Number.MAX_SAFE_INTEGER, 'run');
    const batch = intOption(args.string('batch'), '--batch', 64, 'run');
    const outputPath = args.string('output');
    if (outputPath !== undefined) outputFile(outputPath, '--output', 'run');

    return withModel(args.positionals[0], async (model) => {
      const size = perSample(model);
      let ds: Dataset | undefined;
      let samples: Float32Array | undefined;
      let count: number;
      if (ext === '.lbds') {
        ds = readLbds(inputPath);
        checkDatasetFits(model, ds, inputPath);
        count = Math.min(countLimit, ds.count);
      } else {
        samples = readF32(inputPath, size);
        count = Math.min(countLimit, samples.length / size);
      }
      const outputs = model.outputs.map((o) => ({
        name: o.name,
        size: o.sampleShape.reduce((a, b) => a * b, 1),
        parts: [] as Float32Array[],
      }));
      for (let start = 0; start < count; start += batch) {
        const n = Math.min(batch, count - start);
        const input = ds ? toInput(ds, start, n) : samples!.subarray(start * size, (start + n) * size);
        const result = model.runSync(input);
        for (const o of outputs) o.parts.push(result[o.name].data);
      }
      const joined = outputs.map((o) => {
        const all = new Float32Array(count * o.size);
        let at = 0;
        for (const part of o.parts) {
          all.set(part, at);
          at += part.length;
        }
        return { ...o, all };
      });
      if (outputPath !== undefined) {
        const total = joined.reduce((s, o) => s + o.all.length, 0);
        const bytes = new Uint8Array(total * 4);
        let at = 0;
        for (const o of joined) {
          bytes.set(encodeF32(o.all), at);
          at += o.all.length * 4;
        }
        writeFileSync(outputPath, bytes);
        io.stdout.write(
          `wrote ${outputPath}: ${joined.map((o) => `${o.name} [${count}, ${model.outputs.find((m) => m.name === o.name)!.sampleShape.join(', ')}]`).join(', then ')} as float32 (${formatInt(bytes.length)} bytes)\n`,
        );
        return 0;
      }
      const first = joined[0];
      const rows: string[][] = [];
      let correct = 0;
      for (let i = 0; i < count; ++i) {
        const predicted = argmax(first.all, i * first.size, first.size);
        const row = [String(i), String(predicted)];
        if (ds) {
          row.push(String(ds.labels[i]));
          if (predicted === ds.labels[i]) ++correct;
        }
        rows.push(row);
      }
      io.stdout.write(
        formatTable(ds ? ['sample', `argmax ${first.name}`, 'label'] : ['sample', `argmax ${first.name}`], rows),
      );
      if (ds) io.stdout.write(`accuracy ${formatPercent(correct / count)} (${correct}/${count})\n`);
      return 0;
    });
  },
};
