// Checks the Fashion-MNIST ONNX exports against PyTorch, and lists their graphs.
//
//   node tools/check_onnx.mjs [--graph] [--models DIR] [float binary binary-mst heldout-vgg ...]
//
// For each model: reads DIR/fashion-<name>.onnx and DIR/fashion-<name>.torch.json (written by
// tools/train_fashion.py; for heldout-<x>, DIR/heldout-<x>.* by tools/train_heldout.py), runs the
// ONNX through onnxruntime-node on DIR/fashion-mnist-test-1000.lbds
// (input = pixel / 255, float32 NCHW) and compares ORT's argmax with PyTorch's slice_predictions.
// Disagreements where PyTorch's top1 - top2 margin is <= 1e-4 count as ties (float rounding), any
// other disagreement fails (exit 1). Also prints the op types, and with --graph every node.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const TIE = 1e-4;

function readLbds(file) {
  const b = fs.readFileSync(file);
  if (b.toString('latin1', 0, 4) !== 'LBDS' || b.readUInt32LE(4) !== 1) throw new Error(`${file}: not LBDS v1`);
  const [n, c, h, w] = [8, 12, 16, 20].map((o) => b.readUInt32LE(o));
  const size = n * c * h * w;
  if (b.length !== 24 + size + n) throw new Error(`${file}: ${b.length} bytes, expected ${24 + size + n}`);
  return { n, c, h, w, pixels: b.subarray(24, 24 + size), labels: b.subarray(24 + size) };
}

function tensorShape(t) {
  return `[${(t.dims ?? []).map(Number).join(',')}]`;
}

function tensorValues(t) {
  // float / int64 constants, small ones only (for the listing)
  if (t.floatData?.length) return Array.from(t.floatData);
  if (t.int64Data?.length) return t.int64Data.map(Number);
  const raw = t.rawData;
  if (!raw?.length) return [];
  const buf = Buffer.from(raw);
  if (t.dataType === onnx.TensorProto.DataType.FLOAT)
    return Array.from({ length: buf.length / 4 }, (_, i) => buf.readFloatLE(4 * i));
  if (t.dataType === onnx.TensorProto.DataType.INT64)
    return Array.from({ length: buf.length / 8 }, (_, i) => Number(buf.readBigInt64LE(8 * i)));
  return [];
}

function describeGraph(file, printNodes) {
  const model = onnx.ModelProto.decode(fs.readFileSync(file));
  const g = model.graph;
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const ops = new Map();
  for (const node of g.node) ops.set(node.opType, (ops.get(node.opType) ?? 0) + 1);
  const opset = model.opsetImport.map((o) => `${o.domain || 'ai.onnx'}:${Number(o.version)}`).join(' ');
  console.log(
    `  opset ${opset}; ${g.node.length} nodes; ${g.initializer.length} initializers; ops: ` +
      [...ops].map(([k, v]) => `${k} x${v}`).join(', '),
  );
  // The weights of each Conv / Gemm: binary (one |value| per output channel: alpha_c * +-1), INT8 (every
  // value q * max|w_c| / 127 with integer q), or float.
  const kinds = [];
  for (const node of g.node) {
    if (node.opType !== 'Conv' && node.opType !== 'Gemm') continue;
    const t = inits.get(node.input[1]);
    if (!t) continue;
    const v = tensorValues(t);
    const dims = t.dims.map(Number);
    const transB = node.attribute.find((a) => a.name === 'transB');
    const byColumn = node.opType === 'Gemm' && !(transB && Number(transB.i));
    const rows = byColumn ? dims[1] : dims[0];
    const k = v.length / rows;
    const row = (c) => (byColumn ? Array.from({ length: k }, (_, i) => v[i * rows + c]) : v.slice(c * k, c * k + k));
    let binary = true,
      int8 = true;
    for (let c = 0; c < rows; c++) {
      const r = row(c);
      const mags = new Set(r.map(Math.abs));
      if (mags.size !== 1) binary = false;
      const scale = Math.max(...r.map(Math.abs)) / 127;
      if (!r.every((x) => Math.abs(x / scale - Math.round(x / scale)) < 1e-3)) int8 = false;
    }
    kinds.push(`${node.input[1]} ${binary ? 'binary' : int8 ? 'int8' : 'float'}`);
  }
  console.log(`  weights: ${kinds.join(', ')}`);
  if (!printNodes) return;
  const name = (x) => {
    const t = inits.get(x);
    return t ? `${x}${tensorShape(t)}` : x;
  };
  for (const node of g.node) {
    const attrs = node.attribute.map((a) => {
      if (a.t) {
        const v = tensorValues(a.t);
        return `${a.name}=${tensorShape(a.t)}${v.length <= 4 ? JSON.stringify(v) : ''}`;
      }
      if (a.ints?.length) return `${a.name}=[${a.ints.map(Number)}]`;
      if (a.type === onnx.AttributeProto.AttributeType.FLOAT) return `${a.name}=${a.f}`;
      return `${a.name}=${Number(a.i)}`;
    });
    console.log(
      `    ${node.opType}(${node.input.map(name).join(', ')}) -> ${node.output.join(', ')}` +
        (attrs.length ? `  {${attrs.join(' ')}}` : ''),
    );
  }
}

