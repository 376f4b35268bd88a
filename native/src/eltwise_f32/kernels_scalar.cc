// kernels_scalar.cc: portable f32 element-wise kernels, one value at a time; the path on CPUs
// without SIMD support (ref stays an independent copy on purpose).
#include "eltwise_f32/kernels.h"

namespace lowbit::scalar {

void add_f32(size_t n, const float* a, const float* b, float lo, float hi, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = clamp_value(a[i] + b[i], lo, hi);
}

void clamp_f32(size_t n, const float* x, float lo, float hi, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = clamp_value(x[i], lo, hi);
}

void prelu_f32(size_t n, const float* x, const float* slope, const float* input_bias, const float* output_bias,
               float* out) {
  for (size_t c = 0; c < n; ++c) out[c] = prelu_value(x[c], slope[c], input_bias[c], output_bias[c]);
}

void max_taps_f32(size_t n, const float* const* src, size_t taps, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = max_taps_value(src, taps, i);
}

void avg_taps_f32(size_t n, const float* const* src, size_t taps, float d, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = avg_taps_value(src, taps, i, d);
}

void div_f32(size_t n, const float* x, float d, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = x[i] / d;
}

void sign_f32(size_t n, const float* x, const float* threshold, uint64_t* out) {
  for (size_t w = 0; w * 64 < n; ++w) {
    const size_t count = n - w * 64 < 64 ? n - w * 64 : 64;
    uint64_t word = 0;
    for (size_t j = 0; j < count; ++j) word |= static_cast<uint64_t>(x[w * 64 + j] < threshold[w * 64 + j]) << j;
    out[w] = word;
  }
}

}  // namespace lowbit::scalar
