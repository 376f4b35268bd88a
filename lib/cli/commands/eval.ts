/** `lowbit eval`: top-1 accuracy on a labelled dataset, and the latency of the runs. */
import { extname } from 'node:path';
import { readFashionMnist, readLbds, toInput } from '../../data.js';
import { median } from '../../timing.js';
import { inputFile, intOption, UsageError, type Command } from '../args.js';
import { checkDatasetFits, engine, evaluateAccuracy, lowbitPredict, withModel } from '../evaluate.js';
import { formatInt, formatPercent, plural, Progress } from '../format.js';

const USAGE = `usage: lowbit eval model.lowbit --dataset fashion-mnist|FILE.lbds [options]

Top-1 accuracy on a labelled dataset, and the latency of the runs.
  --dataset NAME      fashion-mnist (the 10000 test images of Debian's dataset-fashion-mnist)
                      or an .lbds file (required)
  --count N           the first N images only
  --batch B           images per run (default 64)
`;

export const evaluate: Command = {
  usage: USAGE,
  options: { dataset: { type: 'string' }, count: { type: 'string' }, batch: { type: 'string' } },
  file: 'a .lowbit model file',
  async run(args, io) {
    const name = args.string('dataset');
    if (!name) throw new UsageError('eval: missing --dataset fashion-mnist|FILE.lbds', 'eval');
    if (name !== 'fashion-mnist' && extname(name).toLowerCase() !== '.lbds')
      throw new UsageError(`--dataset: expected fashion-mnist or an .lbds file, got '${name}'`, 'eval');
    if (name !== 'fashion-mnist') inputFile(name, 'an .lbds file', 'eval');
    const countLimit = intOption(args.string('count'), '--count', Number.MAX_SAFE_INTEGER, 'eval');
    const batch = intOption(args.string('batch'), '--batch', 64, 'eval');

    const { isa, threads } = await engine();
    return withModel(args.positionals[0], async (model) => {
      const ds = name === 'fashion-mnist' ? readFashionMnist() : readLbds(name);
      checkDatasetFits(model, ds, name);
      const count = Math.min(countLimit, ds.count);
      const predict = lowbitPredict(model);
      predict(toInput(ds, 0, Math.min(batch, count)), Math.min(batch, count)); // warm-up: first-run allocations
      const bar = new Progress(io.stderr, 'eval', count);
      const result = await evaluateAccuracy(predict, ds, { count, batch, progress: (done) => bar.update(done) });
      bar.finish();
      const label = name === 'fashion-mnist' ? 'Fashion-MNIST t10k' : name;
      io.stdout.write(
        `accuracy ${formatPercent(result.correct / result.total)} (${result.correct}/${result.total}) on ${label}\n`,
      );
      const perImage = result.totalMs / result.total;
      const batchLine =
        result.batchMs.length > 0
          ? `median ${median(result.batchMs).toFixed(3)} ms per batch of ${batch} (min ${result.batchMs.reduce((a, b) => Math.min(a, b)).toFixed(3)}), `
          : '';
      io.stdout.write(
        `latency: ${batchLine}${perImage.toFixed(4)} ms per image, ${formatInt(1000 / perImage)} images/s ` +
          `(${result.total} images in ${(result.totalMs / 1000).toFixed(2)} s, isa ${isa()}, ${plural(threads(), 'thread')})\n`,
      );
      return 0;
    });
  },
};
