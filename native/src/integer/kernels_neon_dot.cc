// kernels_neon_dot.cc: integer kernels for AArch64 with the ARMv8.2 dot product (SDOT; Cortex-A55,
// A76 and later, Raspberry Pi 5). Built with -march=armv8.2-a+dotprod and chosen at run time only
// when HWCAP_ASIMDDP is set (cpu/dispatch.cc), so nothing here runs on a Cortex-A72.
//
// SDOT adds four int8 x int8 products into each int32 lane exactly, which is the panel layout's
// group: a 16-byte slice of group g is 4 channels x 4 k, so SDOT with the row's 4 activation bytes
// in every lane gives the 4 channels' group sums directly and a row needs only 4 accumulators for
// the 16 channels, with no final reduction.
//
// Tiling, Cortex-A76: SDOT issues on both ASIMD pipes (2 per cycle, 2-cycle latency), so the tile
// needs at least 4 independent chains; 4 rows x 16 channels gives 16 accumulators, and each
// weight vector, loaded once per group, feeds 4 rows. The activations come 16 bytes (4 groups) per
// row per load, are XORed once, and SDOT's by-element form picks each group's 4 bytes out of the
// register, so per 4 groups and 4 rows there are 16 weight loads, 4 activation loads and 4 EORs for
// 64 SDOTs. Registers: 16 accumulators + 4 activations + 4 weights + the mask.
#if defined(__aarch64__)
#include <arm_neon.h>

#include "integer/kernels.h"
#include "integer/neon_common.h"

namespace lowbit::neon_dot {

namespace {

constexpr size_t kMR = 4;

// schedule_barrier() (neon_common.h) keeps GCC 12 from hoisting the 16 weight loads of a 4-group
// step above their uses; load_activations4 serves the last kp % 16 / 4 groups, so that no byte past
// kp is read.
using neon_common::load_activations4;
using neon_common::schedule_barrier;

inline int8x16_t load_activations16(const uint8_t* p, uint8x16_t vmask) {
  return vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p), vmask));
}

// One group's weights as 4 vectors, vw[q] = channels 4q..4q+3 x 4 k.
// Q8: the group's 64 bytes as they are.
// Q4: the nibbles are not sign-extended but moved to the top of the byte: (byte << 4) is 16 * the
// low nibble's value and (byte & 0xF0) 16 * the high one's, both exact int8 in [-128, 112]. That
// is 4 instructions per group instead of 6 (SHL + SSHR per low nibble), and AND issues on either
// pipe. The sums are then exactly 16 * the true ones, and |16 * sum| <= kQMaxK * 128 * 128 = 2^30
// still fits int32, so an arithmetic shift right by 4 at the end recovers them exactly.
template <bool kQ4>
inline void load_group(const uint8_t* body, size_t g, int8x16_t (&vw)[4]) {
  if (kQ4) {
    const uint8x16_t vbytes0 = vld1q_u8(body + 32 * g);
    const uint8x16_t vbytes1 = vld1q_u8(body + 32 * g + 16);
    const uint8x16_t vhigh = vdupq_n_u8(0xF0);
    // Byte i < 16 holds channel i / 4 low and 8 + i / 4 high; byte 16 + i channels 4 + i / 4 and 12 + i / 4.
    vw[0] = vreinterpretq_s8_u8(vshlq_n_u8(vbytes0, 4));
    vw[1] = vreinterpretq_s8_u8(vshlq_n_u8(vbytes1, 4));
    vw[2] = vreinterpretq_s8_u8(vandq_u8(vbytes0, vhigh));
    vw[3] = vreinterpretq_s8_u8(vandq_u8(vbytes1, vhigh));
  } else {
    const int8_t* wg = reinterpret_cast<const int8_t*>(body + 64 * g);
    vw[0] = vld1q_s8(wg);
    vw[1] = vld1q_s8(wg + 16);
    vw[2] = vld1q_s8(wg + 32);
    vw[3] = vld1q_s8(wg + 48);
  }
}

// Group kLane of the 4 held in each row's activation register.
template <int kLane, size_t MR>
inline void dot_lane(int32x4_t (&vacc)[MR][4], const int8x16_t (&vw)[4], const int8x16_t (&va)[MR]) {
#pragma GCC unroll 16
  for (size_t i = 0; i < MR; ++i)
#pragma GCC unroll 16
    for (size_t q = 0; q < 4; ++q) vacc[i][q] = vdotq_laneq_s32(vacc[i][q], vw[q], va[i], kLane);
  schedule_barrier();
}

