// kernels_neon.cc: binary kernels for baseline AArch64 NEON (Cortex-A72: no dot product needed).
#if defined(__aarch64__)
#include <arm_neon.h>

#include "binary/kernels.h"
#include "binary/mst_count.h"
#include "common/checked_math.h"
#include "common/neon_bits.h"

namespace lowbit::neon {

namespace {

using neon_bits::kBitWeights;
using neon_bits::narrow_masks;
using neon_bits::pack_bits;

// A u16 lane of a popcount accumulator gains at most 16 per step (two bytes of at most 8 bits
// each), so 4095 steps of two words stay below 65536 before folding into u32.
constexpr size_t kMaxStepsU16 = 4095;

// One MR x NR tile of C. A step XORs two words of each A row with two words of each B row; an odd
// last word is loaded alone with a zero upper half, which adds nothing to the popcount.
template <size_t MR, size_t NR>
void b1_gemm_tile(size_t kw, const uint64_t* a, size_t lda, const uint64_t* b, size_t ldb, int32_t kbits, int32_t* c,
                  size_t ldc) {
  uint32x4_t vdiffer[MR];  // lane j: popcount(a_i ^ b_j) over the words done so far
  for (size_t i = 0; i < MR; ++i) vdiffer[i] = vdupq_n_u32(0);

  for (size_t w = 0; w < kw;) {
    const size_t block_end = kw - w > 2 * kMaxStepsU16 ? w + 2 * kMaxStepsU16 : kw;
    uint16x8_t vcount[MR][NR];
    for (size_t i = 0; i < MR; ++i)
      for (size_t j = 0; j < NR; ++j) vcount[i][j] = vdupq_n_u16(0);

    auto step = [&](const uint8x16_t(&va)[MR], const uint8x16_t(&vb)[NR]) {
      for (size_t i = 0; i < MR; ++i)
        for (size_t j = 0; j < NR; ++j) vcount[i][j] = vpadalq_u8(vcount[i][j], vcntq_u8(veorq_u8(va[i], vb[j])));
    };
    for (; w + 2 <= block_end; w += 2) {
      uint8x16_t va[MR], vb[NR];
      for (size_t i = 0; i < MR; ++i) va[i] = vreinterpretq_u8_u64(vld1q_u64(a + i * lda + w));
      for (size_t j = 0; j < NR; ++j) vb[j] = vreinterpretq_u8_u64(vld1q_u64(b + j * ldb + w));
      step(va, vb);
    }
    if (w < block_end) {
      uint8x16_t va[MR], vb[NR];
      const uint64x1_t vzero = vdup_n_u64(0);
      for (size_t i = 0; i < MR; ++i) va[i] = vreinterpretq_u8_u64(vcombine_u64(vld1_u64(a + i * lda + w), vzero));
      for (size_t j = 0; j < NR; ++j) vb[j] = vreinterpretq_u8_u64(vcombine_u64(vld1_u64(b + j * ldb + w), vzero));
      step(va, vb);
      ++w;
    }

    for (size_t i = 0; i < MR; ++i) {
      uint32x4_t vcount32[4];
      for (size_t j = 0; j < 4; ++j) vcount32[j] = j < NR ? vpaddlq_u16(vcount[i][j]) : vdupq_n_u32(0);
      const uint32x4_t vcount_0011 = vpaddq_u32(vcount32[0], vcount32[1]);
      const uint32x4_t vcount_2233 = vpaddq_u32(vcount32[2], vcount32[3]);
      vdiffer[i] = vaddq_u32(vdiffer[i], vpaddq_u32(vcount_0011, vcount_2233));
    }
  }

  const int32x4_t vkbits = vdupq_n_s32(kbits);
  for (size_t i = 0; i < MR; ++i) {
    const int32x4_t vc_0123 = vsubq_s32(vkbits, vreinterpretq_s32_u32(vshlq_n_u32(vdiffer[i], 1)));
    if (NR == 4) {
      vst1q_s32(c + i * ldc, vc_0123);
    } else {
      int32_t row[4];
      vst1q_s32(row, vc_0123);
      for (size_t j = 0; j < NR; ++j) c[i * ldc + j] = row[j];
    }
  }
}

using TileFn = void (*)(size_t, const uint64_t*, size_t, const uint64_t*, size_t, int32_t, int32_t*, size_t);
constexpr TileFn kEdgeTiles[4][4] = {
    {b1_gemm_tile<1, 1>, b1_gemm_tile<1, 2>, b1_gemm_tile<1, 3>, b1_gemm_tile<1, 4>},
    {b1_gemm_tile<2, 1>, b1_gemm_tile<2, 2>, b1_gemm_tile<2, 3>, b1_gemm_tile<2, 4>},
    {b1_gemm_tile<3, 1>, b1_gemm_tile<3, 2>, b1_gemm_tile<3, 3>, b1_gemm_tile<3, 4>},
    {b1_gemm_tile<4, 1>, b1_gemm_tile<4, 2>, b1_gemm_tile<4, 3>, b1_gemm_tile<4, 4>},
};

}  // namespace

void b1_pack_f32(const float* src, size_t rows, size_t channels, uint64_t* dst) {
  const size_t words = words_for_bits(channels);
  const float32x4_t vzero = vdupq_n_f32(0.0f);
  for (size_t r = 0; r < rows; ++r, src += channels, dst += words) {
    // vcltq_f32 is false for -0.0 and NaN, as the contract's sign(0) = +1 requires.
    auto mask16 = [&](size_t c) {
      return narrow_masks(vcltq_f32(vld1q_f32(src + c), vzero), vcltq_f32(vld1q_f32(src + c + 4), vzero),
                          vcltq_f32(vld1q_f32(src + c + 8), vzero), vcltq_f32(vld1q_f32(src + c + 12), vzero));
    };
    pack_bits(
        channels, mask16, [&](size_t c) { return src[c] < 0.0f; }, dst);
  }
}

void b1_pack_s8(const int8_t* src, size_t rows, size_t channels, uint64_t* dst) {
  const size_t words = words_for_bits(channels);
  const int8x16_t vzero = vdupq_n_s8(0);
  for (size_t r = 0; r < rows; ++r, src += channels, dst += words) {
    auto mask16 = [&](size_t c) { return vcltq_s8(vld1q_s8(src + c), vzero); };
    pack_bits(
        channels, mask16, [&](size_t c) { return src[c] < 0; }, dst);
  }
}

void b1_gemm(size_t m, size_t n, size_t kw, const uint64_t* a, size_t lda, const uint64_t* b, size_t ldb, int32_t kbits,
             int32_t* c, size_t ldc) {
  for (size_t i = 0; i < m; i += 4) {
    const size_t mr = m - i < 4 ? m - i : 4;
    for (size_t j = 0; j < n; j += 4) {
      const size_t nr = n - j < 4 ? n - j : 4;
      kEdgeTiles[mr - 1][nr - 1](kw, a + i * lda, lda, b + j * ldb, ldb, kbits, c + i * ldc + j, ldc);
    }
  }
}

namespace {
// 256 pixels as two q-register pairs' worth: NEON has 32 vector registers, so the counter's planes
// of two 128-bit halves still fit.
struct Q2 {
  struct T {
    uint8x16_t a, b;
  };
  static T zero() { return T{vdupq_n_u8(0), vdupq_n_u8(0)}; }
  static T load(const uint8_t* p) { return T{vld1q_u8(p), vld1q_u8(p + 16)}; }
  static T xor_(T x, T y) { return T{veorq_u8(x.a, y.a), veorq_u8(x.b, y.b)}; }
  static T and_(T x, T y) { return T{vandq_u8(x.a, y.a), vandq_u8(x.b, y.b)}; }
  static T or_(T x, T y) { return T{vorrq_u8(x.a, y.a), vorrq_u8(x.b, y.b)}; }
};
}  // namespace

void b1_mst_channel(const uint64_t* rows, const uint32_t* entries, size_t n, const int32_t* parent, int32_t sign,
                    int32_t base, int32_t shift, int32_t* y) {
  Q2::T planes[mst_count::kMaxPlanes];
  const size_t used = mst_count::count_rows<Q2>(reinterpret_cast<const uint8_t*>(rows), entries, n, planes);
  // Planes to integers, 16 pixels at a time: byte i gets the plane's byte i / 8 and tests bit i % 8
  // (vtst), and the counts build up as bytes, eight planes at a time, top plane first.
  const uint8x16_t bit = vld1q_u8(kBitWeights);
  const int32x4_t vshift = vdupq_n_s32(shift);
  const auto* plane_bytes = reinterpret_cast<const uint8_t*>(planes);  // 32 per plane
  for (size_t chunk = 0; chunk < kMstTile / 16; ++chunk) {
    int32x4_t count[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
    for (size_t first = 0; first < used; first += 8) {
      const size_t last = used < first + 8 ? used : first + 8;
      uint8x16_t bytes = vdupq_n_u8(0);
      for (size_t l = last; l-- > first;) {
        const uint8_t* pb = plane_bytes + l * 32 + chunk * 2;
        const uint8x16_t v = vcombine_u8(vdup_n_u8(pb[0]), vdup_n_u8(pb[1]));
        bytes = vsubq_u8(vaddq_u8(bytes, bytes), vtstq_u8(v, bit));  // vtst: 0xFF (-1) where set
      }
      const uint16x8_t lo = vmovl_u8(vget_low_u8(bytes)), hi = vmovl_u8(vget_high_u8(bytes));
      const uint32x4_t parts[4] = {vmovl_u16(vget_low_u16(lo)), vmovl_u16(vget_high_u16(lo)),
                                   vmovl_u16(vget_low_u16(hi)), vmovl_u16(vget_high_u16(hi))};
      const int32x4_t up = vdupq_n_s32(static_cast<int32_t>(first));
      for (size_t q = 0; q < 4; ++q) count[q] = vaddq_s32(count[q], vshlq_s32(vreinterpretq_s32_u32(parts[q]), up));
    }
    for (size_t q = 0; q < 4; ++q) {
      const size_t p = chunk * 16 + q * 4;
      int32x4_t v = vsubq_s32(vdupq_n_s32(base), vshlq_s32(count[q], vshift));
      if (sign != 0) v = sign > 0 ? vaddq_s32(v, vld1q_s32(parent + p)) : vsubq_s32(v, vld1q_s32(parent + p));
      vst1q_s32(y + p, v);
    }
  }
}

}  // namespace lowbit::neon
#endif  // defined(__aarch64__)
