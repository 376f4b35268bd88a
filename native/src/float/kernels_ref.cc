// kernels_ref.cc: the float kernels as plainly as they can be written (double sums, rounded once);
// every ISA must agree within float rounding.
#include "float/kernels.h"

namespace lowbit {

void pack_f32_panel(const float* w, size_t count, size_t k, size_t ldw, float* dst) {
  for (size_t kk = 0; kk < k; ++kk)
    for (size_t j = 0; j < kFPanelChannels; ++j) dst[kk * kFPanelChannels + j] = j < count ? w[j * ldw + kk] : 0.0f;
}

namespace ref {

void f32_gemm(size_t m, const float* const* rows, const FRun* runs, size_t nruns, const float* panel,
              const F32GemmOut& out, size_t n) {
  for (size_t i = 0; i < m; ++i) {
    uint16_t mask = 0;
    for (size_t j = 0; j < n; ++j) {
      double sum = out.bias[j];
      const float* w = panel + j;
      for (size_t r = 0; r < nruns; ++r)
        for (size_t t = 0; t < runs[r].length; ++t, w += kFPanelChannels)
          sum += double(rows[i][runs[r].offset + t]) * *w;
      const float v = static_cast<float>(sum);
      const float y = v < out.lo ? out.lo : (v > out.hi ? out.hi : v);
      if (out.threshold)
        mask |= static_cast<uint16_t>((y < out.threshold[j]) << j);
      else
        out.c[i * out.ldc + j] = y;
    }
    if (out.threshold) out.bits[i * out.ldb] = mask;
  }
}

void f32_dw_tap(size_t n, const float* x, const float* w, float* acc) {
  for (size_t c = 0; c < n; ++c) acc[c] += x[c] * w[c];
}

}  // namespace ref
}  // namespace lowbit
