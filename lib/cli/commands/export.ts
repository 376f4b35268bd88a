/** `lowbit export`: a .lowbit integer model as an ONNX QDQ model (the int8 twin for onnxruntime). */
import { writeFileSync } from 'node:fs';
import { exportOnnxQdq } from '../../onnx/export-qdq.js';
import { outputFile, UsageError, type Command } from '../args.js';
import { formatBytes, formatInt } from '../format.js';

const USAGE = `usage: lowbit export model.lowbit --onnx-qdq -o model.qdq.onnx

Writes a .lowbit integer model (W8A8, W4A8, mixed, with float layers) as an ONNX QDQ model:
QuantizeLinear / DequantizeLinear with each tensor's scale and zero point around float Conv / Gemm /
Add / pools, int8 weights with per-channel scales, int32 biases. onnxruntime runs the same
quantization (its optimizer fuses the pattern into QLinearConv and friends): each layer agrees with
lowbit's within one quantization step. Inputs and outputs are the model's (NCHW images). Models
with binary (1-bit) layers have no QDQ form.
  --onnx-qdq                  the format (required; the only one)
  -o, --output FILE           the .onnx file to write (required)
`;

export const exportCommand: Command = {
  usage: USAGE,
  options: {
    'onnx-qdq': { type: 'boolean' },
    output: { type: 'string', short: 'o' },
  },
  file: 'a .lowbit model file',
  async run(args, io) {
    if (!args.flag('onnx-qdq')) throw new UsageError('export: missing the format: --onnx-qdq', 'export');
    const output = args.string('output');
    if (!output) throw new UsageError('export: missing -o / --output model.qdq.onnx', 'export');
    outputFile(output, '--output', 'export');
    const bytes = exportOnnxQdq(args.positionals[0]);
    writeFileSync(output, bytes);
    io.stdout.write(
      `wrote ${output}: ONNX QDQ, opset 13, ${formatInt(bytes.length)} bytes (${formatBytes(bytes.length)})\n`,
    );
    return 0;
  },
};
