// binary.h: the binary (1-bit) operators of the kernel library: bitpack, packed conv weights,
// bconv2d, bdense and bmaxpool2d. Tensors are NHWC; packed (b1) tensors hold words_for(C) uint64
// words per pixel, bit 1 = -1, sign(0) = +1, zero tail bits (see src/binary/kernels.h).
// Every function validates its sizes (with overflow checks) and throws lowbit::Error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "lowbit/conv.h"

namespace lowbit {

size_t b1_words(size_t channels);  // 64-bit words per packed pixel row

// Packs rows x channels values (NHWC flattened to rows) into rows x b1_words(channels) words.
void bitpack_f32(const float* src, size_t rows, size_t channels, uint64_t* dst);
void bitpack_s8(const int8_t* src, size_t rows, size_t channels, uint64_t* dst);

// Packed weights of a binary conv (OHWI) or dense (OI = O11I) layer. Each output channel is one
// row of kbits = kh * kw * in_channels_per_group bits, laid out tap by tap (row-major over the
// kernel window), each tap's channels contiguous, densely, with zero padding to row_words.
struct BinaryConv2dWeights {
  size_t out_channels = 0, kernel_h = 0, kernel_w = 0, in_channels_per_group = 0, groups = 1;
  size_t kbits = 0, row_words = 0;
  std::vector<uint64_t> bits;     // out_channels x row_words
  std::vector<int32_t> tap_sums;  // [tap][out_channel]: sum of the +-1 weights of that tap,
                                  // for the exact zero-padding border correction
  size_t taps() const { return kernel_h * kernel_w; }
};

std::shared_ptr<BinaryConv2dWeights> pack_binary_conv2d_weights_f32(const float* ohwi, size_t out_c, size_t kh,
                                                                    size_t kw, size_t in_c_per_group, size_t groups);
std::shared_ptr<BinaryConv2dWeights> pack_binary_conv2d_weights_s8(const int8_t* ohwi, size_t out_c, size_t kh,
                                                                   size_t kw, size_t in_c_per_group, size_t groups);

// Weights whose bits are already packed (out_c rows of b1_words(kh * kw * in_c_per_group) words, tap by
// tap, tail bits zero), as a model file stores them. Checks the geometry as the pack functions do,
// then the number of words (Shape) and the tail bits (Range); computes the tap sums.
std::shared_ptr<BinaryConv2dWeights> binary_weights_from_bits(std::vector<uint64_t> bits, size_t out_c, size_t kh,
                                                              size_t kw, size_t in_c_per_group, size_t groups);

// Validates a conv's geometry against its weights and returns the shapes; throws on mismatch.
Conv2dShape bconv2d_shape(size_t batch, size_t in_h, size_t in_w, size_t in_c, const BinaryConv2dWeights& w,
                          const Conv2dParams& p);

enum class OutputKind { F32, S8, B1 };

// The fused epilogue, per output channel c (arrays of out_channels entries, owned by the caller):
//   F32: y * scale[c] + bias[c], clamped to [lo, hi]
//   S8:  clamp(((int64)y * mult[c] + 2^(shift[c]-1)) >> shift[c] + bias[c], lo, hi), no float
//   B1:  bit = (y < threshold[c]) XOR flip[c]: 1 means -1, ready for the next binary layer
// F32 may fuse what follows a binary layer of a Bi-Real / ReActNet block (all optional, in this order):
//   v = y * scale[c] + bias[c]; v = v + residual[pixel][c];
//   u = v - prelu_input_bias[c]; v = (u >= 0 ? u : u * prelu_slope[c]) + prelu_output_bias[c] (RPReLU);
//   out = clamp(v, lo, hi); and sign_output[pixel] bit c = (out < sign_threshold[c]), packed as B1:
// one pass writes the residual stream and the next binary layer's input. residual is an f32 output-
// shaped HWC tensor (not the output itself); the three prelu arrays go together.
struct BinaryEpilogue {
  OutputKind kind = OutputKind::F32;
  const float* scale = nullptr;
  const float* bias_f32 = nullptr;
  float lo = 0, hi = 0;
  const int32_t* mult = nullptr;
  const uint8_t* shift = nullptr;
  const int32_t* bias_s32 = nullptr;
  int32_t qmin = -128, qmax = 127;
  const int32_t* threshold = nullptr;
  const uint8_t* flip = nullptr;
  const float* residual = nullptr;  // F32 fusion, per call
  const float* prelu_slope = nullptr;
  const float* prelu_input_bias = nullptr;
  const float* prelu_output_bias = nullptr;
  const float* sign_threshold = nullptr;
  uint64_t* sign_output = nullptr;  // per call; with sign_threshold

