// kernels_neon.cc: integer kernels for baseline AArch64 NEON (ARMv8.0, Cortex-A72: no dot product).
//
// Exactness: every int8 x int8 product is formed by SMULL into int16 (|p| <= 16384, exact) and
// widened into int32 by SADALP before any two such products meet, because two int16 products can
// overflow int16 ((-128)(-128) + (-128)(-128) = 32768). Only Q4 products (|p| <= 8 * 128 = 1024)
// are summed in int16 first, two groups at a time (|sum| <= 2048).
//
// Panel group g (see kernels.h) is 16 channels x 4 k. A 16-byte slice of it is 4 channels x 4 k,
// so broadcasting the row's 4 activation bytes of the group to every 32-bit lane lines the lanes
// up: SMULL of the low halves gives channels 4q, 4q+1 (4 products each), SMULL2 of the high halves
// channels 4q+2, 4q+3, and SADALP folds each into int32 lanes (channel, k pair). The two k-pair
// lanes of a channel are added once at the end (ADDP), so a row needs 8 accumulators for 16
// channels.
//
// Tiling, Cortex-A72: SMULL/SMLAL issue on F0 only and SADALP on F1 only, one per cycle each, so
// the inner loop runs at one SMULL + one SADALP per cycle when nothing else competes; the weight
// and activation loads go to the separate load pipe. A tile of 2 rows x 16 channels keeps
// 16 accumulators (16 independent SADALP chains hide its 4-cycle latency) plus 4 weight and
// 2 activation registers in the 32-register file; 4 rows would need 32 accumulators alone and
// spill. Each weight load feeds both rows, and the activation broadcast (LD1R) plus one EOR per
// row and group is all the per-row overhead: there is no per-element scalar work in a loop.
#if defined(__aarch64__)
#include <arm_neon.h>

#include "integer/kernels.h"
#include "integer/neon_common.h"

