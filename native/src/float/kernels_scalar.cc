// kernels_scalar.cc: the portable float kernel (no intrinsics): 4 rows x 16 channels of
// accumulators per pass over the panel, in a form the compiler vectorizes for the baseline ISA.
#include <algorithm>

#include "float/kernels.h"

namespace lowbit::scalar {
namespace {

constexpr size_t kRows = 4;

template <size_t R>
void tile(size_t k, const float* a, size_t lda, const float* panel, const float* bias, float lo, float hi, float* c,
          size_t ldc, size_t n) {
  float acc[R][kFPanelChannels];
  for (size_t r = 0; r < R; ++r)
    for (size_t j = 0; j < kFPanelChannels; ++j) acc[r][j] = bias[j];
  for (size_t kk = 0; kk < k; ++kk) {
    const float* w = panel + kk * kFPanelChannels;
    for (size_t r = 0; r < R; ++r) {
      const float x = a[r * lda + kk];
      for (size_t j = 0; j < kFPanelChannels; ++j) acc[r][j] += x * w[j];
    }
  }
  for (size_t r = 0; r < R; ++r)
    for (size_t j = 0; j < n; ++j) {
      const float v = acc[r][j];
      c[r * ldc + j] = v < lo ? lo : (v > hi ? hi : v);
    }
}

}  // namespace

void f32_gemm(size_t m, size_t k, const float* a, size_t lda, const float* panel, const float* bias, float lo, float hi,
              float* c, size_t ldc, size_t n) {
  size_t i = 0;
  for (; i + kRows <= m; i += kRows) tile<kRows>(k, a + i * lda, lda, panel, bias, lo, hi, c + i * ldc, ldc, n);
  for (; i < m; ++i) tile<1>(k, a + i * lda, lda, panel, bias, lo, hi, c + i * ldc, ldc, n);
}

}  // namespace lowbit::scalar
