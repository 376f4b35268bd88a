/**
 * The main job (`npm start`): a binary ResNet-18-shaped stack of 3x3 binary conv layers (random
 * weights from a fixed seed) run end to end on packed activations. Each layer thresholds its
 * output back to packed bits for the next one (the BN-sign epilogue), so nothing is unpacked
 * between layers. Prints per-layer median latency and Gop/s (2 x MACs / time).
 *
 * Usage: npm start [-- --threads N] [--runs N]
 */
import {
  bconv2d,
  bitpack,
  isa,
  packBinaryConv2dWeights,
  setThreads,
  tensor,
  threads,
  thresholdsFromAffine,
  type PackedBinaryWeights,
  type Tensor,
} from '../lib/index.js';
import { median, random } from '../bench/harness.js';

interface Layer {
  name: string;
  inC: number;
  outC: number;
  size: number;
  stride: number;
}

// ResNet-18's 3x3 convolutions (stem and 1x1 shortcuts excluded), batch 1, 56x56 after the stem.
function resnet18Layers(): Layer[] {
  const layers: Layer[] = [];
  const stages = [
    { c: 64, size: 56 },
    { c: 128, size: 28 },
    { c: 256, size: 14 },
    { c: 512, size: 7 },
  ];
  stages.forEach(({ c, size }, s) => {
    for (let i = 0; i < 4; ++i) {
      const down = s > 0 && i === 0;
      layers.push({
        name: down ? `conv3x3s2-c${c / 2}-${size * 2}` : `conv3x3-c${c}-${size}`,
        inC: down ? c / 2 : c,
        outC: c,
        size: down ? size * 2 : size,
        stride: down ? 2 : 1,
      });
    }
  });
  return layers;
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 1) {
    console.error(`${name}: expected a positive integer, got ${process.argv[i + 1]}`);
    process.exit(2);
  }
  return v;
}

function main(): void {
  setThreads(arg('--threads', threads()));
  const runs = arg('--runs', 30);
  const uniform = random(18);
  const rand = () => uniform() - 0.5;
  const layers = resnet18Layers().map((l) => {
    const weights = tensor('f32', [l.outC, 3, 3, l.inC], Float32Array.from({ length: l.outC * 9 * l.inC }, rand));
    // A folded batch norm per channel, turned into the integer threshold of the sign epilogue.
    const scale = Float32Array.from({ length: l.outC }, () => 0.5 + rand());
    const bias = Float32Array.from({ length: l.outC }, () => 8 * rand());
    return {
      ...l,
      w: packBinaryConv2dWeights(weights) as PackedBinaryWeights,
      output: { kind: 'b1' as const, ...thresholdsFromAffine(scale, bias) },
    };
  });

  const input = bitpack(tensor('f32', [1, 56, 56, 64], Float32Array.from({ length: 56 * 56 * 64 }, rand)));
  const times = layers.map(() => [] as number[]);
  for (let r = 0; r < runs + 3; ++r) {
    let x: Tensor<'b1'> = input;
    layers.forEach((l, i) => {
      const t0 = process.hrtime.bigint();
      x = bconv2d(x, l.w, { strides: l.stride, padding: { pads: [1, 1, 1, 1], value: 'one' }, output: l.output });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r >= 3) times[i].push(ms); // the first runs warm caches and scratch buffers
    });
  }

  console.log(
    `lowbit binary ResNet-18 3x3 stack, batch 1, isa=${isa()}, threads=${threads()}, median of ${runs} runs\n`,
  );
  console.log('layer                     out        ms     Gop/s');
  let totalMs = 0;
  let totalOps = 0;
  layers.forEach((l, i) => {
    const out = l.size / l.stride;
    const ops = 2 * out * out * l.outC * 9 * l.inC;
    const ms = median(times[i]);
    totalMs += ms;
    totalOps += ops;
    console.log(
      `${String(i + 1).padStart(2)} ${l.name.padEnd(20)} ${`${out}x${out}x${l.outC}`.padEnd(10)} ${ms.toFixed(3).padStart(7)} ${(ops / ms / 1e6).toFixed(0).padStart(9)}`,
    );
  });
  console.log(
    `\ntotal                                ${totalMs.toFixed(3).padStart(7)} ${(totalOps / totalMs / 1e6).toFixed(0).padStart(9)}`,
  );
}

main();
