// kernels.h: the contracts of the f32 element-wise kernel family: one row of n floats (one pixel's
// channels, or a run of values) at a time, for the float activations inside a graph (residual adds,
// RPReLU, pools, the sign of the next binary layer). Every ISA implements the same functions in its
// own namespace (lowbit::scalar, lowbit::avx2, lowbit::neon); lowbit::ref holds the versions the
// tests compare against bit for bit. Each value is one IEEE operation after another in the order
// written here (no fused multiply-add: the build uses -ffp-contract=off), and the comparisons are
// spelled so NaN takes the same branch on every ISA: every ISA gives the same bits.
#pragma once
#include <cstddef>
#include <cstdint>

namespace lowbit {

// out[i] = clamp(a[i] + b[i]) with clamp(v) = v < lo ? lo : (v > hi ? hi : v) (NaN stays NaN).
using AddF32Fn = void (*)(size_t n, const float* a, const float* b, float lo, float hi, float* out);
// out[i] = clamp(x[i]), the same clamp.
using ClampF32Fn = void (*)(size_t n, const float* x, float lo, float hi, float* out);
// RPReLU per channel: v = x[c] - input_bias[c]; out[c] = (v >= 0 ? v : v * slope[c]) + output_bias[c].
using PreluF32Fn = void (*)(size_t n, const float* x, const float* slope, const float* input_bias,
                            const float* output_bias, float* out);
// A pool window's reductions over `taps` rows of n floats (src[t] for t < taps, taps >= 1; out
// aliases none of them), the taps in order, accumulated in registers across the window:
// max: m = src[0][i], then m = x > m ? x : m for each later tap (a NaN tap never wins); out[i] = m.
// avg: v = 0, then v = v + src[t][i] for each tap; out[i] = v / d (a true division).
using MaxTapsF32Fn = void (*)(size_t n, const float* const* src, size_t taps, float* out);
using AvgTapsF32Fn = void (*)(size_t n, const float* const* src, size_t taps, float d, float* out);
// out[i] = x[i] / d: an average's sum divided by its count (a true division, not a reciprocal).
using DivF32Fn = void (*)(size_t n, const float* x, float d, float* out);
// Sign to packed bits: bit c = (x[c] < threshold[c]) (NaN gives 0, +1), written to
// words_for_bits(n) words with zero tail bits.
using SignF32Fn = void (*)(size_t n, const float* x, const float* threshold, uint64_t* out);

struct F32Kernels {
  AddF32Fn add;
  ClampF32Fn clamp;
  PreluF32Fn prelu;
  MaxTapsF32Fn max_taps;
  AvgTapsF32Fn avg_taps;
  DivF32Fn div;
  SignF32Fn sign;
};

#define LOWBIT_DECLARE_F32_KERNELS(ns)                                                                            \
  namespace ns {                                                                                                  \
  void add_f32(size_t n, const float* a, const float* b, float lo, float hi, float* out);                         \
  void clamp_f32(size_t n, const float* x, float lo, float hi, float* out);                                       \
  void prelu_f32(size_t n, const float* x, const float* slope, const float* input_bias, const float* output_bias, \
                 float* out);                                                                                     \
  void max_taps_f32(size_t n, const float* const* src, size_t taps, float* out);                                  \
  void avg_taps_f32(size_t n, const float* const* src, size_t taps, float d, float* out);                         \
  void div_f32(size_t n, const float* x, float d, float* out);                                                    \
  void sign_f32(size_t n, const float* x, const float* threshold, uint64_t* out);                                 \
  inline constexpr F32Kernels kF32Kernels = {add_f32,      clamp_f32, prelu_f32, max_taps_f32,                    \
                                             avg_taps_f32, div_f32,   sign_f32};                                  \
  }

LOWBIT_DECLARE_F32_KERNELS(ref)
LOWBIT_DECLARE_F32_KERNELS(scalar)
#if defined(__x86_64__)
LOWBIT_DECLARE_F32_KERNELS(avx2)
#endif
#if defined(__aarch64__)
LOWBIT_DECLARE_F32_KERNELS(neon)
#endif

// The single values, for the scalar loops and the SIMD tails. static: one copy per ISA file.
static inline float clamp_value(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }
static inline float prelu_value(float x, float slope, float input_bias, float output_bias) {
  const float v = x - input_bias;
  return (v >= 0 ? v : v * slope) + output_bias;
}
static inline float max_taps_value(const float* const* src, size_t taps, size_t i) {
  float m = src[0][i];
  for (size_t t = 1; t < taps; ++t) m = src[t][i] > m ? src[t][i] : m;
  return m;
}
static inline float avg_taps_value(const float* const* src, size_t taps, size_t i, float d) {
  float v = 0.0f;
  for (size_t t = 0; t < taps; ++t) v = v + src[t][i];
  return v / d;
}

}  // namespace lowbit
