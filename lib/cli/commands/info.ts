/** `lowbit info`: a model's inputs, outputs, operators, conversion report, size and memory. */
import type { Model } from '../../model/model.js';
import type { Command } from '../args.js';
import { withModel } from '../evaluate.js';
import { formatBytes, formatInt, formatReport, formatTable, reportOf } from '../format.js';

const USAGE = `usage: lowbit info model.lowbit

Prints a model's inputs and outputs, its operators, the converter's per-layer report, its file
size and the activation memory of a run at batch 1 and 64.
`;

export const info: Command = {
  usage: USAGE,
  options: {},
  file: 'a .lowbit model file',
  async run(args, io) {
    const path = args.positionals[0];
    return withModel(path, async (model) => {
      const graph = model.graph();
      const out: string[] = [];
      out.push(
        `${path}: ${formatInt(model.bytes)} bytes (${formatBytes(model.bytes)})${typeof graph.producer === 'string' ? `, written by ${graph.producer}` : ''}\n`,
      );
      const tensorRows = (list: Model['inputs'], kind: string) =>
        list.map((t) => [kind, t.name, `[N, ${t.sampleShape.join(', ')}]`, t.dtype]);
      out.push(
        '\n' +
          formatTable(
            ['', 'name', 'shape', 'dtype'],
            [...tensorRows(model.inputs, 'input'), ...tensorRows(model.outputs, 'output')],
            ['left', 'left', 'left', 'left'],
          ),
      );
      const ops = new Map<string, number>();
      for (const node of graph.nodes) ops.set(node.op, (ops.get(node.op) ?? 0) + 1);
      const opList = [...ops].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
      out.push(`\nnodes: ${graph.nodes.length} (${opList.map(([op, n]) => `${op} ${n}`).join(', ')})\n`);
      const report = reportOf(model.metadata);
      // The report's size was taken before the report itself joined the file: show the file's.
      out.push(
        '\n' +
          (report
            ? formatReport({ ...report, modelBytes: model.bytes })
            : 'no conversion report in the metadata (not written by lowbit convert)\n'),
      );
      const plans = [1, 64].map((batch) => ({ batch, ...model.memoryPlan(batch) }));
      out.push(
        '\n' +
          formatTable(
            ['activations', 'arena', 'unplanned'],
            plans.map((p) => [
              `batch ${p.batch}`,
              `${formatInt(p.arenaBytes)} B (${formatBytes(p.arenaBytes)})`,
              `${formatInt(p.tensorBytes)} B`,
            ]),
          ),
      );
      io.stdout.write(out.join(''));
      return 0;
    });
  },
};
