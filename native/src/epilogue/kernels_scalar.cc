// kernels_scalar.cc: portable output transforms, one value at a time; the path on CPUs without
// SIMD support. The same loops as ref (the scalar-vs-ref test proves nothing for f32 and s8 here;
// ref stays an independent copy on purpose).
#include "epilogue/kernels.h"

namespace lowbit::scalar {

void output_f32(size_t n, const int32_t* y, const OutputF32Params& p, float* out) {
  for (size_t c = 0; c < n; ++c) {
    float v = static_cast<float>(y[c]) * p.scale[c] + p.bias[c];
    out[c] = v < p.lo ? p.lo : (v > p.hi ? p.hi : v);
  }
}

void output_s8(size_t m, size_t n, const int32_t* y, size_t ldy, const RequantizeParams& p, int8_t* out, size_t ldo) {
  for (size_t i = 0; i < m; ++i, y += ldy, out += ldo)
    for (size_t c = 0; c < n; ++c)
      out[c] = static_cast<int8_t>(requantize_value(y[c], p.mult[c], p.shift[c], p.bias[c], p.lo, p.hi));
}

void output_b1(size_t n, const int32_t* y, const OutputB1Params& p, uint64_t* out) {
  for (size_t w = 0; w * 64 < n; ++w) {
    const size_t count = n - w * 64 < 64 ? n - w * 64 : 64;
    uint64_t word = 0;
    for (size_t j = 0; j < count; ++j) {
      const size_t c = w * 64 + j;
      word |= static_cast<uint64_t>((y[c] < p.threshold[c]) ^ p.flip[c]) << j;
    }
    out[w] = word;
  }
}

}  // namespace lowbit::scalar

namespace lowbit::scalar {

void output_f32_fused(size_t m, size_t n, const int32_t* y, size_t ldy, const OutputF32FusedParams& p, float* out,
                      size_t ldo, uint64_t* bits, size_t ldbits) {
  const float* residual = p.residual;
  for (size_t i = 0; i < m; ++i, y += ldy, out += ldo) {
    for (size_t c = 0; c < n; ++c) out[c] = fused_value(p, residual, c, y[c]);
    if (residual) residual += p.residual_stride;
    if (!p.threshold) continue;
    for (size_t w = 0; w * 64 < n; ++w) {
      const size_t count = n - w * 64 < 64 ? n - w * 64 : 64;
      uint64_t word = 0;
      for (size_t j = 0; j < count; ++j) word |= static_cast<uint64_t>(out[w * 64 + j] < p.threshold[w * 64 + j]) << j;
      bits[i * ldbits + w] = word;
    }
  }
}

}  // namespace lowbit::scalar

namespace lowbit::scalar {

void output_s8_add(size_t m, size_t n, const int32_t* y, size_t ldy, const RequantizeParams& p,
                   const ResidualAddParams& r, int8_t* out, size_t ldo) {
  const uint8_t* res = r.residual;
  if (m * n < 1024) {
    for (size_t i = 0; i < m; ++i, y += ldy, out += ldo, res += r.ldr)
      for (size_t c = 0; c < n; ++c)
        out[c] = requantize_add_value(requantize_value(y[c], p.mult[c], p.shift[c], p.bias[c], p.lo, p.hi), res[c], r);
    return;
  }
  // Both terms are functions of 8-bit values: tables of them (as the scalar qadd builds), the
  // add's zero point folded into the conv value's, which is indexed by v - lo (v in [lo, hi]).
  int32_t self[256], other[256];
  for (int32_t v = p.lo; v <= p.hi; ++v)
    self[v - p.lo] = rescale32(v - r.self.zero, r.self.mult, r.self.shift) + r.out_zero;
  for (int x = 0; x < 256; ++x) other[x] = qadd_term(static_cast<uint8_t>(x), r.res);
  for (size_t i = 0; i < m; ++i, y += ldy, out += ldo, res += r.ldr)
    for (size_t c = 0; c < n; ++c) {
      const int32_t v = requantize_value(y[c], p.mult[c], p.shift[c], p.bias[c], p.lo, p.hi);
      out[c] = static_cast<int8_t>(clamp_low_byte(self[v - p.lo] + other[res[c]], r.lo, r.hi));
    }
}

}  // namespace lowbit::scalar
