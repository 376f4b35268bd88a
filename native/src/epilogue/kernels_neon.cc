// kernels_neon.cc: output transforms for baseline AArch64 NEON (Cortex-A72).
#if defined(__aarch64__)
#include <arm_neon.h>

#include "common/neon_bits.h"
#include "epilogue/kernels.h"

namespace lowbit::neon {

using neon_bits::narrow_masks;
using neon_bits::pack_bits;

void output_f32(size_t n, const int32_t* y, const OutputF32Params& p, float* out) {
  const float32x4_t vlo = vdupq_n_f32(p.lo);
  const float32x4_t vhi = vdupq_n_f32(p.hi);
  size_t c = 0;
  for (; c + 4 <= n; c += 4) {
    const float32x4_t vy = vcvtq_f32_s32(vld1q_s32(y + c));
    const float32x4_t vv = vaddq_f32(vmulq_f32(vy, vld1q_f32(p.scale + c)), vld1q_f32(p.bias + c));
    // Compare-and-select rather than vmaxq/vminq: those differ from the scalar ternaries on NaN
    // bounds and on -0.0 vs +0.0.
    const float32x4_t vclamped = vbslq_f32(vcltq_f32(vv, vlo), vlo, vbslq_f32(vcgtq_f32(vv, vhi), vhi, vv));
    vst1q_f32(out + c, vclamped);
  }
  for (; c < n; ++c) {
    const float v = static_cast<float>(y[c]) * p.scale[c] + p.bias[c];
    out[c] = v < p.lo ? p.lo : (v > p.hi ? p.hi : v);
  }
}

namespace {

// r32(d, mult, shift) on 4 lanes with |d| <= 255 (eltwise/kernels.h): x = d * 2^22 (|x| < 2^30, so
// vqdmulh never saturates) gives floor(2 * x * mult / 2^32) = floor(d * mult / 2^9), and the
// rounding shift right adds 2^(shift - 1) before shifting in wider precision: the contract.
inline int32x4_t rescale32_4(int32x4_t d, int32_t mult, int32x4_t neg_shift) {
  return vrshlq_s32(vqdmulhq_n_s32(vshlq_n_s32(d, 22), mult), neg_shift);
}

// output_s8 (and with kAdd output_s8_add) with the lane width fixed per call: k32, SQDMULH and
// SRSHL by 31 - shift in 32-bit lanes (requantize32_ok in kernels.h has the proof); else 64-bit products.
template <bool k32, bool kAdd>
void s8_rows(size_t m, size_t n, const int32_t* y, size_t ldy, const RequantizeParams& p, const ResidualAddParams* r,
             int8_t* out, size_t ldo) {
  const int32x4_t vlo = vdupq_n_s32(p.lo);
  const int32x4_t vhi = vdupq_n_s32(p.hi);
  // Local copies: a store to out could alias p, so its pointers would be reloaded after each one.
  const int32_t *mult = p.mult, *bias = p.bias;
  const uint8_t* shift = p.shift;
  // |y * mult| <= 2^62 - 2^31 and the bias is an int32, so every 64-bit step is exact. SRSHL by
  // -shift adds 1 << (shift - 1) before the arithmetic shift in full precision: round half up.
  auto rescale2 = [](int32x2_t vy, int32x2_t vmult, int32x2_t vnegshift, int32x2_t vbias) {
    const int64x2_t vprod = vmull_s32(vy, vmult);
    return vqmovn_s64(vaddw_s32(vrshlq_s64(vprod, vmovl_s32(vnegshift)), vbias));
  };
  // The saturating narrow to int32 cannot change the result: lo and hi are int32 themselves.
  auto rescale4 = [&](const int32_t* yc, size_t c, int32x4_t vnegshift) {
    const int32x4_t vy = vld1q_s32(yc);
    const int32x4_t vmult = vld1q_s32(mult + c);
    const int32x4_t vbias = vld1q_s32(bias + c);
    int32x4_t vv;
    if constexpr (k32) {
      vv = vaddq_s32(vrshlq_s32(vqdmulhq_s32(vy, vmult), vnegshift), vbias);
    } else {
      vv = vcombine_s32(
          rescale2(vget_low_s32(vy), vget_low_s32(vmult), vget_low_s32(vnegshift), vget_low_s32(vbias)),
          rescale2(vget_high_s32(vy), vget_high_s32(vmult), vget_high_s32(vnegshift), vget_high_s32(vbias)));
    }
    return vbslq_s32(vcltq_s32(vv, vlo), vlo, vbslq_s32(vcgtq_s32(vv, vhi), vhi, vv));
  };
  // The residual add's constants.
  const ResidualAddParams add = kAdd ? *r : kNoResidualAdd;
  const int32x4_t self_zero = vdupq_n_s32(add.self.zero), res_zero = vdupq_n_s32(add.res.zero);
  const int32x4_t self_neg_shift = vdupq_n_s32(-add.self.shift), res_neg_shift = vdupq_n_s32(-add.res.shift);
  const int32x4_t out_zero = vdupq_n_s32(add.out_zero), add_lo = vdupq_n_s32(add.lo), add_hi = vdupq_n_s32(add.hi);
  const uint8x8_t res_mask = vdup_n_u8(add.res.mask);
  const uint8_t* res = add.residual;
  // requantize_add_value on 4 lanes: v the requantized values, u the residual's unsigned readings.
  auto add4 = [&](int32x4_t v, uint16x4_t u) {
    const int32x4_t a = rescale32_4(vsubq_s32(v, self_zero), add.self.mult, self_neg_shift);
    const int32x4_t b =
        rescale32_4(vsubq_s32(vreinterpretq_s32_u32(vmovl_u16(u)), res_zero), add.res.mult, res_neg_shift);
    const int32x4_t sum = vaddq_s32(vaddq_s32(a, b), out_zero);
    return vminq_s32(vmaxq_s32(sum, add_lo), add_hi);
  };
  const int16x8_t vbase = vdupq_n_s16(k32 ? 31 : 0);  // SQDMULH has already shifted by 31
  for (size_t i = 0; i < m; ++i, y += ldy, out += ldo) {
    size_t c = 0;
    for (; c + 8 <= n; c += 8) {
      const int16x8_t vnegshift = vsubq_s16(vbase, vreinterpretq_s16_u16(vmovl_u8(vld1_u8(shift + c))));
      int32x4_t v0 = rescale4(y + c, c, vmovl_s16(vget_low_s16(vnegshift)));
      int32x4_t v1 = rescale4(y + c + 4, c + 4, vmovl_s16(vget_high_s16(vnegshift)));
      if constexpr (kAdd) {
        const uint16x8_t u = vmovl_u8(veor_u8(vld1_u8(res + c), res_mask));
        v0 = add4(v0, vget_low_u16(u));
        v1 = add4(v1, vget_high_u16(u));
      }
      vst1_s8(out + c, vmovn_s16(vcombine_s16(vmovn_s32(v0), vmovn_s32(v1))));
    }
    for (; c < n; ++c) {
      const int32_t v = requantize_value(y[c], mult[c], shift[c], bias[c], p.lo, p.hi);
      out[c] = kAdd ? requantize_add_value(v, res[c], add) : static_cast<int8_t>(v);
    }
    if constexpr (kAdd) res += add.ldr;
  }
}

// requantize32_ok, 8 channels a step.
bool requantize32_ok8(size_t n, const RequantizeParams& p) {
  const int32x4_t min_bias = vdupq_n_s32(-(1 << 30)), max_bias = vdupq_n_s32(1 << 30);
  uint8x8_t shift_ok = vdup_n_u8(0xFF);
  uint32x4_t bias_ok = vdupq_n_u32(0xFFFFFFFFu);
  size_t c = 0;
  for (; c + 8 <= n; c += 8) {
    shift_ok = vand_u8(shift_ok, vcge_u8(vld1_u8(p.shift + c), vdup_n_u8(33)));
    for (size_t h = 0; h < 8; h += 4) {
      const int32x4_t b = vld1q_s32(p.bias + c + h);
      bias_ok = vandq_u32(bias_ok, vandq_u32(vcgeq_s32(b, min_bias), vcleq_s32(b, max_bias)));
    }
  }
  return vminv_u8(shift_ok) == 0xFF && vminvq_u32(bias_ok) == 0xFFFFFFFFu && requantize32_ok(c, n, p);
}

}  // namespace

void output_s8(size_t m, size_t n, const int32_t* y, size_t ldy, const RequantizeParams& p, int8_t* out, size_t ldo) {
  if (requantize32_ok8(n, p))
    s8_rows<true, false>(m, n, y, ldy, p, nullptr, out, ldo);
  else
    s8_rows<false, false>(m, n, y, ldy, p, nullptr, out, ldo);
}

void output_s8_add(size_t m, size_t n, const int32_t* y, size_t ldy, const RequantizeParams& p,
                   const ResidualAddParams& r, int8_t* out, size_t ldo) {
  if (requantize32_ok8(n, p))
    s8_rows<true, true>(m, n, y, ldy, p, &r, out, ldo);
  else
    s8_rows<false, true>(m, n, y, ldy, p, &r, out, ldo);
}

void output_b1(size_t n, const int32_t* y, const OutputB1Params& p, uint64_t* out) {
  auto mask16 = [&](size_t c) {
    const uint8x16_t vbelow = narrow_masks(vcltq_s32(vld1q_s32(y + c), vld1q_s32(p.threshold + c)),
                                           vcltq_s32(vld1q_s32(y + c + 4), vld1q_s32(p.threshold + c + 4)),
                                           vcltq_s32(vld1q_s32(y + c + 8), vld1q_s32(p.threshold + c + 8)),
                                           vcltq_s32(vld1q_s32(y + c + 12), vld1q_s32(p.threshold + c + 12)));
    const uint8x16_t vflip = vld1q_u8(p.flip + c);
    return veorq_u8(vbelow, vtstq_u8(vflip, vflip));
  };
  pack_bits(
      n, mask16, [&](size_t c) { return (y[c] < p.threshold[c]) ^ (p.flip[c] != 0); }, out);
}

namespace {

// output_f32_fused with its options fixed (no tests per 4 channels), the parameter pointers in
// locals (a store to out could alias p, so they would be reloaded after each one).
template <bool kResidual, bool kPrelu, bool kSign>
void f32_fused_rows(size_t m, size_t n, const int32_t* y, size_t ldy, const OutputF32FusedParams& p, float* out,
                    size_t ldo, uint64_t* bits, size_t ldbits) {
  const float32x4_t vlo = vdupq_n_f32(p.lo), vhi = vdupq_n_f32(p.hi);
  const float *scale = p.scale, *bias = p.bias, *slope = p.slope, *input_bias = p.input_bias;
  const float *output_bias = p.output_bias, *threshold = p.threshold, *residual = p.residual;
  for (size_t i = 0; i < m; ++i, y += ldy, out += ldo) {
    size_t c = 0;
    for (; c + 4 <= n; c += 4) {
      const float32x4_t vy = vcvtq_f32_s32(vld1q_s32(y + c));
      float32x4_t v = vaddq_f32(vmulq_f32(vy, vld1q_f32(scale + c)), vld1q_f32(bias + c));
      if constexpr (kResidual) v = vaddq_f32(v, vld1q_f32(residual + c));
      if constexpr (kPrelu) {
        const float32x4_t u = vsubq_f32(v, vld1q_f32(input_bias + c));
        v = vaddq_f32(vbslq_f32(vcgezq_f32(u), u, vmulq_f32(u, vld1q_f32(slope + c))), vld1q_f32(output_bias + c));
      }
      vst1q_f32(out + c, vbslq_f32(vcltq_f32(v, vlo), vlo, vbslq_f32(vcgtq_f32(v, vhi), vhi, v)));
    }
    for (; c < n; ++c) out[c] = fused_value(p, residual, c, y[c]);
    if constexpr (kResidual) residual += p.residual_stride;
    if constexpr (kSign) {
      // The sign from the stored row (still in L1): the bits of the values just written.
      auto below4 = [&](size_t k) { return vcltq_f32(vld1q_f32(out + k), vld1q_f32(threshold + k)); };
      pack_bits(
          n, [&](size_t k) { return narrow_masks(below4(k), below4(k + 4), below4(k + 8), below4(k + 12)); },
          [&](size_t k) { return out[k] < threshold[k]; }, bits + i * ldbits);
    }
  }
}

template <bool kResidual, bool kPrelu>
constexpr OutputF32FusedFn kFusedRows[2] = {f32_fused_rows<kResidual, kPrelu, false>,
                                            f32_fused_rows<kResidual, kPrelu, true>};

}  // namespace

void output_f32_fused(size_t m, size_t n, const int32_t* y, size_t ldy, const OutputF32FusedParams& p, float* out,
                      size_t ldo, uint64_t* bits, size_t ldbits) {
  const bool sign = p.threshold != nullptr;
  const OutputF32FusedFn rows = p.residual ? (p.slope ? kFusedRows<true, true>[sign] : kFusedRows<true, false>[sign])
                                           : (p.slope ? kFusedRows<false, true>[sign] : kFusedRows<false, false>[sign]);
  rows(m, n, y, ldy, p, out, ldo, bits, ldbits);
}

}  // namespace lowbit::neon

#endif  // __aarch64__
