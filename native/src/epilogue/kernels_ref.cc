// kernels_ref.cc: reference output transforms, written to be obviously correct. They define the
// results; every ISA path must match them exactly. Used by tests only.
#include "common/checked_math.h"
#include "epilogue/kernels.h"

namespace lowbit::ref {

void output_f32(size_t n, const int32_t* y, const OutputF32Params& p, float* out) {
  for (size_t c = 0; c < n; ++c) {
    float v = static_cast<float>(y[c]) * p.scale[c] + p.bias[c];  // built with -ffp-contract=off
    out[c] = v < p.lo ? p.lo : (v > p.hi ? p.hi : v);
  }
}

void output_s8(size_t m, size_t n, const int32_t* y, size_t ldy, const RequantizeParams& p, int8_t* out, size_t ldo) {
  for (size_t i = 0; i < m; ++i, y += ldy, out += ldo)
    for (size_t c = 0; c < n; ++c)
      out[c] = static_cast<int8_t>(requantize_value(y[c], p.mult[c], p.shift[c], p.bias[c], p.lo, p.hi));
}

void output_b1(size_t n, const int32_t* y, const OutputB1Params& p, uint64_t* out) {
  const size_t words = words_for_bits(n);
  for (size_t w = 0; w < words; ++w) out[w] = 0;
  for (size_t c = 0; c < n; ++c) {
    uint64_t b = static_cast<uint64_t>((y[c] < p.threshold[c]) ^ (p.flip[c] != 0));
    out[c / 64] |= b << (c % 64);
  }
}

}  // namespace lowbit::ref

namespace lowbit::ref {

void output_f32_fused(size_t m, size_t n, const int32_t* y, size_t ldy, const OutputF32FusedParams& p, float* out,
                      size_t ldo, uint64_t* bits, size_t ldbits) {
  for (size_t i = 0; i < m; ++i, y += ldy, out += ldo) {
    const float* residual = p.residual ? p.residual + i * p.residual_stride : nullptr;
    for (size_t c = 0; c < n; ++c) {
      float v = static_cast<float>(y[c]) * p.scale[c];
      v = v + p.bias[c];
      if (residual) v = v + residual[c];
      if (p.slope) {
        const float u = v - p.input_bias[c];
        const float w = u >= 0 ? u : u * p.slope[c];
        v = w + p.output_bias[c];
      }
      out[c] = v < p.lo ? p.lo : (v > p.hi ? p.hi : v);
    }
    if (!p.threshold) continue;
    uint64_t* row_bits = bits + i * ldbits;
    for (size_t w = 0; w < words_for_bits(n); ++w) row_bits[w] = 0;
    for (size_t c = 0; c < n; ++c) row_bits[c / 64] |= static_cast<uint64_t>(out[c] < p.threshold[c]) << (c % 64);
  }
}

}  // namespace lowbit::ref

namespace lowbit::ref {

// The two operators one after the other: output_s8's byte, then qadd's value of it and the residual.
void output_s8_add(size_t m, size_t n, const int32_t* y, size_t ldy, const RequantizeParams& p,
                   const ResidualAddParams& r, int8_t* out, size_t ldo) {
  for (size_t i = 0; i < m; ++i, y += ldy, out += ldo) {
    const uint8_t* res = r.residual + i * r.ldr;
    for (size_t c = 0; c < n; ++c) {
      const int32_t v = requantize_value(y[c], p.mult[c], p.shift[c], p.bias[c], p.lo, p.hi);
      const int32_t a = rescale32(v - r.self.zero, r.self.mult, r.self.shift);
      const int32_t b = rescale32((res[c] ^ r.res.mask) - r.res.zero, r.res.mult, r.res.shift);
      const int32_t sum = a + b + r.out_zero;
      out[c] = static_cast<int8_t>(static_cast<uint8_t>(sum < r.lo ? r.lo : (sum > r.hi ? r.hi : sum)));
    }
  }
}

}  // namespace lowbit::ref
