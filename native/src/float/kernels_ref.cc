// kernels_ref.cc: the float kernels as plainly as they can be written (double sums, rounded once);
// every ISA must agree within float rounding.
#include "float/kernels.h"

namespace lowbit {

void pack_f32_panel(const float* w, size_t count, size_t k, size_t ldw, float* dst) {
  for (size_t kk = 0; kk < k; ++kk)
    for (size_t j = 0; j < kFPanelChannels; ++j) dst[kk * kFPanelChannels + j] = j < count ? w[j * ldw + kk] : 0.0f;
}

namespace ref {

void f32_gemm(size_t m, size_t k, const float* a, size_t lda, const float* panel, const float* bias, float lo, float hi,
              float* c, size_t ldc, size_t n) {
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) {
      double sum = bias[j];
      for (size_t kk = 0; kk < k; ++kk) sum += double(a[i * lda + kk]) * panel[kk * kFPanelChannels + j];
      const float v = static_cast<float>(sum);
      c[i * ldc + j] = v < lo ? lo : (v > hi ? hi : v);
    }
}

void f32_dw_tap(size_t n, const float* x, const float* w, float* acc) {
  for (size_t c = 0; c < n; ++c) acc[c] += x[c] * w[c];
}

}  // namespace ref
}  // namespace lowbit
