// fconv.h: float32 convolution and dense layers (the stem, downsample and classifier layers a
// binary network keeps in float), NHWC activations and OHWI weights, zero padding, with the bias
// and a clamp fused:
//   out[c] = clamp(bias[c] + sum_k x_k * w[c][k], lo, hi)
// The sums run in float32 in an order (and with fused multiply-adds) that depends on the ISA, so
// results agree across ISAs within float rounding of the sum, not bit for bit. On one ISA they do
// not depend on the thread count.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "lowbit/aligned_buffer.h"
#include "lowbit/conv.h"

namespace lowbit {

// Packed weights: per group, the output channels in panels of 16 (the last zero-padded), each
// panel K-major (K = kh * kw * in_channels_per_group rows of 16 floats; src/float/kernels.h).
// Depthwise layers (one input and one output channel per group) hold them tap-major instead,
// [tap][channel], as the input pixels hold their channels.
struct FConv2dWeights {
  size_t out_channels = 0, kernel_h = 0, kernel_w = 0, in_channels_per_group = 0, groups = 1;
  size_t k = 0;                 // the reduction length kh * kw * in_channels_per_group
  size_t panels_per_group = 0;  // ceil(out_channels / groups / 16)
  size_t panel_floats = 0;      // k * 16
  bool depthwise = false;
  AlignedBuffer<float> data;  // groups * panels_per_group panels, group-major; or depthwise taps
  size_t taps() const { return kernel_h * kernel_w; }
  size_t bytes() const { return data.size() * sizeof(float); }
};

// ohwi: out_c x kh x kw x in_c_per_group floats, packed once (at load) for every later call.
std::shared_ptr<FConv2dWeights> pack_fconv2d_weights(const float* ohwi, size_t out_c, size_t kh, size_t kw,
                                                     size_t in_c_per_group, size_t groups);

struct FEpilogue {
  const float* bias = nullptr;          // per output channel; null = 0
  float lo = -INFINITY, hi = INFINITY;  // lo <= hi (not NaN); a NaN sum stays NaN
};

// Validates the geometry against the weights (channels, pads, every buffer size) and returns it;
// throws Error(Shape / Range).
Conv2dShape fconv2d_shape(size_t batch, size_t in_h, size_t in_w, size_t in_c, const FConv2dWeights& w,
                          const Conv2dParams& p);

// input: batch x in_h x in_w x in_c floats; output: batch x out_h x out_w x out_c floats. Padded
// taps read 0 (p.pad_value is ignored). Parallel over the shared thread pool.
void fconv2d(const float* input, const Conv2dShape& s, const FConv2dWeights& w, const Conv2dParams& p,
             const FEpilogue& e, float* output);

// fconv2d with the sign of the next binary layer fused: instead of the floats y, their sign bits,
// out_c per pixel in words_for_bits(out_c) uint64 words (binary.h's packed layout, tail bits 0):
// bit c = (y[c] < threshold[c]) (a NaN y gives 0). threshold: out_c floats.
void fconv2d_sign(const float* input, const Conv2dShape& s, const FConv2dWeights& w, const Conv2dParams& p,
                  const FEpilogue& e, const float* threshold, uint64_t* bits);

// Dense: input rows x in_c, output rows x out_c; weights packed as [O, I] (a 1x1 kernel, one group).
void fdense(const float* input, size_t rows, size_t in_c, const FConv2dWeights& w, const FEpilogue& e, float* output);

}  // namespace lowbit
