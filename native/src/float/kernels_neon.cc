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

// Row i's clamped 16 channels: the first n stored, or the sign mask (bit j = y[j] < threshold[j];
// a NaN compares false, bit 0).
inline void store_row(const F32GemmOut& out, size_t i, const float32x4_t (&acc)[4], float32x4_t vlo, float32x4_t vhi,
                      size_t n) {
  float32x4_t y[4];
  for (int q = 0; q < 4; ++q) y[q] = clamp(acc[q], vlo, vhi);
  if (out.threshold) {
    const uint32x4_t lane_bit = {1, 2, 4, 8};
    uint32_t mask = 0;
    for (int q = 0; q < 4; ++q)
      mask |= vaddvq_u32(vandq_u32(vcltq_f32(y[q], vld1q_f32(out.threshold + 4 * q)), lane_bit)) << (4 * q);
    out.bits[i * out.ldb] = static_cast<uint16_t>(mask & ((uint32_t{1} << n) - 1));
    return;
  }
  float* c = out.c + i * out.ldc;
  if (n == kFPanelChannels) {
    for (int q = 0; q < 4; ++q) vst1q_f32(c + 4 * q, y[q]);
    return;
  }
  float tmp[kFPanelChannels];
  for (int q = 0; q < 4; ++q) vst1q_f32(tmp + 4 * q, y[q]);
  for (size_t j = 0; j < n; ++j) c[j] = tmp[j];
}

// Rows i0 .. i0 + R - 1 of the call.
template <size_t R>
void tile(size_t i0, const float* const* rows, const FRun* runs, size_t nruns, const float* panel,
          const F32GemmOut& out, float32x4_t vlo, float32x4_t vhi, size_t n) {
  float32x4_t acc[R][4];
  const float* a[R];
  for (size_t r = 0; r < R; ++r) {
    a[r] = rows[i0 + r];
    for (int q = 0; q < 4; ++q) acc[r][q] = vld1q_f32(out.bias + 4 * q);
  }
  const float* w = panel;
  for (size_t run = 0; run < nruns; ++run) {
    const size_t end = runs[run].offset + runs[run].length;
    for (size_t kk = runs[run].offset; kk < end; ++kk, w += kFPanelChannels) {
      const float32x4_t w0 = vld1q_f32(w), w1 = vld1q_f32(w + 4), w2 = vld1q_f32(w + 8), w3 = vld1q_f32(w + 12);
#pragma GCC unroll 6
      for (size_t r = 0; r < R; ++r) {
        const float32x4_t x = vld1q_dup_f32(a[r] + kk);
        acc[r][0] = vfmaq_f32(acc[r][0], x, w0);
        acc[r][1] = vfmaq_f32(acc[r][1], x, w1);
        acc[r][2] = vfmaq_f32(acc[r][2], x, w2);
        acc[r][3] = vfmaq_f32(acc[r][3], x, w3);
      }
    }
  }
  for (size_t r = 0; r < R; ++r) store_row(out, i0 + r, acc[r], vlo, vhi, n);
}

}  // namespace

void f32_gemm(size_t m, const float* const* rows, const FRun* runs, size_t nruns, const float* panel,
              const F32GemmOut& out, size_t n) {
  const float32x4_t vlo = vdupq_n_f32(out.lo), vhi = vdupq_n_f32(out.hi);
  size_t i = 0;
  for (; i + kRows <= m; i += kRows) tile<kRows>(i, rows, runs, nruns, panel, out, vlo, vhi, n);
  switch (m - i) {
    case 5:
      return tile<5>(i, rows, runs, nruns, panel, out, vlo, vhi, n);
    case 4:
      return tile<4>(i, rows, runs, nruns, panel, out, vlo, vhi, n);
    case 3:
      return tile<3>(i, rows, runs, nruns, panel, out, vlo, vhi, n);
    case 2:
      return tile<2>(i, rows, runs, nruns, panel, out, vlo, vhi, n);
    case 1:
      return tile<1>(i, rows, runs, nruns, panel, out, vlo, vhi, n);
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