template <bool kQ4, size_t MR>
void tile(size_t groups, const uint8_t* a, size_t lda, uint8x16_t vmask, const uint8_t* body, int32_t* c, size_t ldc) {
  int32x4_t vacc[MR][4];
#pragma GCC unroll 16
  for (size_t i = 0; i < MR; ++i)
#pragma GCC unroll 16
    for (size_t q = 0; q < 4; ++q) vacc[i][q] = vdupq_n_s32(0);

  size_t g = 0;
  for (; g + 4 <= groups; g += 4) {
    int8x16_t va[MR];
#pragma GCC unroll 16
    for (size_t i = 0; i < MR; ++i) va[i] = load_activations16(a + i * lda + 4 * g, vmask);
    int8x16_t vw[4];
    load_group<kQ4>(body, g, vw);
    dot_lane<0>(vacc, vw, va);
    load_group<kQ4>(body, g + 1, vw);
    dot_lane<1>(vacc, vw, va);
    load_group<kQ4>(body, g + 2, vw);
    dot_lane<2>(vacc, vw, va);
    load_group<kQ4>(body, g + 3, vw);
    dot_lane<3>(vacc, vw, va);
  }
  for (; g < groups; ++g) {
    int8x16_t vw[4];
    load_group<kQ4>(body, g, vw);
#pragma GCC unroll 16
    for (size_t i = 0; i < MR; ++i) {
      const int8x16_t va = load_activations4(a + i * lda + 4 * g, vmask);
#pragma GCC unroll 16
      for (size_t q = 0; q < 4; ++q) vacc[i][q] = vdotq_s32(vacc[i][q], vw[q], va);
    }
  }

#pragma GCC unroll 16
  for (size_t i = 0; i < MR; ++i)
#pragma GCC unroll 16
    for (size_t q = 0; q < 4; ++q) vst1q_s32(c + i * ldc + 4 * q, kQ4 ? vshrq_n_s32(vacc[i][q], 4) : vacc[i][q]);
}

template <bool kQ4>
void gemm(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel, int32_t* c,
          size_t ldc) {
  const uint8x16_t vmask = vdupq_n_u8(mask);
  const uint8_t* body = panel + kQPanelHeaderBytes;
  const size_t groups = kp / 4;
  size_t i = 0;
  for (; i + kMR <= m; i += kMR) tile<kQ4, kMR>(groups, a + i * lda, lda, vmask, body, c + i * ldc, ldc);
  switch (m - i) {
    case 3:
      tile<kQ4, 3>(groups, a + i * lda, lda, vmask, body, c + i * ldc, ldc);
      break;
    case 2:
      tile<kQ4, 2>(groups, a + i * lda, lda, vmask, body, c + i * ldc, ldc);
      break;
    case 1:
      tile<kQ4, 1>(groups, a + i * lda, lda, vmask, body, c + i * ldc, ldc);
      break;
    default:
      break;
  }
}

}  // namespace

// SDOT is exact for every int8 weight.
void q8_gemm(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel, int32_t* c,
             size_t ldc) {
  gemm<false>(m, kp, a, lda, mask, panel, c, ldc);
}

void q4_gemm(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel, int32_t* c,
             size_t ldc) {
  gemm<true>(m, kp, a, lda, mask, panel, c, ldc);
}

// The depthwise taps have no 4-long reduction for SDOT to use.
void q8_dw(size_t n, size_t taps, size_t pixels, const uint8_t* const* x, uint8_t mask, const int8_t* w,
           const int32_t* bias, int32_t* acc) {
  neon::q8_dw(n, taps, pixels, x, mask, w, bias, acc);
}

// No 4-long int8 reduction here either (the operands are int16).
void q16_small_k(size_t k, size_t n, size_t pixels, const int16_t* x, size_t ldx, const int16_t* w, size_t stride,
                 const int32_t* bias, int32_t* acc) {
  neon::q16_small_k(k, n, pixels, x, ldx, w, stride, bias, acc);
}

}  // namespace lowbit::neon_dot
#endif  // defined(__aarch64__)
