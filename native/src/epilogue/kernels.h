// kernels.h: the contracts of the output-transform (epilogue) kernel family: one row of n int32
// values y (one output pixel, all its channels: binary dot products or integer accumulators) to the
// layer's output type. Binary convolutions use all three; the integer family (qconv, requantize)
// and the graph's element-wise operators use them too. Every ISA implements the same functions in
// its own namespace (lowbit::scalar, lowbit::avx2, lowbit::neon); lowbit::ref holds the versions
// the tests compare against bit for bit. (Larq Compute Engine's bconv2d/output_transform.h.)
#pragma once
#include <cstddef>
#include <cstdint>

#include "eltwise/kernels.h"  // QAddTerm, rescale32: the residual add's terms
#include "lowbit/quantize.h"  // dyadic_rescale, the one definition of the rescale

namespace lowbit {

// f32:  out[c] = min(max(y[c] * scale[c] + bias[c], lo), hi): a float multiply then a float add,
//       never fused (the build uses -ffp-contract=off), so every ISA rounds the same way.
struct OutputF32Params {
  const float* scale;
  const float* bias;
  float lo, hi;
};
using OutputF32Fn = void (*)(size_t n, const int32_t* y, const OutputF32Params& p, float* out);

// s8, the requantizer (integer only, dyadic rescale with round half up):
//   out[c] = clamp(dyadic_rescale(y[c], mult[c], shift[c]) + bias[c], lo, hi)
//          = clamp(((int64)y[c] * mult[c] + round(shift[c])) >> shift[c] + bias[c], lo, hi)
//   round(e) = e > 0 ? 1 << (e - 1) : 0; >> is an arithmetic (flooring) shift;
//   mult[c] != INT32_MIN (its sign carries a negative scale), shift[c] in [0, 62], lo <= hi both
//   in [-128, 127] (signed output) or both in [0, 255] (unsigned output): the byte written is the
//   low 8 bits of the clamped value, an int8 or a uint8.
// On m rows (output pixels) of n channels: row i's values at y + i * ldy, its bytes at out + i * ldo
// (rows per call, as output_f32_fused, so that the 32-bit test below runs once per tile).
struct RequantizeParams {
  const int32_t* mult;
  const uint8_t* shift;
  const int32_t* bias;
  int32_t lo, hi;
};
using OutputS8Fn = void (*)(size_t m, size_t n, const int32_t* y, size_t ldy, const RequantizeParams& p, int8_t* out,
                            size_t ldo);

// s8 fused with the residual add that is its only reader (a qconv2d then a qadd, eltwise/kernels.h):
// exactly the two operators in sequence. With v the value output_s8 would store the low byte of (an
// int in [lo, hi]) and r row i's residual bytes at residual + i * ldr,
//   out[c] = low byte of clamp(r32(v - self.zero, self.mult, self.shift)
//                              + r32((r[c] ^ res.mask) - res.zero, res.mult, res.shift) + out_zero, lo', hi')
// (lo', hi', out_zero: the add's). That is qadd_value(low byte of v, r[c]) with the conv's term read
// through its type's mask; here self.zero is the conv output's zero point in its own type (v - z =
// (byte ^ mask) - (z as read through mask)), in the range of lo and hi, and self.mask is unused. The
// rest is QAddParams' contract (shifts in [1, 30], res.zero in [0, 255]).
struct ResidualAddParams {
  QAddTerm self, res;
  const uint8_t* residual;
  size_t ldr;
  int32_t out_zero, lo, hi;
};
// Valid terms that no call reads: the SIMD files' vector constants of output_s8 (no add) built from it.
inline constexpr ResidualAddParams kNoResidualAdd = {{0, 0, 0, 1}, {0, 0, 0, 1}, nullptr, 0, 0, 0, 0};
using OutputS8AddFn = void (*)(size_t m, size_t n, const int32_t* y, size_t ldy, const RequantizeParams& p,
                               const ResidualAddParams& r, int8_t* out, size_t ldo);

// b1 (bitpacked, feeds the next binary layer): bit c = (y[c] < threshold[c]) XOR flip[c],
// written to words_for_bits(n) words with zero tail bits. flip[c] is 0 or 1.
struct OutputB1Params {
  const int32_t* threshold;
  const uint8_t* flip;
};
using OutputB1Fn = void (*)(size_t n, const int32_t* y, const OutputB1Params& p, uint64_t* out);

// f32 fused with the rest of a Bi-Real / ReActNet block (each step optional: a null pointer skips it),
// on m rows (output pixels) of n channels, row i's values at y + i * ldy:
//   v = y[c] * scale[c] + bias[c]
//   v = v + residual[c]
//   u = v - input_bias[c]; v = (u >= 0 ? u : u * slope[c]) + output_bias[c]   (RPReLU)
//   out[c] = v < lo ? lo : (v > hi ? hi : v)
//   bits: bit c = (out[c] < threshold[c]) (NaN: 0), words_for_bits(n) words, zero tail bits.
// Row i's residual is at residual + i * residual_stride, its output at out + i * ldo, its bits at
// bits + i * ldbits. One IEEE operation after another, never fused, so every ISA gives the bits of
// the separate operators (bconv2d f32, add, prelu, clamp, sign). Rows per call, not one: with 16
// channels a row is two vectors, and a call and its option tests per row cost as much.
struct OutputF32FusedParams {
  const float* scale;
  const float* bias;
  const float* residual;                          // null: no residual add
  const float *slope, *input_bias, *output_bias;  // slope null: no RPReLU
  float lo, hi;
  const float* threshold;  // null: no bits
  size_t residual_stride;
};
using OutputF32FusedFn = void (*)(size_t m, size_t n, const int32_t* y, size_t ldy, const OutputF32FusedParams& p,
                                  float* out, size_t ldo, uint64_t* bits, size_t ldbits);

struct OutputKernels {
  OutputF32Fn output_f32;
  OutputS8Fn output_s8;
  OutputB1Fn output_b1;
  OutputF32FusedFn output_f32_fused;
  OutputS8AddFn output_s8_add;
};

#define LOWBIT_DECLARE_OUTPUT_KERNELS(ns)                                                                              \
  namespace ns {                                                                                                       \
  void output_f32(size_t n, const int32_t* y, const OutputF32Params& p, float* out);                                   \
  void output_s8(size_t m, size_t n, const int32_t* y, size_t ldy, const RequantizeParams& p, int8_t* out,             \
                 size_t ldo);                                                                                          \
  void output_b1(size_t n, const int32_t* y, const OutputB1Params& p, uint64_t* out);                                  \
  void output_f32_fused(size_t m, size_t n, const int32_t* y, size_t ldy, const OutputF32FusedParams& p, float* out,   \
                        size_t ldo, uint64_t* bits, size_t ldbits);                                                    \
  void output_s8_add(size_t m, size_t n, const int32_t* y, size_t ldy, const RequantizeParams& p,                      \
                     const ResidualAddParams& r, int8_t* out, size_t ldo);                                             \
  inline constexpr OutputKernels kOutputKernels = {output_f32, output_s8, output_b1, output_f32_fused, output_s8_add}; \
  }

LOWBIT_DECLARE_OUTPUT_KERNELS(ref)
LOWBIT_DECLARE_OUTPUT_KERNELS(scalar)
#if defined(__x86_64__)
LOWBIT_DECLARE_OUTPUT_KERNELS(avx2)
// AVX-512 (kernels_avx512.cc, run only where cpu/dispatch.cc finds AVX-512 F+BW+VL): the
// requantizers; the float and bit transforms are AVX2's.
namespace avx512 {
void output_s8(size_t m, size_t n, const int32_t* y, size_t ldy, const RequantizeParams& p, int8_t* out, size_t ldo);
void output_s8_add(size_t m, size_t n, const int32_t* y, size_t ldy, const RequantizeParams& p,
                   const ResidualAddParams& r, int8_t* out, size_t ldo);
inline constexpr OutputKernels kOutputKernels = {avx2::output_f32, output_s8, avx2::output_b1, avx2::output_f32_fused,
                                                 output_s8_add};
}  // namespace avx512
#endif
#if defined(__aarch64__)
LOWBIT_DECLARE_OUTPUT_KERNELS(neon)
#endif

// One value of the s8 transform, for the scalar loops and the SIMD tails.
// static: each ISA file gets its own copy, so no -mavx2 code can be linked into the scalar path.
static inline int32_t requantize_value(int32_t y, int32_t mult, uint8_t shift, int32_t bias, int32_t lo, int32_t hi) {
  const int64_t v = dyadic_rescale(y, mult, shift) + bias;
  return static_cast<int32_t>(v < lo ? lo : (v > hi ? hi : v));
}

// One value of the fused residual add (output_s8_add) from the requantized value v.
static inline int8_t requantize_add_value(int32_t v, uint8_t r, const ResidualAddParams& p) {
  const int32_t sum = rescale32(v - p.self.zero, p.self.mult, p.self.shift) + qadd_term(r, p.res) + p.out_zero;
  return static_cast<int8_t>(clamp_low_byte(sum, p.lo, p.hi));
}

// Whether the SIMD requantizers may use 32-bit lanes on these channels: every shift e >= 33 and
// |bias| <= 2^30. The argument of rescale32_for (eltwise/kernels.h) with the 2^9 there made 2^32:
// P = y * mult is exact (|P| < 2^62) and h = floor(P / 2^32) is the signed high half of the
// product (AVX2: mulhi_epi32); with s = e - 32 in [1, 30], h + 2^(s-1) = floor((P + 2^(e-1)) / 2^32)
// (adding an integer commutes with floor) and floor(floor(x / 2^32) / 2^s) = floor(x / 2^e), so
// (h + 2^(s-1)) >> s = dyadic_rescale(y, mult, e). |h| <= 2^30 and 2^(s-1) <= 2^29, so nothing
// leaves int32, and |result| <= 2^29 + 1 plus |bias| <= 2^30 does not either. NEON's SQDMULH gives
// floor(P / 2^31) (no saturation: mult != INT32_MIN) and SRSHL by -(e - 31) rounds in full precision:
// the same argument with 2^31. Otherwise (small shifts, huge biases) the 64-bit lanes.
// native/test/output_kernels_test.cc checks it against ref at every shift and at the int32 extremes.
// This is the scalar test of channels [c0, n); the SIMD files test 8 channels a step (a call of one
// row must not spend more on the test than on the row).
static inline bool requantize32_ok(size_t c0, size_t n, const RequantizeParams& p) {
  bool ok = true;
  for (size_t c = c0; c < n; ++c) ok &= (p.shift[c] >= 33) & (p.bias[c] >= -(1 << 30)) & (p.bias[c] <= (1 << 30));
  return ok;
}

// One value of the fused f32 transform (before the sign), residual the row's, for the scalar
// loops and the SIMD tails.
static inline float fused_value(const OutputF32FusedParams& p, const float* residual, size_t c, int32_t y) {
  float v = static_cast<float>(y) * p.scale[c] + p.bias[c];
  if (residual) v = v + residual[c];
  if (p.slope) {
    const float u = v - p.input_bias[c];
    v = (u >= 0 ? u : u * p.slope[c]) + p.output_bias[c];
  }
  return v < p.lo ? p.lo : (v > p.hi ? p.hi : v);
}

}  // namespace lowbit
