// kernels.h: the contracts of the element-wise kernel family: the 8-bit operators that sit between
// the layers of a whole network (integer residual add, sign to packed bits, float <-> 8-bit at the
// boundary, pooling, clamp, b1 unpacking). Every ISA implements the same functions in its own
// namespace (lowbit::scalar, lowbit::avx2, lowbit::neon); lowbit::ref holds the plain versions
// the tests compare against bit for bit.
//
// 8-bit inputs arrive as raw bytes plus an XOR mask, read as the unsigned value u = x ^ mask in
// [0, 255]: mask = 0 for uint8, 0x80 for int8 (u = q + 128), so every kernel works on one
// unsigned range and the operator folds the +128 into the zero point it passes (z + 128).
#pragma once
#include <cstddef>
#include <cstdint>

namespace lowbit {

// An int8 (is_signed) or uint8 tensor with zero point z as the kernels read it: the mask, and z
// in that reading.
struct UnsignedReading {
  uint8_t mask;
  int32_t zero;
};
inline UnsignedReading unsigned_reading(bool is_signed, int32_t zero_point) {
  return {static_cast<uint8_t>(is_signed ? 0x80 : 0), is_signed ? zero_point + 128 : zero_point};
}

// The dyadic rescale of an 8-bit difference v = u - zero in [-255, 255], in 32-bit arithmetic
// (qadd's terms, prelu's slopes):
//   r32(v, mult, shift) = (h + 2^(shift - 1)) >> shift,   h = floor(v * mult / 2^9)
// with mult in [-(2^31 - 1), 2^31 - 1] and shift in [1, 30]. It equals dyadic_rescale(v, mult,
// shift + 9) (rescale32_for below has the proof), and |h| < 2^30, so SIMD code gets h from one
// 32-bit high multiply of v * 2^23 by mult (|v * 2^23| < 2^31) and no value leaves int32:
// |r32| <= 2^29 + 1.
struct QAddTerm {
  uint8_t mask;
  int32_t zero;  // zero point as read through mask: z (uint8) or z + 128 (int8), in [0, 255]
  int32_t mult;
  int32_t shift;
};

// out[i] = low byte of clamp(ta(a[i]) + tb(b[i]) + out_zero, lo, hi), t(u) = r32(u - zero, mult,
// shift) of the input's term; lo <= hi in [-128, 255], |out_zero| <= 255: every sum fits int32.
struct QAddParams {
  QAddTerm a, b;
  int32_t out_zero, lo, hi;
};
using QAddFn = void (*)(size_t n, const uint8_t* a, const uint8_t* b, const QAddParams& p, uint8_t* out);

// Per-channel PReLU: for channel ch of each of `rows` rows of c bytes, v = (x ^ mask) - zero,
//   out = low byte of clamp(r32(v, m, s) + out_zero, lo, hi),
// (m, s) = (mult_pos[ch], shift_pos[ch]) where v >= 0, else (mult_neg[ch], shift_neg[ch]).
struct Prelu8Params {
  const int32_t* mult_pos;
  const int32_t* shift_pos;
  const int32_t* mult_neg;
  const int32_t* shift_neg;
  uint8_t mask;
  int32_t zero, out_zero, lo, hi;
};
using Prelu8Fn = void (*)(size_t rows, size_t c, const uint8_t* x, const Prelu8Params& p, uint8_t* out);

// Sign to packed bits: rows x c bytes -> rows x words_for_bits(c) words,
//   bit ch of row r = ((x[r * c + ch] ^ mask) < threshold),  threshold in [0, 255]
// tail bits zero.
using Sign8Fn = void (*)(size_t rows, size_t c, const uint8_t* x, uint8_t mask, int32_t threshold, uint64_t* out);

// quantize_value (integer/quantize.h) of n contiguous floats: clamp(round_half_even(x / scale) +
// zero_point, lo, hi), NaN -> zero_point, the low byte. A true division, as the scalar rule.
// scale finite > 0, lo <= zero_point <= hi, all in [-128, 255].
using QuantizeF32Fn = void (*)(size_t n, const float* x, float scale, int32_t zero_point, int32_t lo, int32_t hi,
                               uint8_t* out);

// out[i] = float((x[i] ^ mask) - zero) * scale: dequantize_value with zero read through mask.
using Dequantize8Fn = void (*)(size_t n, const uint8_t* x, uint8_t mask, int32_t zero, float scale, float* out);

// The pools' window reductions over `taps` rows of n bytes (src[t] for t < taps, taps >= 1):
// max: dst[i] = max(dst[i], src[t][i] for every t) as int8 (is_signed) or uint8;
// sum: acc[i] += sum over t of (src[t][i] ^ mask), the unsigned reading. The caller bounds the
// taps so the sums stay inside int32.
using MaxTaps8Fn = void (*)(size_t n, const uint8_t* const* src, size_t taps, bool is_signed, uint8_t* dst);
using SumTaps8Fn = void (*)(size_t n, const uint8_t* const* src, size_t taps, uint8_t mask, int32_t* acc);

// out[i] = clamp(x[i], lo, hi) as int8 (is_signed, lo/hi in [-128, 127]) or uint8 ([0, 255]).
using Clamp8Fn = void (*)(size_t n, const uint8_t* x, bool is_signed, int32_t lo, int32_t hi, uint8_t* out);

// One row of c channels of packed bits -> c int8 values: +1 for a 0 bit, -1 for a 1 bit.
using UnpackB1Fn = void (*)(size_t c, const uint64_t* bits, int8_t* out);

struct EltwiseKernels {
  QAddFn qadd;
  Prelu8Fn prelu8;
  Sign8Fn sign8;
  QuantizeF32Fn quantize_f32;
  Dequantize8Fn dequantize8;
  MaxTaps8Fn max_taps8;
  SumTaps8Fn sum_taps8;
  Clamp8Fn clamp8;
  UnpackB1Fn unpack_b1;
};

#define LOWBIT_DECLARE_ELTWISE_KERNELS(ns)                                                                            \
  namespace ns {                                                                                                      \
  void qadd(size_t n, const uint8_t* a, const uint8_t* b, const QAddParams& p, uint8_t* out);                         \
  void prelu8(size_t rows, size_t c, const uint8_t* x, const Prelu8Params& p, uint8_t* out);                          \
  void sign8(size_t rows, size_t c, const uint8_t* x, uint8_t mask, int32_t threshold, uint64_t* out);                \
  void quantize_f32(size_t n, const float* x, float scale, int32_t zero_point, int32_t lo, int32_t hi, uint8_t* out); \
  void dequantize8(size_t n, const uint8_t* x, uint8_t mask, int32_t zero, float scale, float* out);                  \
  void max_taps8(size_t n, const uint8_t* const* src, size_t taps, bool is_signed, uint8_t* dst);                     \
  void sum_taps8(size_t n, const uint8_t* const* src, size_t taps, uint8_t mask, int32_t* acc);                       \
  void clamp8(size_t n, const uint8_t* x, bool is_signed, int32_t lo, int32_t hi, uint8_t* out);                      \
  void unpack_b1(size_t c, const uint64_t* bits, int8_t* out);                                                        \
  inline constexpr EltwiseKernels kEltwiseKernels = {qadd,      prelu8,    sign8,  quantize_f32, dequantize8,         \
                                                     max_taps8, sum_taps8, clamp8, unpack_b1};                        \
  }

LOWBIT_DECLARE_ELTWISE_KERNELS(ref)
LOWBIT_DECLARE_ELTWISE_KERNELS(scalar)
#if defined(__x86_64__)
LOWBIT_DECLARE_ELTWISE_KERNELS(avx2)
#endif
#if defined(__aarch64__)
LOWBIT_DECLARE_ELTWISE_KERNELS(neon)
#endif

// The r32 pair (mult, shift) of dyadic_rescale(v, multiplier, e) for v in [-255, 255], or false
// where the 32-bit form cannot hold it (e < 10: a ratio of at least 2^21).
// Proof that r32 = rs(v, m, e) = floor((v * m + 2^(e-1)) / 2^e), P = v * m:
// - 10 <= e <= 39, shift s = e - 9 in [1, 30]: h = floor(P / 2^9), and adding an integer commutes
//   with floor, so h + 2^(s-1) = floor((P + 2^(e-1)) / 2^9); floor(floor(y / 2^9) / 2^s) =
//   floor(y / 2^e) for integer y, hence r32 = rs. |P| <= 255 * (2^31 - 1) < 2^39, so |h| < 2^30.
// - e >= 40: |P| < 2^39 <= 2^(e-1), so 0 < P + 2^(e-1) < 2^e and rs = 0; mult 0 gives r32 = 0.
// native/test/eltwise_kernels_test.cc also checks it exhaustively over v for every e and many m.
static inline bool rescale32_for(int32_t multiplier, int e, int32_t* mult, int32_t* shift) {
  if (e < 10) return false;
  *mult = e >= 40 ? 0 : multiplier;
  *shift = e >= 40 ? 1 : e - 9;
  return true;
}

// The QAddTerm of rs(q - zero_point, multiplier, e) on an int8 (is_signed) or uint8 input.
static inline bool qadd_term_for(bool is_signed, int32_t zero_point, int32_t multiplier, int e, QAddTerm* t) {
  const UnsignedReading in = unsigned_reading(is_signed, zero_point);
  t->mask = in.mask, t->zero = in.zero;
  return rescale32_for(multiplier, e, &t->mult, &t->shift);
}

// r32 in scalar code (the scalar kernels and the SIMD tails). static: each ISA file gets its own
// copy, so no -mavx2 code can be linked into the scalar path.
static inline int32_t rescale32(int32_t v, int32_t mult, int32_t shift) {
  const int64_t h = (static_cast<int64_t>(v) * mult) >> 9;  // floor: arithmetic shift
  return static_cast<int32_t>((h + (int64_t{1} << (shift - 1))) >> shift);
}

static inline int32_t qadd_term(uint8_t x, const QAddTerm& t) {
  return rescale32((x ^ t.mask) - t.zero, t.mult, t.shift);
}

static inline uint8_t clamp_low_byte(int32_t v, int32_t lo, int32_t hi) {
  return static_cast<uint8_t>(v < lo ? lo : (v > hi ? hi : v));
}

static inline uint8_t prelu8_value(uint8_t x, size_t ch, const Prelu8Params& p) {
  const int32_t v = (x ^ p.mask) - p.zero;
  const int32_t t =
      v >= 0 ? rescale32(v, p.mult_pos[ch], p.shift_pos[ch]) : rescale32(v, p.mult_neg[ch], p.shift_neg[ch]);
  return clamp_low_byte(t + p.out_zero, p.lo, p.hi);
}

static inline uint8_t qadd_value(uint8_t a, uint8_t b, const QAddParams& p) {
  return clamp_low_byte(qadd_term(a, p.a) + qadd_term(b, p.b) + p.out_zero, p.lo, p.hi);
}

}  // namespace lowbit
