// quantize.h: the quantization API: the dyadic (integer-only) rescale shared by the integer
// operators, requantization of int32 accumulators, and the float <-> 8-bit boundary conversions.
// Every real rescale M = S_in * S_w / S_out runs as an integer multiply and a rounding right shift:
//   M ~ m / 2^e, m a positive int32 in [2^30, 2^31 - 1], e in [0, 62].
#pragma once
#include <cstddef>
#include <cstdint>

namespace lowbit {

struct Dyadic {
  int32_t multiplier;  // m
  int32_t shift;       // e
};

// The dyadic pair of a real multiplier M in [2^-32, 2^31): with M = f * 2^p, f in [0.5, 1),
// m = round_half_up(f * 2^31) (halved, with e - 1, when it reaches 2^31) and e = 31 - p.
// Relative error |m / 2^e - M| / M <= 2^-31. Throws Error(Quantization) for M <= 0, NaN, +-Inf
// or M outside that range (e would leave [0, 62]).
Dyadic to_dyadic(double multiplier);

// The rescale itself, the single definition every operator and every ISA's kernels match bit for bit:
//   rs(v, m, e) = ((int64)v * m + (e > 0 ? 2^(e-1) : 0)) >> e     (round half up; >> floors)
// |v * m| must fit int64 (it does for an int32 v, or the 8-bit differences of lowbit/qops.h).
// static: every translation unit, each ISA's kernel file included, compiles its own copy, so no
// -mavx2 copy can be linked into the baseline path.
static inline int64_t dyadic_rescale(int64_t v, int32_t m, int32_t e) {
  return (v * m + (e > 0 ? int64_t{1} << (e - 1) : 0)) >> e;
}

// Requantizes rows x channels int32 accumulators (channels innermost) to 8-bit values with a
// per-channel dyadic rescale, rounding half up:
//   out = clamp(((int64)acc * mult[c] + 2^(shift[c] - 1)) >> shift[c] + bias[c], lo, hi)
// mult[c] != INT32_MIN, shift[c] in [0, 62]; lo <= hi both in [-128, 127] (s8, or s4 with
// [-8, 7]) or both in [0, 255] (u8, or u4 with [0, 15]); out holds the low byte of each value.
void requantize(const int32_t* acc, size_t rows, size_t channels, const int32_t* mult, const uint8_t* shift,
                const int32_t* bias, int32_t lo, int32_t hi, uint8_t* out);

// Network-boundary quantization, per tensor, as ONNX QuantizeLinear: q = clamp(round(x / scale)
// + zero_point, lo, hi), rounding half to even; NaN maps to zero_point, +-Inf saturate. scale must be
// finite and > 0; lo <= zero_point <= hi, both in [-128, 127] or both in [0, 255]; out holds the low
// byte of each value (int8 or uint8).
void quantize_f32(const float* x, size_t n, float scale, int32_t zero_point, int32_t lo, int32_t hi, uint8_t* out);

// x = (q - zero_point) * scale (one float multiply), q read as int8 (is_signed) or uint8.
void dequantize_8bit(const uint8_t* q, size_t n, bool is_signed, float scale, int32_t zero_point, float* out);

}  // namespace lowbit
