// kernels_ref.cc: the integer kernels as plainly as they can be written; every ISA must match.
#include "integer/kernels.h"

namespace lowbit::ref {
namespace {

template <class Value>
void gemm(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel, int32_t* c, size_t ldc,
          Value value) {
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < kQPanelChannels; ++j) {
      int64_t sum = 0;
      for (size_t k = 0; k < kp; ++k) sum += static_cast<int8_t>(a[i * lda + k] ^ mask) * value(panel, j, k);
      c[i * ldc + j] = static_cast<int32_t>(sum);
    }
}

}  // namespace

void q8_gemm(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel, int32_t* c,
             size_t ldc) {
  gemm(m, kp, a, lda, mask, panel, c, ldc, q8_panel_value);
}

void q4_gemm(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel, int32_t* c,
             size_t ldc) {
  gemm(m, kp, a, lda, mask, panel, c, ldc, q4_panel_value);
}

void q8_dw_tap(size_t n, const uint8_t* x, uint8_t mask, const int8_t* w, int32_t* acc) {
  for (size_t c = 0; c < n; ++c) acc[c] += static_cast<int8_t>(x[c] ^ mask) * w[c];
}

void q16_small_k(size_t k, size_t n, const int16_t* x, const int16_t* w, size_t stride, const int32_t* bias,
                 int32_t* acc) {
  for (size_t c = 0; c < n; ++c) {
    int32_t sum = bias[c];
    for (size_t i = 0; i < k; ++i) sum += x[i] * w[i * stride + c];
    acc[c] = sum;
  }
}

}  // namespace lowbit::ref
