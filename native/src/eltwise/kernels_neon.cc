// kernels_neon.cc: the element-wise kernels for AArch64 NEON (16 bytes a step; qadd's rescale
// through the saturating doubling high multiply and a rounding shift, sign through pairwise adds).
#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "common/checked_math.h"
#include "common/neon_bits.h"
#include "eltwise/kernels.h"
#include "integer/quantize.h"

namespace lowbit::neon {
namespace {

// The qadd term of 8 unsigned readings u (16-bit lanes). x = (u - zero) * 2^22 (|x| < 2^30, so
// vqdmulh never saturates): vqdmulh gives floor(2 * x * mult / 2^32) = h, and the rounding shift
// right by `shift` adds 2^(shift - 1) before shifting, in wider precision: exactly the contract.
struct Term {
  int16x8_t zero;
  int32_t mult;
  int32x4_t neg_shift;
  explicit Term(const QAddTerm& t)
      : zero(vdupq_n_s16(static_cast<int16_t>(t.zero))), mult(t.mult), neg_shift(vdupq_n_s32(-t.shift)) {}
  inline void apply(uint16x8_t u, int32x4_t& lo, int32x4_t& hi) const {
    const int16x8_t v = vshlq_n_s16(vsubq_s16(vreinterpretq_s16_u16(u), zero), 6);  // |v| <= 16320
    lo = vrshlq_s32(vqdmulhq_n_s32(vshll_n_s16(vget_low_s16(v), 16), mult), neg_shift);
    hi = vrshlq_s32(vqdmulhq_n_s32(vshll_n_s16(vget_high_s16(v), 16), mult), neg_shift);
  }
};

}  // namespace

void qadd(size_t n, const uint8_t* a, const uint8_t* b, const QAddParams& p, uint8_t* out) {
  const Term ta(p.a), tb(p.b);
  const uint8x16_t amask = vdupq_n_u8(p.a.mask), bmask = vdupq_n_u8(p.b.mask);
  const int32x4_t zo = vdupq_n_s32(p.out_zero);
  const int16x8_t lo = vdupq_n_s16(static_cast<int16_t>(p.lo)), hi = vdupq_n_s16(static_cast<int16_t>(p.hi));
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const uint8x16_t va = veorq_u8(vld1q_u8(a + i), amask), vb = veorq_u8(vld1q_u8(b + i), bmask);
    uint8x8_t half[2];
    for (int h = 0; h < 2; ++h) {
      const uint16x8_t a16 = vmovl_u8(h == 0 ? vget_low_u8(va) : vget_high_u8(va));
      const uint16x8_t b16 = vmovl_u8(h == 0 ? vget_low_u8(vb) : vget_high_u8(vb));
      int32x4_t alo, ahi, blo, bhi;
      ta.apply(a16, alo, ahi);
      tb.apply(b16, blo, bhi);
      const int32x4_t slo = vaddq_s32(vaddq_s32(alo, blo), zo), shi = vaddq_s32(vaddq_s32(ahi, bhi), zo);
      // Saturating to int16 keeps the clamp's answer (lo, hi are inside int16); then the low byte.
      const int16x8_t s16 = vminq_s16(vmaxq_s16(vcombine_s16(vqmovn_s32(slo), vqmovn_s32(shi)), lo), hi);
      half[h] = vmovn_u16(vreinterpretq_u16_s16(s16));
    }
    vst1q_u8(out + i, vcombine_u8(half[0], half[1]));
  }
  for (; i < n; ++i) out[i] = qadd_value(a[i], b[i], p);
}

void prelu8(size_t rows, size_t c, const uint8_t* x, const Prelu8Params& p, uint8_t* out) {
  const uint8x8_t vmask = vdup_n_u8(p.mask);
  const int16x8_t zero = vdupq_n_s16(static_cast<int16_t>(p.zero));
  const int32x4_t zo = vdupq_n_s32(p.out_zero), lo = vdupq_n_s32(p.lo), hi = vdupq_n_s32(p.hi);
  // 4 lanes of v: the slope of each lane's side, vqdmulh on v * 2^22 gives h, the rounding shift r32.
  const auto r32 = [&](int32x4_t v, size_t ch) {
    const uint32x4_t negative = vcltzq_s32(v);
    const int32x4_t mult = vbslq_s32(negative, vld1q_s32(p.mult_neg + ch), vld1q_s32(p.mult_pos + ch));
    const int32x4_t shift = vbslq_s32(negative, vld1q_s32(p.shift_neg + ch), vld1q_s32(p.shift_pos + ch));
    const int32x4_t t = vrshlq_s32(vqdmulhq_s32(vshlq_n_s32(v, 22), mult), vnegq_s32(shift));
    return vminq_s32(vmaxq_s32(vaddq_s32(t, zo), lo), hi);
  };
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* row = x + r * c;
    uint8_t* dst = out + r * c;
    size_t ch = 0;
    for (; ch + 8 <= c; ch += 8) {
      const int16x8_t v = vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(veor_u8(vld1_u8(row + ch), vmask))), zero);
      // Values in [-128, 255] fit int16; the narrowing keeps each one's low byte.
      const int16x8_t y = vcombine_s16(vmovn_s32(r32(vmovl_s16(vget_low_s16(v)), ch)),
                                       vmovn_s32(r32(vmovl_s16(vget_high_s16(v)), ch + 4)));
      vst1_u8(dst + ch, vmovn_u16(vreinterpretq_u16_s16(y)));
    }
    for (; ch < c; ++ch) dst[ch] = prelu8_value(row[ch], ch, p);
  }
}

