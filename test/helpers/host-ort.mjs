// host-ort.mjs DIR: runs DIR/model.onnx in onnxruntime-node on the feeds DIR/request.json names
// (raw float32 files beside it) and writes the outputs the same way (DIR/response.json). runOrt uses
// it under qemu-aarch64 (scripts/test-arm64.sh), where the arm64 onnxruntime-node crashes at load:
// the reference then runs in the host's node and onnxruntime, with the same session options.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';

const dir = process.argv[2];
const request = JSON.parse(readFileSync(join(dir, 'request.json'), 'utf8'));
const session = await ort.InferenceSession.create(join(dir, 'model.onnx'), request.options);
const feeds = {};
for (const [i, { name, dims }] of request.feeds.entries()) {
  const bytes = readFileSync(join(dir, `in${i}.f32`));
  feeds[name] = new ort.Tensor('float32', new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4), dims);
}
const out = await session.run(feeds);
const outputs = Object.entries(out).map(([name, value], i) => {
  writeFileSync(join(dir, `out${i}.f32`), value.data);
  return name;
});
writeFileSync(join(dir, 'response.json'), JSON.stringify({ outputs }));
await session.release();
