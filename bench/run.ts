/**
 * `npm run bench -- [suite ...] [--quick] [--json FILE]`: runs comparison suites in one process.
 * A new suite is a sibling module exporting a `Suite` as `suite`, listed once in SUITES. Suites are
 * imported only when they run, so usage errors print even without the addon or the peers installed.
 */
import { writeFileSync } from 'node:fs';
import type { Row, Suite } from './harness.js';

interface SuiteEntry {
  name: string;
  description: string;
  load: () => Promise<{ suite: Suite }>;
}

const SUITES: readonly SuiteEntry[] = [
  {
    name: 'binary',
    description:
      'lowbit bconv2d (default ISA, scalar) vs onnxruntime-node Conv fp32 / QLinearConv int8, ResNet-18 3x3 layers, 1 and 2 threads',
    load: () => import('./binary.js'),
  },
  {
    name: 'binary-small',
    description:
      'the same on binary convs with 16-128 channels: CIFAR ResNet-20, VGG-Small, the Fashion-MNIST CNN at batch 64',
    load: () => import('./binary.js').then((m) => ({ suite: m.smallSuite })),
  },
  {
    name: 'int',
    description:
      'lowbit qconv2d/qdense W8A8, W4A8, W4A4 vs onnxruntime-node QLinearConv/QLinearMatMul int8 and Conv/MatMul fp32, ResNet-18 3x3 layers, GEMV, GEMM, 1 and 2 threads',
    load: () => import('./int.js'),
  },
  {
    name: 'float',
    description:
      'lowbit fconv2d/fdense vs onnxruntime-node Conv/MatMul fp32: ImageNet and CIFAR stems, downsample 1x1 convs, classifiers at batch 1 and 16, 1 and 2 threads',
    load: () => import('./float.js'),
  },
  {
    name: 'mst',
    description:
      'lowbit bconv2d through MST schedules vs dense, random weights and controlled channel distances d/K 2-20%, ResNet-18 3x3 layers, 1 and 2 threads',
    load: () => import('./mst.js'),
  },
  {
    name: 'deploy',
    description:
      'whole binary networks (Bi-Real Net-18, ReActNet-18, BiBench ResNet-18/34, ResNet-20, VGG-Small from tools/bnn_zoo.py) vs onnxruntime-node fp32, batch 1 and 16',
    load: () => import('./deploy.js'),
  },
  {
    name: 'serve',
    description:
      'lowbit serve (KServe v2 over HTTP) vs a node:http + onnxruntime-node fp32 server on the ONNX each model was converted from: req/s, p50/p99 at 1, 16, 64 connections, batching on and off',
    load: () => import('./serve.js'),
  },
];

function usage(): string {
  return [
    'usage: npm run bench -- [suite ...] [--quick] [--json FILE]',
    '',
    'suites (default: all):',
    ...SUITES.map((s) => `  ${s.name.padEnd(10)} ${s.description}`),
    '',
    'options:',
    '  --quick      short timing (under a minute per suite)',
    '  --json FILE  also write all rows as JSON: [{ workload, impl, threads, median_ms, gops, min_ms, runs }]',
    '  --help       this text',
  ].join('\n');
}

function fail(message: string): never {
  console.error(`bench: ${message}\n\n${usage()}`);
  process.exit(2);
}

function parse(args: readonly string[]): { suites: SuiteEntry[]; quick: boolean; json?: string } {
  const suites: SuiteEntry[] = [];
  let quick = false;
  let json: string | undefined;
  for (let i = 0; i < args.length; ++i) {
    const arg = args[i];
    if (arg === '--help' || arg === '-h') {
      console.log(usage());
      process.exit(0);
    } else if (arg === '--quick') {
      quick = true;
    } else if (arg === '--json' || arg.startsWith('--json=')) {
      json = arg === '--json' ? args[++i] : arg.slice('--json='.length);
      if (!json || json.startsWith('--')) fail('--json needs a file name');
    } else if (arg.startsWith('-')) {
      fail(`unknown option ${arg}`);
    } else {
      const suite = SUITES.find((s) => s.name === arg);
      if (!suite) fail(`unknown suite '${arg}'`);
      if (!suites.includes(suite)) suites.push(suite);
    }
  }
  return { suites: suites.length > 0 ? suites : [...SUITES], quick, json };
}

async function main(): Promise<void> {
  const { suites, quick, json } = parse(process.argv.slice(2));
  const start = performance.now();
  const rows: Row[] = [];
  for (const entry of suites) rows.push(...(await (await entry.load()).suite.run({ quick })));
  if (json) {
    writeFileSync(json, JSON.stringify(rows, null, 1) + '\n');
    console.log(`wrote ${rows.length} rows to ${json}`);
  }
  console.log(`total ${((performance.now() - start) / 1000).toFixed(1)} s`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