void sign8(size_t rows, size_t c, const uint8_t* x, uint8_t mask, int32_t threshold, uint64_t* out) {
  const uint8x16_t vmask = vdupq_n_u8(mask), vthreshold = vdupq_n_u8(static_cast<uint8_t>(threshold));
  const size_t words = words_for_bits(c);
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* row = x + r * c;
    neon_bits::pack_bits(
        c, [&](size_t ch) { return vcltq_u8(veorq_u8(vld1q_u8(row + ch), vmask), vthreshold); },
        [&](size_t ch) { return (row[ch] ^ mask) < threshold ? 1 : 0; }, out + r * words);
  }
}

void quantize_f32(size_t n, const float* x, float scale, int32_t zero_point, int32_t lo, int32_t hi, uint8_t* out) {
  const float32x4_t vscale = vdupq_n_f32(scale), vmin = vdupq_n_f32(-512.0f), vmax = vdupq_n_f32(512.0f);
  const int32x4_t vzero = vdupq_n_s32(zero_point), vlo = vdupq_n_s32(lo), vhi = vdupq_n_s32(hi);
  // quantize_value on 4 lanes: the same division; NaN lanes zeroed; vcvtnq rounds half to even,
  // as the scalar 1.5 * 2^23 trick does in the default rounding mode.
  const auto q4 = [&](const float* p) {
    float32x4_t v = vdivq_f32(vld1q_f32(p), vscale);
    v = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), vceqq_f32(v, v)));
    v = vminq_f32(vmaxq_f32(v, vmin), vmax);
    return vminq_s32(vmaxq_s32(vaddq_s32(vcvtnq_s32_f32(v), vzero), vlo), vhi);
  };
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    // Values in [-128, 255] fit int16; the narrowing keeps each one's low byte.
    const int16x8_t s01 = vcombine_s16(vmovn_s32(q4(x + i)), vmovn_s32(q4(x + i + 4)));
    const int16x8_t s23 = vcombine_s16(vmovn_s32(q4(x + i + 8)), vmovn_s32(q4(x + i + 12)));
    vst1q_u8(out + i, vcombine_u8(vmovn_u16(vreinterpretq_u16_s16(s01)), vmovn_u16(vreinterpretq_u16_s16(s23))));
  }
  for (; i < n; ++i) out[i] = quantize_value(x[i], scale, zero_point, lo, hi);
}

void dequantize8(size_t n, const uint8_t* x, uint8_t mask, int32_t zero, float scale, float* out) {
  const uint8x8_t vmask = vdup_n_u8(mask);
  const int32x4_t vzero = vdupq_n_s32(zero);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const int16x8_t u = vreinterpretq_s16_u16(vmovl_u8(veor_u8(vld1_u8(x + i), vmask)));
    const int32x4_t v0 = vsubq_s32(vmovl_s16(vget_low_s16(u)), vzero);
    const int32x4_t v1 = vsubq_s32(vmovl_s16(vget_high_s16(u)), vzero);
    vst1q_f32(out + i, vmulq_n_f32(vcvtq_f32_s32(v0), scale));
    vst1q_f32(out + i + 4, vmulq_n_f32(vcvtq_f32_s32(v1), scale));
  }
  for (; i < n; ++i) out[i] = static_cast<float>((x[i] ^ mask) - zero) * scale;
}