  bool fused() const { return residual || prelu_slope || sign_output; }
};

// Checks the epilogue's values (finite scales, shifts in range, ...) for out_c channels.
void validate_epilogue(const BinaryEpilogue& e, size_t out_c);

// A BinaryEpilogue that owns its per-channel arrays, for whoever keeps one beyond a call (a model's
// node, an async call's job). Only the arrays of `kind` are used; view() points into them.
struct OwnedBinaryEpilogue {
  OutputKind kind = OutputKind::F32;
  std::vector<float> scale, bias_f32;  // F32
  float lo = 0, hi = 0;
  std::vector<int32_t> mult, bias_s32;  // S8
  std::vector<uint8_t> shift;
  int32_t qmin = -128, qmax = 127;
  std::vector<int32_t> threshold;  // B1
  std::vector<uint8_t> flip;
  std::vector<float> prelu_slope, prelu_input_bias, prelu_output_bias, sign_threshold;  // F32 fusion (or empty)

  // The per-call pointers (residual, sign_output) are the caller's to set on the view.
  BinaryEpilogue view() const {
    BinaryEpilogue e;
    e.kind = kind;
    e.scale = scale.data(), e.bias_f32 = bias_f32.data(), e.lo = lo, e.hi = hi;
    e.mult = mult.data(), e.shift = shift.data(), e.bias_s32 = bias_s32.data(), e.qmin = qmin, e.qmax = qmax;
    e.threshold = threshold.data(), e.flip = flip.data();
    if (!prelu_slope.empty())
      e.prelu_slope = prelu_slope.data(), e.prelu_input_bias = prelu_input_bias.data(),
      e.prelu_output_bias = prelu_output_bias.data();
    if (!sign_threshold.empty()) e.sign_threshold = sign_threshold.data();
    return e;
  }
};

// Number of output elements (F32/S8) or words (B1) for `pixels` output pixels of out_c channels.
size_t binary_output_size(OutputKind kind, size_t pixels, size_t out_c);

// input: batch x in_h x in_w x b1_words(in_c) words; output as binary_output_size(kind, N*OH*OW, OC).
void bconv2d(const uint64_t* input, const Conv2dShape& shape, const BinaryConv2dWeights& w, const Conv2dParams& p,
             const BinaryEpilogue& e, void* output);

// Validates a dense layer (rows >= 1, weights packed as [O, I]: 1x1, one group, in_c features) and
// returns its shape as a 1x1 conv over `rows` pixels; throws Error(Shape) on mismatch.
Conv2dShape bdense_shape(size_t rows, size_t in_c, const BinaryConv2dWeights& w);

// Binary dense: input rows x b1_words(in_c); weights packed as a 1x1 conv (kh = kw = 1, groups 1).
void bdense(const uint64_t* input, size_t rows, size_t in_c, const BinaryConv2dWeights& w, const BinaryEpilogue& e,
            void* output);

// Max pool on packed tensors: max of +-1 values = AND of the sign bits. Padding never wins.
Conv2dShape bmaxpool2d_shape(size_t batch, size_t in_h, size_t in_w, size_t channels, const Pool2dParams& p);
void bmaxpool2d(const uint64_t* input, const Conv2dShape& shape, const Pool2dParams& p, uint64_t* output);

}  // namespace lowbit
