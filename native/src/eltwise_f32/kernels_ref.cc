// kernels_ref.cc: reference f32 element-wise kernels, written to be obviously correct. They define
// the results; every ISA path must match them exactly. Used by tests only.
#include "common/checked_math.h"
#include "eltwise_f32/kernels.h"

namespace lowbit::ref {

void add_f32(size_t n, const float* a, const float* b, float lo, float hi, float* out) {
  for (size_t i = 0; i < n; ++i) {
    const float v = a[i] + b[i];
    out[i] = v < lo ? lo : (v > hi ? hi : v);
  }
}

void clamp_f32(size_t n, const float* x, float lo, float hi, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = x[i] < lo ? lo : (x[i] > hi ? hi : x[i]);
}

void prelu_f32(size_t n, const float* x, const float* slope, const float* input_bias, const float* output_bias,
               float* out) {
  for (size_t c = 0; c < n; ++c) {
    const float v = x[c] - input_bias[c];
    const float y = v >= 0 ? v : v * slope[c];
    out[c] = y + output_bias[c];
  }
}

void max_taps_f32(size_t n, const float* const* src, size_t taps, float* out) {
  for (size_t i = 0; i < n; ++i) {
    float m = src[0][i];
    for (size_t t = 1; t < taps; ++t) m = src[t][i] > m ? src[t][i] : m;
    out[i] = m;
  }
}

void avg_taps_f32(size_t n, const float* const* src, size_t taps, float d, float* out) {
  for (size_t i = 0; i < n; ++i) {
    float v = 0.0f;
    for (size_t t = 0; t < taps; ++t) v = v + src[t][i];
    out[i] = v / d;
  }
}

void div_f32(size_t n, const float* x, float d, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = x[i] / d;
}

void sign_f32(size_t n, const float* x, const float* threshold, uint64_t* out) {
  const size_t words = words_for_bits(n);
  for (size_t w = 0; w < words; ++w) out[w] = 0;
  for (size_t c = 0; c < n; ++c) out[c / 64] |= static_cast<uint64_t>(x[c] < threshold[c]) << (c % 64);
}

}  // namespace lowbit::ref
