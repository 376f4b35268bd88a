// kernels_ref.cc: the element-wise kernels as plainly as they can be written; every ISA must match.
// qadd uses the family's defining int64 rescale (dyadic_rescale), not the 32-bit form of the kernels.
#include "common/checked_math.h"
#include "eltwise/kernels.h"
#include "integer/quantize.h"
#include "lowbit/quantize.h"

namespace lowbit::ref {
namespace {

inline int32_t clamp32(int64_t v, int32_t lo, int32_t hi) {
  return static_cast<int32_t>(v < lo ? lo : (v > hi ? hi : v));
}

inline int32_t read(uint8_t x, bool is_signed) { return is_signed ? static_cast<int8_t>(x) : x; }

}  // namespace

void qadd(size_t n, const uint8_t* a, const uint8_t* b, const QAddParams& p, uint8_t* out) {
  for (size_t i = 0; i < n; ++i) {
    const int64_t ta = dyadic_rescale((a[i] ^ p.a.mask) - p.a.zero, p.a.mult, p.a.shift + 9);
    const int64_t tb = dyadic_rescale((b[i] ^ p.b.mask) - p.b.zero, p.b.mult, p.b.shift + 9);
    out[i] = static_cast<uint8_t>(clamp32(ta + tb + p.out_zero, p.lo, p.hi));
  }
}

void prelu8(size_t rows, size_t c, const uint8_t* x, const Prelu8Params& p, uint8_t* out) {
  for (size_t r = 0; r < rows; ++r)
    for (size_t ch = 0; ch < c; ++ch) {
      const int32_t v = (x[r * c + ch] ^ p.mask) - p.zero;
      const int64_t t = v >= 0 ? dyadic_rescale(v, p.mult_pos[ch], p.shift_pos[ch] + 9)
                               : dyadic_rescale(v, p.mult_neg[ch], p.shift_neg[ch] + 9);
      out[r * c + ch] = static_cast<uint8_t>(clamp32(t + p.out_zero, p.lo, p.hi));
    }
}

void sign8(size_t rows, size_t c, const uint8_t* x, uint8_t mask, int32_t threshold, uint64_t* out) {
  const size_t words = words_for_bits(c);
  for (size_t r = 0; r < rows; ++r)
    for (size_t w = 0; w < words; ++w) {
      uint64_t v = 0;
      for (size_t ch = w * 64; ch < c && ch < (w + 1) * 64; ++ch)
        if ((x[r * c + ch] ^ mask) < threshold) v |= uint64_t{1} << (ch % 64);
      out[r * words + w] = v;
    }
}

void quantize_f32(size_t n, const float* x, float scale, int32_t zero_point, int32_t lo, int32_t hi, uint8_t* out) {
  for (size_t i = 0; i < n; ++i) out[i] = quantize_value(x[i], scale, zero_point, lo, hi);
}

void dequantize8(size_t n, const uint8_t* x, uint8_t mask, int32_t zero, float scale, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>((x[i] ^ mask) - zero) * scale;
}

void max_taps8(size_t n, const uint8_t* const* src, size_t taps, bool is_signed, uint8_t* dst) {
  for (size_t t = 0; t < taps; ++t)
    for (size_t i = 0; i < n; ++i)
      if (read(src[t][i], is_signed) > read(dst[i], is_signed)) dst[i] = src[t][i];
}

void sum_taps8(size_t n, const uint8_t* const* src, size_t taps, uint8_t mask, int32_t* acc) {
  for (size_t t = 0; t < taps; ++t)
    for (size_t i = 0; i < n; ++i) acc[i] += src[t][i] ^ mask;
}

void clamp8(size_t n, const uint8_t* x, bool is_signed, int32_t lo, int32_t hi, uint8_t* out) {
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(clamp32(read(x[i], is_signed), lo, hi));
}

void unpack_b1(size_t c, const uint64_t* bits, int8_t* out) {
  for (size_t ch = 0; ch < c; ++ch) out[ch] = (bits[ch / 64] >> (ch % 64)) & 1 ? -1 : 1;
}

}  // namespace lowbit::ref
