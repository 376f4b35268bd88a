// elementwise_f32.h: the graph's operators on float activations (f32 `hwc` tensors and rank 1-2
// rows): layout transposes, residual add, clamp, RPReLU, pools, concat and the sign that feeds the
// next binary layer. The arithmetic is the f32 kernel family (eltwise_f32/kernels.h), vectorized
// per ISA with the same bits on every ISA; these drivers split the work over the worker pool.
// Arguments are trusted (the model loader validated them); `rows` counts pixels (or vectors) of
// `c` channels, all samples together.
#pragma once
#include <cstddef>
#include <cstdint>

#include "lowbit/conv.h"

namespace lowbit {

// f32 [batch][c][hw] -> [batch][hw][c] (the inverse is transpose_hwc_to_chw of elementwise.h).
void transpose_chw_to_hwc(const float* x, size_t batch, size_t c, size_t hw, float* out);

// out = clamp(a + b) over n values (lo / hi +-infinity: no clamp).
void add_f32(const float* a, const float* b, size_t n, float lo, float hi, float* out);
// out = clamp(x) over n values.
void clamp_f32(const float* x, size_t n, float lo, float hi, float* out);
// Per channel: v = x - input_bias[c]; out = (v >= 0 ? v : v * slope[c]) + output_bias[c].
void prelu_f32(const float* x, size_t rows, size_t c, const float* slope, const float* input_bias,
               const float* output_bias, float* out);
// Per channel: out = clamp(x * scale[c] + bias[c]), a multiply then an add (never fused).
void affine_f32(const float* x, size_t rows, size_t c, const float* scale, const float* bias, float lo, float hi,
                float* out);
// b1 rows x ceil(c / 64) words: bit = (x < threshold[ch]); NaN gives 0.
void sign_f32(const float* x, size_t rows, size_t c, const float* threshold, uint64_t* out);

// Pools on [batch][h][w][c] (s as bmaxpool2d_shape gives it). Max: the first tap inside the image,
// then m = x > m ? x : m tap by tap in row-major order (padding never wins). Average: 0 plus each
// tap inside the image in row-major order, divided by the count (kernel_h x kernel_w with
// count_include_pad, else the taps inside).
void maxpool_f32(const float* x, const Conv2dShape& s, const Pool2dParams& p, float* out);
void avgpool_f32(const float* x, const Conv2dShape& s, const Pool2dParams& p, bool count_include_pad, float* out);
// [batch][h x w][c] -> [batch][c]: 0 plus each pixel in order, divided by h x w.
void global_avgpool_f32(const float* x, size_t batch, size_t hw, size_t c, float* out);

// Concatenation along the last dimension: rows of parts[i] (width[i] floats each) side by side.
void concat_f32(const float* const* parts, const size_t* width, size_t count, size_t rows, float* out);

}  // namespace lowbit
