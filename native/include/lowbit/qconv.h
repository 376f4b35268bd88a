// qconv.h: integer convolution and dense layers (W8 or W4 weights, 8-bit activations, int32
// accumulation, dyadic requantization), NHWC activations and OHWI weights. Integer only: no float
// on the run path.
//
// Per output pixel and channel c, with x the input bytes read as int8 or uint8 and z_x its zero point:
//   acc[c] = bias[c] + sum_k (x_k - z_x) * w[c][k]               (exact int32)
//   out[c] = clamp(((int64)acc[c] * mult[c] + 2^(shift[c]-1)) >> shift[c] + z_out, lo, hi)   (8-bit)
//   or out[c] = acc[c]                                             (s32 output)
// Padded taps read z_x, so they contribute exactly 0. INT4 activations are 8-bit tensors whose values
// a previous layer clamped to [0, 15] or [-8, 7].
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "lowbit/aligned_buffer.h"
#include "lowbit/conv.h"

namespace lowbit {

// Packed weights. Generic layers hold 16-channel panels (src/integer/kernels.h) per group;
// depthwise layers (one input channel per group, any number of output channels per group: a
// channel multiplier) hold the weights tap-major, [tap][channel], int8 for 8- and 4-bit weights.
struct QConv2dWeights {
  // 8: values in [-128, 127]; 7: values in [-64, 64], stored as 8 (exact vpmaddubsw on AVX2 without
  // VNNI); 4: values in [-8, 7].
  int bits = 8;
  size_t out_channels = 0, kernel_h = 0, kernel_w = 0, in_channels_per_group = 0, groups = 1;
  size_t k = 0, kp = 0;  // reduction length kh * kw * in_channels_per_group, and padded to 4
  size_t panels_per_group = 0, panel_bytes = 0;
  bool depthwise = false;
  AlignedBuffer<uint8_t> data;   // panels (group-major) or depthwise taps
  std::vector<int32_t> wsum;     // per output channel: sum of its weights (zero-point folding)
  std::vector<int64_t> l1;       // per output channel: sum of |w| (the int32 accumulator bound)
  std::vector<int16_t> small_k;  // one group and k <= 32 (a first layer on 1-3 channel images): the
                                 // weights as k rows of small_k_stride values, for the per-pixel path
  size_t small_k_stride = 0;     // out_channels rounded up to a multiple of 16
  size_t taps() const { return kernel_h * kernel_w; }
  size_t bytes() const { return data.size(); }
};

// ohwi: out_c x kh x kw x in_c_per_group int8 values. bits 7 needs every value in [-64, 64], bits 4
// in [-8, 7] (Error(Range) naming the first value outside).
// k = kh * kw * in_c_per_group must be at most 65536 (kQMaxK), which keeps the int32 sums exact.
std::shared_ptr<QConv2dWeights> pack_qconv2d_weights(const int8_t* ohwi, size_t out_c, size_t kh, size_t kw,
                                                     size_t in_c_per_group, size_t groups, int bits);

struct QInput {
  bool is_signed = false;  // int8 (true) or uint8 (false) bytes
  int32_t zero_point = 0;  // in the dtype's range
};

struct QEpilogue {
  bool requantize = true;          // false: s32 output (acc itself)
  const int32_t* bias = nullptr;   // per channel int32, at the accumulator's scale; null = 0
  const int32_t* mult = nullptr;   // per channel, != INT32_MIN
  const uint8_t* shift = nullptr;  // per channel, in [0, 62]
  bool out_signed = true;          // int8 (true) or uint8 (false) output
  int32_t zero_point = 0;          // output zero point, added after the shift, in the output type's range
  int32_t lo = -128, hi = 127;     // inside the output type's range
};

// A QEpilogue that owns its per-channel arrays, for whoever keeps one beyond a call (a model's node,
// an async call's job); view() points into them (bias: null when empty, i.e. 0).
struct OwnedQEpilogue {
  bool requantize = true;
  std::vector<int32_t> bias, mult;
  std::vector<uint8_t> shift;
  bool out_signed = true;
  int32_t zero_point = 0;
  int32_t lo = -128, hi = 127;

  QEpilogue view() const {
    QEpilogue e;
    e.requantize = requantize;
    e.bias = bias.empty() ? nullptr : bias.data();
    e.mult = mult.data(), e.shift = shift.data();
    e.out_signed = out_signed, e.zero_point = zero_point, e.lo = lo, e.hi = hi;
    return e;
  }
};

// Checks the epilogue for the weights: ranges, and that |acc| cannot leave int32 for any input
// (255 * l1[c] + |bias[c]| <= 2^31 - 1). Throws Error(Range).
void validate_qepilogue(const QEpilogue& e, const QConv2dWeights& w, const QInput& in);

Conv2dShape qconv2d_shape(size_t batch, size_t in_h, size_t in_w, size_t in_c, const QConv2dWeights& w,
                          const Conv2dParams& p);

// input: batch x in_h x in_w x in_c bytes; output: N*OH*OW x out_c bytes (8-bit) or int32 values.
void qconv2d(const uint8_t* input, const Conv2dShape& s, const QConv2dWeights& w, const Conv2dParams& p,
             const QInput& in, const QEpilogue& e, void* output);

// Validates a dense layer (weights packed as [O, I]: 1x1, one group; in_c against the weights) and
// returns its shape as a 1x1 conv over `rows` pixels; throws Error(Shape) on mismatch.
Conv2dShape qdense_shape(size_t rows, size_t in_c, const QConv2dWeights& w);

// Dense: input rows x in_c; weights packed as a 1x1 conv with one group.
void qdense(const uint8_t* input, size_t rows, size_t in_c, const QConv2dWeights& w, const QInput& in,
            const QEpilogue& e, void* output);

}  // namespace lowbit
