// kernels_neon.cc: f32 element-wise kernels for baseline AArch64 NEON, 4 floats per step.
// Compare-and-select rather than vmaxq / vminq, which differ from the scalar expressions on NaN
// and on -0.0 against +0.0.
#if defined(__aarch64__)
#include <arm_neon.h>

#include "common/neon_bits.h"
#include "eltwise_f32/kernels.h"

namespace lowbit::neon {

namespace {

inline float32x4_t clamp4(float32x4_t v, float32x4_t vlo, float32x4_t vhi) {
  return vbslq_f32(vcltq_f32(v, vlo), vlo, vbslq_f32(vcgtq_f32(v, vhi), vhi, v));
}

}  // namespace

void add_f32(size_t n, const float* a, const float* b, float lo, float hi, float* out) {
  const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(out + i, clamp4(vaddq_f32(vld1q_f32(a + i), vld1q_f32(b + i)), vlo, vhi));
  for (; i < n; ++i) out[i] = clamp_value(a[i] + b[i], lo, hi);
}

void clamp_f32(size_t n, const float* x, float lo, float hi, float* out) {
  const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(out + i, clamp4(vld1q_f32(x + i), vlo, vhi));
  for (; i < n; ++i) out[i] = clamp_value(x[i], lo, hi);
}

void prelu_f32(size_t n, const float* x, const float* slope, const float* input_bias, const float* output_bias,
               float* out) {
  size_t c = 0;
  for (; c + 4 <= n; c += 4) {
    const float32x4_t v = vsubq_f32(vld1q_f32(x + c), vld1q_f32(input_bias + c));
    const float32x4_t y = vbslq_f32(vcgezq_f32(v), v, vmulq_f32(v, vld1q_f32(slope + c)));
    vst1q_f32(out + c, vaddq_f32(y, vld1q_f32(output_bias + c)));
  }
  for (; c < n; ++c) out[c] = prelu_value(x[c], slope[c], input_bias[c], output_bias[c]);
}

// Four vectors (16 floats) of a row at a time through the whole window, then one vector, then
// single values: the running values stay in registers, one store per output.
void max_taps_f32(size_t n, const float* const* src, size_t taps, float* out) {
  auto max4 = [](float32x4_t x, float32x4_t m) { return vbslq_f32(vcgtq_f32(x, m), x, m); };
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    float32x4_t m[4];
    for (int j = 0; j < 4; ++j) m[j] = vld1q_f32(src[0] + i + 4 * j);
    for (size_t t = 1; t < taps; ++t)
      for (int j = 0; j < 4; ++j) m[j] = max4(vld1q_f32(src[t] + i + 4 * j), m[j]);
    for (int j = 0; j < 4; ++j) vst1q_f32(out + i + 4 * j, m[j]);
  }
  for (; i + 4 <= n; i += 4) {
    float32x4_t m = vld1q_f32(src[0] + i);
    for (size_t t = 1; t < taps; ++t) m = max4(vld1q_f32(src[t] + i), m);
    vst1q_f32(out + i, m);
  }
  for (; i < n; ++i) out[i] = max_taps_value(src, taps, i);
}

void avg_taps_f32(size_t n, const float* const* src, size_t taps, float d, float* out) {
  const float32x4_t vd = vdupq_n_f32(d);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    float32x4_t v[4];
    for (int j = 0; j < 4; ++j) v[j] = vdupq_n_f32(0.0f);
    for (size_t t = 0; t < taps; ++t)
      for (int j = 0; j < 4; ++j) v[j] = vaddq_f32(v[j], vld1q_f32(src[t] + i + 4 * j));
    for (int j = 0; j < 4; ++j) vst1q_f32(out + i + 4 * j, vdivq_f32(v[j], vd));
  }
  for (; i + 4 <= n; i += 4) {
    float32x4_t v = vdupq_n_f32(0.0f);
    for (size_t t = 0; t < taps; ++t) v = vaddq_f32(v, vld1q_f32(src[t] + i));
    vst1q_f32(out + i, vdivq_f32(v, vd));
  }
  for (; i < n; ++i) out[i] = avg_taps_value(src, taps, i, d);
}

void div_f32(size_t n, const float* x, float d, float* out) {
  const float32x4_t vd = vdupq_n_f32(d);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(out + i, vdivq_f32(vld1q_f32(x + i), vd));
  for (; i < n; ++i) out[i] = x[i] / d;
}

void sign_f32(size_t n, const float* x, const float* threshold, uint64_t* out) {
  auto below4 = [&](size_t c) { return vcltq_f32(vld1q_f32(x + c), vld1q_f32(threshold + c)); };
  auto mask16 = [&](size_t c) {
    return neon_bits::narrow_masks(below4(c), below4(c + 4), below4(c + 8), below4(c + 12));
  };
  neon_bits::pack_bits(
      n, mask16, [&](size_t c) { return x[c] < threshold[c]; }, out);
}

}  // namespace lowbit::neon

#endif  // __aarch64__
