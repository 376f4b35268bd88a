// kernels_neon.cc: the float kernel for AArch64 NEON: 6 rows x 16 channels of accumulators (24 q
// registers) + 4 weight vectors + 1 broadcast row value, within the 32 registers, so each step of K
// costs 4 loads, 6 broadcasts and 24 FMAs (vfmaq_f32).
#if defined(__aarch64__)
#include <arm_neon.h>

#include "float/kernels.h"

namespace lowbit::neon {
namespace {

constexpr size_t kRows = 6;

// Clamp by compare-and-select (as the output transforms do), then store the first n of 16 channels.
inline float32x4_t clamp(float32x4_t v, float32x4_t vlo, float32x4_t vhi) {
  return vbslq_f32(vcltq_f32(v, vlo), vlo, vbslq_f32(vcgtq_f32(v, vhi), vhi, v));
}

inline void store_row(float* c, const float32x4_t (&acc)[4], float32x4_t vlo, float32x4_t vhi, size_t n) {
  if (n == kFPanelChannels) {
    for (int q = 0; q < 4; ++q) vst1q_f32(c + 4 * q, clamp(acc[q], vlo, vhi));
    return;
  }
  float tmp[kFPanelChannels];
  for (int q = 0; q < 4; ++q) vst1q_f32(tmp + 4 * q, clamp(acc[q], vlo, vhi));
  for (size_t j = 0; j < n; ++j) c[j] = tmp[j];
}

template <size_t R>
void tile(size_t k, const float* a, size_t lda, const float* panel, const float* bias, float32x4_t vlo, float32x4_t vhi,
          float* c, size_t ldc, size_t n) {
  float32x4_t acc[R][4];
  for (size_t r = 0; r < R; ++r)
    for (int q = 0; q < 4; ++q) acc[r][q] = vld1q_f32(bias + 4 * q);
  for (size_t kk = 0; kk < k; ++kk) {
    const float* w = panel + kk * kFPanelChannels;
    const float32x4_t w0 = vld1q_f32(w), w1 = vld1q_f32(w + 4), w2 = vld1q_f32(w + 8), w3 = vld1q_f32(w + 12);
#pragma GCC unroll 6
    for (size_t r = 0; r < R; ++r) {
      const float32x4_t x = vld1q_dup_f32(a + r * lda + kk);
      acc[r][0] = vfmaq_f32(acc[r][0], x, w0);
      acc[r][1] = vfmaq_f32(acc[r][1], x, w1);
      acc[r][2] = vfmaq_f32(acc[r][2], x, w2);
      acc[r][3] = vfmaq_f32(acc[r][3], x, w3);
    }
  }
  for (size_t r = 0; r < R; ++r) store_row(c + r * ldc, acc[r], vlo, vhi, n);
}

// One row (a GEMV): K split 2 ways over 8 accumulators, so the FMA latency does not bound it.
void row(size_t k, const float* a, const float* panel, const float* bias, float32x4_t vlo, float32x4_t vhi, float* c,
         size_t n) {
  float32x4_t s0[4], s1[4];
  for (int q = 0; q < 4; ++q) s0[q] = vld1q_f32(bias + 4 * q), s1[q] = vdupq_n_f32(0.0f);
  size_t kk = 0;
  for (; kk + 2 <= k; kk += 2) {
    const float* w = panel + kk * kFPanelChannels;
    const float32x4_t x0 = vld1q_dup_f32(a + kk), x1 = vld1q_dup_f32(a + kk + 1);
    for (int q = 0; q < 4; ++q) {
      s0[q] = vfmaq_f32(s0[q], x0, vld1q_f32(w + 4 * q));
      s1[q] = vfmaq_f32(s1[q], x1, vld1q_f32(w + 16 + 4 * q));
    }
  }
  if (kk < k) {
    const float32x4_t x = vld1q_dup_f32(a + kk);
    for (int q = 0; q < 4; ++q) s0[q] = vfmaq_f32(s0[q], x, vld1q_f32(panel + kk * kFPanelChannels + 4 * q));
  }
  float32x4_t sum[4];
  for (int q = 0; q < 4; ++q) sum[q] = vaddq_f32(s0[q], s1[q]);
  store_row(c, sum, vlo, vhi, n);
}

}  // namespace

void f32_gemm(size_t m, size_t k, const float* a, size_t lda, const float* panel, const float* bias, float lo, float hi,
              float* c, size_t ldc, size_t n) {
  const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
  size_t i = 0;
  for (; i + kRows <= m; i += kRows) tile<kRows>(k, a + i * lda, lda, panel, bias, vlo, vhi, c + i * ldc, ldc, n);
  a += i * lda, c += i * ldc;
  switch (m - i) {
    case 5:
      return tile<5>(k, a, lda, panel, bias, vlo, vhi, c, ldc, n);
    case 4:
      return tile<4>(k, a, lda, panel, bias, vlo, vhi, c, ldc, n);
    case 3:
      return tile<3>(k, a, lda, panel, bias, vlo, vhi, c, ldc, n);
    case 2:
      return tile<2>(k, a, lda, panel, bias, vlo, vhi, c, ldc, n);
    case 1:
      return row(k, a, panel, bias, vlo, vhi, c, n);
    default:
      return;
  }
}

void f32_dw_tap(size_t n, const float* x, const float* w, float* acc) {
  size_t c = 0;
  for (; c + 4 <= n; c += 4) vst1q_f32(acc + c, vfmaq_f32(vld1q_f32(acc + c), vld1q_f32(x + c), vld1q_f32(w + c)));
  for (; c < n; ++c) acc[c] += x[c] * w[c];
}

}  // namespace lowbit::neon
#endif