namespace lowbit::neon {

namespace {

// schedule_barrier() (neon_common.h) keeps GCC 12 from hoisting all the SMULLs of a step above their
// SADALPs.
using neon_common::load_activations4;
using neon_common::schedule_barrier;

// vacc[2q] holds channels 4q, 4q+1 and vacc[2q+1] channels 4q+2, 4q+3, each as two k-pair lanes.
inline void accumulate(int32x4_t* vacc, const int8x16_t (&vw)[4], int8x16_t va) {
#pragma GCC unroll 16
  for (size_t q = 0; q < 4; ++q) {
    vacc[2 * q] = vpadalq_s16(vacc[2 * q], vmull_s8(vget_low_s8(vw[q]), vget_low_s8(va)));
    vacc[2 * q + 1] = vpadalq_s16(vacc[2 * q + 1], vmull_high_s8(vw[q], va));
    schedule_barrier();
  }
}

// Two groups at once for Q4 weights (|w| <= 8): SMULL + SMLAL sum both groups' products in int16
// (|lane| <= 2 * 8 * 128 = 2048), then one SADALP. That halves the SADALP count, which keeps F1
// (which also runs the nibble shifts) no busier than F0.
inline void accumulate_pair(int32x4_t* vacc, const int8x16_t (&vw0)[4], int8x16_t va0, const int8x16_t (&vw1)[4],
                            int8x16_t va1) {
#pragma GCC unroll 16
  for (size_t q = 0; q < 4; ++q) {
    const int16x8_t vlo =
        vmlal_s8(vmull_s8(vget_low_s8(vw0[q]), vget_low_s8(va0)), vget_low_s8(vw1[q]), vget_low_s8(va1));
    const int16x8_t vhi = vmlal_high_s8(vmull_high_s8(vw0[q], va0), vw1[q], va1);
    vacc[2 * q] = vpadalq_s16(vacc[2 * q], vlo);
    vacc[2 * q + 1] = vpadalq_s16(vacc[2 * q + 1], vhi);
    schedule_barrier();
  }
}

inline void store_row(const int32x4_t* vacc, int32_t* c) {
#pragma GCC unroll 16
  for (size_t q = 0; q < 4; ++q) vst1q_s32(c + 4 * q, vpaddq_s32(vacc[2 * q], vacc[2 * q + 1]));
}

// Q4 group (32 bytes) -> 4 vectors in Q8 group order (vw[q] = channels 4q..4q+3 x 4 k). Byte i < 16
// holds channel i / 4 low and channel 8 + i / 4 high; byte 16 + i channels 4 + i / 4 and 12 + i / 4.
// The arithmetic shifts sign-extend the two's-complement nibbles.
inline void unpack_q4(const uint8_t* wg, int8x16_t (&vw)[4]) {
  const int8x16_t vbytes0 = vld1q_s8(reinterpret_cast<const int8_t*>(wg));
  const int8x16_t vbytes1 = vld1q_s8(reinterpret_cast<const int8_t*>(wg + 16));
  vw[0] = vshrq_n_s8(vshlq_n_s8(vbytes0, 4), 4);
  vw[1] = vshrq_n_s8(vshlq_n_s8(vbytes1, 4), 4);
  vw[2] = vshrq_n_s8(vbytes0, 4);
  vw[3] = vshrq_n_s8(vbytes1, 4);
}

template <size_t MR>
void q8_tile(size_t groups, const uint8_t* a, size_t lda, uint8x16_t vmask, const uint8_t* body, int32_t* c,
             size_t ldc) {
  int32x4_t vacc[MR][8];
#pragma GCC unroll 16
  for (size_t i = 0; i < MR; ++i)
#pragma GCC unroll 16
    for (size_t r = 0; r < 8; ++r) vacc[i][r] = vdupq_n_s32(0);
  const int8_t* wg = reinterpret_cast<const int8_t*>(body);
  for (size_t g = 0; g < groups; ++g, wg += 64) {
    const int8x16_t vw[4] = {vld1q_s8(wg), vld1q_s8(wg + 16), vld1q_s8(wg + 32), vld1q_s8(wg + 48)};
#pragma GCC unroll 16
    for (size_t i = 0; i < MR; ++i) accumulate(vacc[i], vw, load_activations4(a + i * lda + 4 * g, vmask));
  }
#pragma GCC unroll 16
  for (size_t i = 0; i < MR; ++i) store_row(vacc[i], c + i * ldc);
}

template <size_t MR>
void q4_tile(size_t groups, const uint8_t* a, size_t lda, uint8x16_t vmask, const uint8_t* body, int32_t* c,
             size_t ldc) {
  int32x4_t vacc[MR][8];
#pragma GCC unroll 16
  for (size_t i = 0; i < MR; ++i)
#pragma GCC unroll 16
    for (size_t r = 0; r < 8; ++r) vacc[i][r] = vdupq_n_s32(0);
  size_t g = 0;
  for (; g + 2 <= groups; g += 2) {
    int8x16_t vw0[4], vw1[4];
    unpack_q4(body + 32 * g, vw0);
    unpack_q4(body + 32 * g + 32, vw1);
#pragma GCC unroll 16
    for (size_t i = 0; i < MR; ++i) {
      const uint8_t* row = a + i * lda + 4 * g;
      accumulate_pair(vacc[i], vw0, load_activations4(row, vmask), vw1, load_activations4(row + 4, vmask));
    }
  }
  if (g < groups) {
    int8x16_t vw[4];
    unpack_q4(body + 32 * g, vw);
#pragma GCC unroll 16
    for (size_t i = 0; i < MR; ++i) accumulate(vacc[i], vw, load_activations4(a + i * lda + 4 * g, vmask));
  }
#pragma GCC unroll 16
  for (size_t i = 0; i < MR; ++i) store_row(vacc[i], c + i * ldc);
}

using TileFn = void (*)(size_t, const uint8_t*, size_t, uint8x16_t, const uint8_t*, int32_t*, size_t);

template <TileFn kTile2, TileFn kTile1>
void gemm(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel, int32_t* c,
          size_t ldc) {
  const uint8x16_t vmask = vdupq_n_u8(mask);
  const uint8_t* body = panel + kQPanelHeaderBytes;
  const size_t groups = kp / 4;
  size_t i = 0;
  for (; i + 2 <= m; i += 2) kTile2(groups, a + i * lda, lda, vmask, body, c + i * ldc, ldc);
  if (i < m) kTile1(groups, a + i * lda, lda, vmask, body, c + i * ldc, ldc);
}

}  // namespace

// SMULL + SADALP is exact for every weight.
void q8_gemm(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel, int32_t* c,
             size_t ldc) {
  gemm<q8_tile<2>, q8_tile<1>>(m, kp, a, lda, mask, panel, c, ldc);
}

void q4_gemm(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel, int32_t* c,
             size_t ldc) {
  gemm<q4_tile<2>, q4_tile<1>>(m, kp, a, lda, mask, panel, c, ldc);
}

namespace {

// Channels c .. c + 8 * H (H = 2: 16, H = 1: 8) of P pixels, all taps: the int32 sums stay in
// registers across the taps (4 * P of them for 16 channels, 16 at P = 4), each tap's weights are
// loaded once for the P pixels, and a pixel's tap costs its load, one EOR, SMULL (+ SMULL2) into
// int16 (exact: |x * w| <= 16384) and SADDW / SADDW2 into int32 (modulo 2^32 from the bias, as the
// contract wants). GCC 12's inner loop: 42 instructions per tap for 4 pixels x 16 channels, where
// one pixel at a time, loading and storing the 64 bytes of sums every tap, took 17 per 16 channels
// (0.66 against 1.06 per output and tap).
template <size_t P, size_t H>
void dw_block(size_t c, size_t n, size_t taps, const uint8_t* const* x, uint8x16_t vmask, const int8_t* w,
              const int32_t* bias, int32_t* acc) {
  int32x4_t sum[P][2 * H];
#pragma GCC unroll 4
  for (size_t p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (size_t i = 0; i < 2 * H; ++i) sum[p][i] = vld1q_s32(bias + c + 4 * i);
  for (size_t t = 0; t < taps; ++t) {
    const int8_t* wt = w + t * n + c;
    if constexpr (H == 2) {
      const int8x16_t vw = vld1q_s8(wt);
#pragma GCC unroll 4
      for (size_t p = 0; p < P; ++p) {
        const int8x16_t vx = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(x[p * taps + t] + c), vmask));
        const int16x8_t lo = vmull_s8(vget_low_s8(vx), vget_low_s8(vw)), hi = vmull_high_s8(vx, vw);
        sum[p][0] = vaddw_s16(sum[p][0], vget_low_s16(lo));
        sum[p][1] = vaddw_high_s16(sum[p][1], lo);
        sum[p][2] = vaddw_s16(sum[p][2], vget_low_s16(hi));
        sum[p][3] = vaddw_high_s16(sum[p][3], hi);
      }
    } else {
      const int8x8_t vw = vld1_s8(wt);
#pragma GCC unroll 4
      for (size_t p = 0; p < P; ++p) {
        const int8x8_t vx = vreinterpret_s8_u8(veor_u8(vld1_u8(x[p * taps + t] + c), vget_low_u8(vmask)));
        const int16x8_t prod = vmull_s8(vx, vw);
        sum[p][0] = vaddw_s16(sum[p][0], vget_low_s16(prod));
        sum[p][1] = vaddw_high_s16(sum[p][1], prod);
      }
    }
  }
#pragma GCC unroll 4
  for (size_t p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (size_t i = 0; i < 2 * H; ++i) vst1q_s32(acc + p * n + c + 4 * i, sum[p][i]);
}

// Blocks of 16 channels, then one of 8, over pixels kDwPixels at a time (and the last 1-3 alone).
constexpr size_t kDwPixels = 4;

template <size_t H>
void dw_channels(size_t c, size_t n, size_t taps, size_t pixels, const uint8_t* const* x, uint8x16_t vmask,
                 const int8_t* w, const int32_t* bias, int32_t* acc) {
  size_t p = 0;
  for (; p + kDwPixels <= pixels; p += kDwPixels)
    dw_block<kDwPixels, H>(c, n, taps, x + p * taps, vmask, w, bias, acc + p * n);
  for (; p < pixels; ++p) dw_block<1, H>(c, n, taps, x + p * taps, vmask, w, bias, acc + p * n);
}

}  // namespace

void q8_dw(size_t n, size_t taps, size_t pixels, const uint8_t* const* x, uint8_t mask, const int8_t* w,
           const int32_t* bias, int32_t* acc) {
  const uint8x16_t vmask = vdupq_n_u8(mask);
  size_t c = 0;
  for (; c + 16 <= n; c += 16) dw_channels<2>(c, n, taps, pixels, x, vmask, w, bias, acc);
  if (c + 8 <= n) dw_channels<1>(c, n, taps, pixels, x, vmask, w, bias, acc), c += 8;
  for (; c < n; ++c)  // the last < 8 channels; modulo 2^32 from the bias
    for (size_t p = 0; p < pixels; ++p) {
      uint32_t sum = static_cast<uint32_t>(bias[c]);
      for (size_t t = 0; t < taps; ++t)
        sum += static_cast<uint32_t>(static_cast<int8_t>(x[p * taps + t][c] ^ mask) * w[t * n + c]);
      acc[p * n + c] = static_cast<int32_t>(sum);
    }
}

// Per pixel and block of 16 channels four int32x4 sums, each tap adding w * x[i] with SMLAL by a
// scalar (|x * w| <= 255 * 128 is exact in the widened product).
void q16_small_k(size_t k, size_t n, size_t pixels, const int16_t* x, size_t ldx, const int16_t* w, size_t stride,
                 const int32_t* bias, int32_t* acc) {
  for (size_t p = 0; p < pixels; ++p, x += ldx, acc += n)
    for (size_t c0 = 0; c0 < n; c0 += 16) {
      int32x4_t s0 = vdupq_n_s32(0), s1 = s0, s2 = s0, s3 = s0;
      for (size_t i = 0; i < k; ++i) {
        const int16x8_t w0 = vld1q_s16(w + i * stride + c0), w1 = vld1q_s16(w + i * stride + c0 + 8);
        s0 = vmlal_n_s16(s0, vget_low_s16(w0), x[i]);
        s1 = vmlal_n_s16(s1, vget_high_s16(w0), x[i]);
        s2 = vmlal_n_s16(s2, vget_low_s16(w1), x[i]);
        s3 = vmlal_n_s16(s3, vget_high_s16(w1), x[i]);
      }
      int32_t sum[16];
      vst1q_s32(sum, s0), vst1q_s32(sum + 4, s1), vst1q_s32(sum + 8, s2), vst1q_s32(sum + 12, s3);
      for (size_t j = 0; j < 16 && c0 + j < n; ++j) acc[c0 + j] = sum[j] + bias[c0 + j];
    }
}

}  // namespace lowbit::neon
#endif  // defined(__aarch64__)
