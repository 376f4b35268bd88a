// kernels_scalar.cc: the portable element-wise kernels (no SIMD intrinsics). An 8-bit input has
// only 256 values, so qadd's rescales are two tables built per call; sign packs 8 channels a step.
#include <algorithm>
#include <cstring>

#include "common/checked_math.h"
#include "eltwise/kernels.h"
#include "integer/quantize.h"

namespace lowbit::scalar {

void qadd(size_t n, const uint8_t* a, const uint8_t* b, const QAddParams& p, uint8_t* out) {
  // The output zero point folds into a's table; |ta| + |tb| < 2^31 (kernels.h).
  int32_t ta[256], tb[256];
  for (int x = 0; x < 256; ++x) {
    ta[x] = qadd_term(static_cast<uint8_t>(x), p.a) + p.out_zero;
    tb[x] = qadd_term(static_cast<uint8_t>(x), p.b);
  }
  const int32_t lo = p.lo, hi = p.hi;
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(std::clamp(ta[a[i]] + tb[b[i]], lo, hi));
}

void prelu8(size_t rows, size_t c, const uint8_t* x, const Prelu8Params& p, uint8_t* out) {
  for (size_t r = 0; r < rows; ++r)
    for (size_t ch = 0; ch < c; ++ch) out[r * c + ch] = prelu8_value(x[r * c + ch], ch, p);
}

void sign8(size_t rows, size_t c, const uint8_t* x, uint8_t mask, int32_t threshold, uint64_t* out) {
  const size_t words = words_for_bits(c);
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* row = x + r * c;
    for (size_t w = 0; w < words; ++w) {
      // The word in a register: a store per bit could alias the row and would reload it.
      const size_t begin = 64 * w, count = std::min<size_t>(64, c - begin);
      uint64_t word = 0;
      for (size_t j = 0; j < count; ++j) word |= uint64_t{(row[begin + j] ^ mask) < threshold} << j;
      out[r * words + w] = word;
    }
  }
}

void quantize_f32(size_t n, const float* x, float scale, int32_t zero_point, int32_t lo, int32_t hi, uint8_t* out) {
  for (size_t i = 0; i < n; ++i) out[i] = quantize_value(x[i], scale, zero_point, lo, hi);
}

void dequantize8(size_t n, const uint8_t* x, uint8_t mask, int32_t zero, float scale, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>((x[i] ^ mask) - zero) * scale;
}

namespace {
// Out of line with restrict pointers: the compiler vectorizes these for the baseline ISA.
template <typename T>
void max_into(size_t n, T* __restrict dst, const T* __restrict src) {
  for (size_t i = 0; i < n; ++i) dst[i] = std::max(dst[i], src[i]);
}
void sum_into(size_t n, const uint8_t* __restrict x, uint8_t mask, int32_t* __restrict acc) {
  for (size_t i = 0; i < n; ++i) acc[i] += x[i] ^ mask;
}
template <typename T>
void clamp_into(size_t n, const T* __restrict x, T lo, T hi, T* __restrict out) {
  for (size_t i = 0; i < n; ++i) out[i] = std::min(hi, std::max(lo, x[i]));
}
}  // namespace

void max_taps8(size_t n, const uint8_t* const* src, size_t taps, bool is_signed, uint8_t* dst) {
  for (size_t t = 0; t < taps; ++t)
    if (is_signed)
      max_into(n, reinterpret_cast<int8_t*>(dst), reinterpret_cast<const int8_t*>(src[t]));
    else
      max_into(n, dst, src[t]);
}

void sum_taps8(size_t n, const uint8_t* const* src, size_t taps, uint8_t mask, int32_t* acc) {
  for (size_t t = 0; t < taps; ++t) sum_into(n, src[t], mask, acc);
}

void clamp8(size_t n, const uint8_t* x, bool is_signed, int32_t lo, int32_t hi, uint8_t* out) {
  if (is_signed)
    clamp_into(n, reinterpret_cast<const int8_t*>(x), static_cast<int8_t>(lo), static_cast<int8_t>(hi),
               reinterpret_cast<int8_t*>(out));
  else
    clamp_into(n, x, static_cast<uint8_t>(lo), static_cast<uint8_t>(hi), out);
}

namespace {
// The 8 +-1 bytes of each bit pattern, for unpacking a byte of bits with one 8-byte copy.
struct UnpackTable {
  int8_t values[256][8];
  UnpackTable() {
    for (int b = 0; b < 256; ++b)
      for (int j = 0; j < 8; ++j) values[b][j] = (b >> j) & 1 ? -1 : 1;
  }
};
const UnpackTable unpack_table;
}  // namespace

void unpack_b1(size_t c, const uint64_t* bits, int8_t* out) {
  size_t ch = 0;
  for (; ch + 8 <= c; ch += 8) std::memcpy(out + ch, unpack_table.values[(bits[ch / 64] >> (ch % 64)) & 0xff], 8);
  for (; ch < c; ++ch) out[ch] = (bits[ch / 64] >> (ch % 64)) & 1 ? -1 : 1;
}

}  // namespace lowbit::scalar