// Shipped example models are named by their suffix (float -> fashion-float); held-out ones in full.
const stem = (name) => (name.startsWith('heldout-') ? name : `fashion-${name}`);

async function check(name, dir, slice, printNodes) {
  const onnxFile = path.join(dir, `${stem(name)}.onnx`);
  const jsonFile = path.join(dir, `${stem(name)}.torch.json`);
  const ref = JSON.parse(fs.readFileSync(jsonFile, 'utf8'));
  console.log(
    `${stem(name)}: ${onnxFile} (${fs.statSync(onnxFile).size} bytes), torch test accuracy ${ref.test_accuracy}`,
  );
  describeGraph(onnxFile, printNodes);
  const session = await ort.InferenceSession.create(onnxFile, { intraOpNumThreads: 2 });
  const { n, c, h, w, pixels, labels } = slice;
  const input = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) input[i] = pixels[i] / 255;
  const out = await session.run({ input: new ort.Tensor('float32', input, [n, c, h, w]) });
  const logits = out.logits;
  if (logits.dims.join(',') !== `${n},10`) throw new Error(`logits: dims ${logits.dims}`);
  let agree = 0,
    ties = 0,
    bad = 0,
    correct = 0,
    maxDiff = 0;
  for (let i = 0; i < n; i++) {
    const row = logits.data.subarray(10 * i, 10 * i + 10);
    let best = 0;
    for (let k = 1; k < 10; k++) if (row[k] > row[best]) best = k;
    for (let k = 0; k < 10; k++) maxDiff = Math.max(maxDiff, Math.abs(row[k] - ref.slice_logits[i][k]));
    if (best === labels[i]) correct++;
    if (best === ref.slice_predictions[i]) agree++;
    else if (ref.slice_margins[i] <= TIE) ties++;
    else {
      bad++;
      console.log(`  image ${i}: ORT ${best}, torch ${ref.slice_predictions[i]} (margin ${ref.slice_margins[i]})`);
    }
  }
  console.log(
    `  ORT vs torch argmax: ${agree}/${n} agree, ${ties} differ within a tie (margin <= ${TIE}), ` +
      `${bad} differ; max |logit diff| ${maxDiff.toExponential(2)}; ORT slice accuracy ${(correct / n).toFixed(3)}`,
  );
  return bad === 0;
}

const args = process.argv.slice(2);
const printNodes = args.includes('--graph');
const mi = args.indexOf('--models');
const dir = mi >= 0 ? args[mi + 1] : 'models';
const names = args.filter((a, i) => !a.startsWith('--') && (mi < 0 || i !== mi + 1));
const slice = readLbds(path.join(dir, 'fashion-mnist-test-1000.lbds'));
let ok = true;
for (const name of names.length ? names : ['float', 'binary', 'binary-mst', 'heldout-vgg', 'heldout-resnet']) {
  if (!fs.existsSync(path.join(dir, `${stem(name)}.onnx`))) {
    console.log(`${stem(name)}: no ONNX in ${dir}, skipped`);
    continue;
  }
  ok = (await check(name, dir, slice, printNodes)) && ok;
}
process.exit(ok ? 0 : 1);