void max_taps8(size_t n, const uint8_t* const* src, size_t taps, bool is_signed, uint8_t* dst) {
  // 16 channels at a time, every tap folded in a register.
  size_t i = 0;
  if (is_signed) {
    for (; i + 16 <= n; i += 16) {
      int8x16_t v = vld1q_s8(reinterpret_cast<const int8_t*>(dst + i));
      for (size_t t = 0; t < taps; ++t) v = vmaxq_s8(v, vld1q_s8(reinterpret_cast<const int8_t*>(src[t] + i)));
      vst1q_s8(reinterpret_cast<int8_t*>(dst + i), v);
    }
    for (; i < n; ++i)
      for (size_t t = 0; t < taps; ++t)
        dst[i] = static_cast<uint8_t>(std::max(static_cast<int8_t>(dst[i]), static_cast<int8_t>(src[t][i])));
  } else {
    for (; i + 16 <= n; i += 16) {
      uint8x16_t v = vld1q_u8(dst + i);
      for (size_t t = 0; t < taps; ++t) v = vmaxq_u8(v, vld1q_u8(src[t] + i));
      vst1q_u8(dst + i, v);
    }
    for (; i < n; ++i)
      for (size_t t = 0; t < taps; ++t) dst[i] = std::max(dst[i], src[t][i]);
  }
}

void sum_taps8(size_t n, const uint8_t* const* src, size_t taps, uint8_t mask, int32_t* acc) {
  // 16 channels at a time in 16-bit sums over runs of 128 taps (128 * 255 < 2^16), then widened.
  const uint8x16_t vmask = vdupq_n_u8(mask);
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (size_t t0 = 0; t0 < taps; t0 += 128) {
      uint16x8_t sum0 = vdupq_n_u16(0), sum1 = vdupq_n_u16(0);
      for (size_t t = t0; t < std::min(taps, t0 + 128); ++t) {
        const uint8x16_t u = veorq_u8(vld1q_u8(src[t] + i), vmask);
        sum0 = vaddw_u8(sum0, vget_low_u8(u));
        sum1 = vaddw_u8(sum1, vget_high_u8(u));
      }
      int32_t* a = acc + i;
      vst1q_s32(a, vreinterpretq_s32_u32(vaddw_u16(vreinterpretq_u32_s32(vld1q_s32(a)), vget_low_u16(sum0))));
      vst1q_s32(a + 4, vreinterpretq_s32_u32(vaddw_u16(vreinterpretq_u32_s32(vld1q_s32(a + 4)), vget_high_u16(sum0))));
      vst1q_s32(a + 8, vreinterpretq_s32_u32(vaddw_u16(vreinterpretq_u32_s32(vld1q_s32(a + 8)), vget_low_u16(sum1))));
      vst1q_s32(a + 12,
                vreinterpretq_s32_u32(vaddw_u16(vreinterpretq_u32_s32(vld1q_s32(a + 12)), vget_high_u16(sum1))));
    }
  for (; i < n; ++i)
    for (size_t t = 0; t < taps; ++t) acc[i] += src[t][i] ^ mask;
}

void clamp8(size_t n, const uint8_t* x, bool is_signed, int32_t lo, int32_t hi, uint8_t* out) {
  size_t i = 0;
  if (is_signed) {
    const int8x16_t vlo = vdupq_n_s8(static_cast<int8_t>(lo)), vhi = vdupq_n_s8(static_cast<int8_t>(hi));
    for (; i + 16 <= n; i += 16)
      vst1q_s8(reinterpret_cast<int8_t*>(out + i),
               vminq_s8(vmaxq_s8(vld1q_s8(reinterpret_cast<const int8_t*>(x + i)), vlo), vhi));
    for (; i < n; ++i) out[i] = static_cast<uint8_t>(std::clamp<int32_t>(static_cast<int8_t>(x[i]), lo, hi));
  } else {
    const uint8x16_t vlo = vdupq_n_u8(static_cast<uint8_t>(lo)), vhi = vdupq_n_u8(static_cast<uint8_t>(hi));
    for (; i + 16 <= n; i += 16) vst1q_u8(out + i, vminq_u8(vmaxq_u8(vld1q_u8(x + i), vlo), vhi));
    for (; i < n; ++i) out[i] = static_cast<uint8_t>(std::clamp<int32_t>(x[i], lo, hi));
  }
}

void unpack_b1(size_t c, const uint64_t* bits, int8_t* out) {
  // Byte j of 16 channels takes bit byte j / 8, keeps bit j % 8 and turns it into -1 (set) or +1.
  static const uint8_t kSelect[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t select = vld1q_u8(kSelect), one = vdupq_n_u8(1);
  size_t ch = 0;
  for (; ch + 16 <= c; ch += 16) {
    const uint16_t word = static_cast<uint16_t>(bits[ch / 64] >> (ch % 64));
    const uint8x16_t spread =
        vcombine_u8(vdup_n_u8(static_cast<uint8_t>(word)), vdup_n_u8(static_cast<uint8_t>(word >> 8)));
    vst1q_s8(out + ch, vreinterpretq_s8_u8(vorrq_u8(vtstq_u8(spread, select), one)));
  }
  for (; ch < c; ++ch) out[ch] = (bits[ch / 64] >> (ch % 64)) & 1 ? -1 : 1;
}

}  // namespace lowbit::neon
#endif
