/** Conv, Gemm, MatMul -> conv / dense; BatchNormalization -> affine (folded into its layer by simplify.ts). */
import { ModelFormatError, UnsupportedError } from '../../errors.js';
import type { Constant } from '../ir.js';
import { nodeLabel } from '../proto.js';
import { formatDims } from '../tensor.js';
import { paddedDims, toConstant, windowAttrs, withPads, rank4, type CanonRule } from './common.js';

export const LINEAR_RULES: Record<string, CanonRule> = {
  Conv: {
    attrs: ['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides'],
    canonicalize(c, node, ins) {
      const { x, pads: padded } = c.paddedActivation(node, ins, 0);
      rank4(node, x, 'rank-4 NCHW input (2-D convolution)');
      const w = c.constant(node, ins, 1, 'weight');
      if (w.dims.length !== 4)
        throw new UnsupportedError(
          `${nodeLabel(node)}: weight ${formatDims(w.dims)} is not rank 4 (2-D convolution only)`,
        );
      const b = ins[2] ? c.constant(node, ins, 2, 'bias') : undefined;
      if (b && (b.dims.length !== 1 || b.dims[0] !== w.dims[0]))
        throw new ModelFormatError(`${nodeLabel(node)}: bias ${formatDims(b.dims)} for ${w.dims[0]} output channels`);
      const win = withPads(windowAttrs(node, paddedDims(x, padded), w.dims.slice(2)), padded);
      const extent = [win.kernel[0] * win.dilation[0], win.kernel[1] * win.dilation[1]];
      if (win.pads.some((p, i) => p >= extent[i % 2])) {
        throw new UnsupportedError(
          `${nodeLabel(node)}: attribute "pads" is [${win.pads.join(', ')}]${padded.some((p) => p > 0) ? ' (with the preceding Pad folded in)' : ''}; supported: pads smaller than the dilated kernel extent (${extent.join(' x ')})`,
        );
      }
      const groups = node.attrs.int('group', 1);
      if (!Number.isInteger(groups) || groups < 1 || x.dims[1] % groups !== 0 || w.dims[0] % groups !== 0) {
        throw new ModelFormatError(
          `${nodeLabel(node)}: attribute "group" is ${groups}, expected a positive integer dividing the input's ${x.dims[1]} channels and the ${w.dims[0]} output channels`,
        );
      }
      c.emit(node, {
        op: 'conv',
        input: x.tensor,
        weight: toConstant(w.data, [...w.dims]),
        bias: b ? toConstant(b.data, [...b.dims]) : null,
        attrs: { kernel: win.kernel, stride: win.stride, dilation: win.dilation, pads: win.pads, groups },
      });
    },
  },

  Gemm: {
    attrs: ['alpha', 'beta', 'transA', 'transB'],
    canonicalize(c, node, ins) {
      const a = node.attrs;
      const x = c.activation(node, ins, 0);
      if (x.dims.length !== 2)
        throw new UnsupportedError(`${nodeLabel(node)}: input A ${formatDims(x.dims)} must be rank 2 [N, I]`);
      const bt = c.constant(node, ins, 1, 'B');
      const alpha = a.float('alpha', 1);
      const beta = a.float('beta', 1);
      if (a.int('transA', 0) !== 0)
        throw new UnsupportedError(
          `${nodeLabel(node)}: transA = 1 is not supported (attribute "transA"); the activation must be A [N, I]`,
        );
      const transB = a.int('transB', 0) !== 0;
      if (bt.dims.length !== 2)
        throw new ModelFormatError(`${nodeLabel(node)}: B ${formatDims(bt.dims)} is not rank 2`);
      const [inDim, outDim] = transB ? [bt.dims[1], bt.dims[0]] : bt.dims;
      if (inDim !== x.dims[1])
        throw new ModelFormatError(
          `${nodeLabel(node)}: A ${formatDims(x.dims)} and B ${formatDims(bt.dims)} (transB ${Number(transB)}) do not agree`,
        );
      const w = new Float64Array(outDim * inDim);
      for (let o = 0; o < outDim; ++o)
        for (let i = 0; i < inDim; ++i) w[o * inDim + i] = alpha * bt.data[transB ? o * inDim + i : i * outDim + o];
      let bias: Constant | null = null;
      if (ins[2] && beta !== 0) {
        const cTensor = c.constant(node, ins, 2, 'C');
        if (
          cTensor.dims.length > 2 ||
          cTensor.dims.slice(0, -1).some((d) => d !== 1) ||
          (cTensor.dims.length > 0 &&
            cTensor.dims[cTensor.dims.length - 1] !== outDim &&
            cTensor.dims[cTensor.dims.length - 1] !== 1)
        ) {
          throw new UnsupportedError(
            `${nodeLabel(node)}: C ${formatDims(cTensor.dims)} must be a scalar, [${outDim}] or [1, ${outDim}]`,
          );
        }
        const perOut = cTensor.dims.length > 0 && cTensor.dims[cTensor.dims.length - 1] === outDim;
        bias = toConstant(
          Array.from({ length: outDim }, (_, o) => beta * cTensor.data[perOut ? o : 0]),
          [outDim],
        );
      }
      c.emit(node, { op: 'dense', input: x.tensor, weight: toConstant(w, [outDim, inDim]), bias });
    },
  },

  MatMul: {
    attrs: [],
    canonicalize(c, node, ins) {
      const x = c.activation(node, ins, 0);
      if (x.dims.length !== 2)
        throw new UnsupportedError(`${nodeLabel(node)}: input A ${formatDims(x.dims)} must be rank 2 [N, I]`);
      const bt = c.constant(node, ins, 1, 'B');
      if (bt.dims.length !== 2)
        throw new UnsupportedError(`${nodeLabel(node)}: B ${formatDims(bt.dims)} must be a rank-2 constant [I, O]`);
      const [inDim, outDim] = bt.dims;
      if (inDim !== x.dims[1])
        throw new ModelFormatError(
          `${nodeLabel(node)}: A ${formatDims(x.dims)} and B ${formatDims(bt.dims)} do not agree`,
        );
      const w = new Float64Array(outDim * inDim);
      for (let o = 0; o < outDim; ++o) for (let i = 0; i < inDim; ++i) w[o * inDim + i] = bt.data[i * outDim + o];
      c.emit(node, { op: 'dense', input: x.tensor, weight: toConstant(w, [outDim, inDim]), bias: null });
    },
  },

  BatchNormalization: {
    attrs: ['epsilon', 'momentum', 'training_mode'],
    canonicalize(c, node, ins) {
      const a = node.attrs;
      const x = c.activation(node, ins, 0);
      if (a.int('training_mode', 0) !== 0)
        throw new UnsupportedError(
          `${nodeLabel(node)}: training_mode = 1 is not supported (attribute "training_mode"); export the model in eval mode`,
        );
      c.onlyFirstOutput(node);
      const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) =>
        c.constant(node, ins, i, ['', 'scale', 'B', 'mean', 'var'][i]),
      );
      const channels = x.dims[1];
      for (const t of [scale, bias, mean, variance]) {
        if (t.data.length !== channels)
          throw new ModelFormatError(
            `${nodeLabel(node)}: a parameter of ${formatDims(t.dims)} for ${channels} channels`,
          );
      }
      const eps = a.float('epsilon', 1e-5);
      const s = Float64Array.from(scale.data, (v, i) => v / Math.sqrt(variance.data[i] + eps));
      const t = Float64Array.from(bias.data, (v, i) => v - mean.data[i] * s[i]);
      c.affine(node, x, s, t);
    },
  },
};
