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

template <class Value>
void gemm_runs(size_t m, size_t kp, size_t runs, const uint8_t* const* a, uint8_t mask, const uint8_t* panel,
               int32_t* c, size_t ldc, Value value) {
  const size_t len = kp / runs;
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < kQPanelChannels; ++j) {
      int64_t sum = 0;
      for (size_t k = 0; k < kp; ++k)
        sum += static_cast<int8_t>(a[i * runs + k / len][k % len] ^ mask) * value(panel, j, k);
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

void q8_gemm_runs(size_t m, size_t kp, size_t runs, const uint8_t* const* a, uint8_t mask, const uint8_t* panel,
                  int32_t* c, size_t ldc) {
  gemm_runs(m, kp, runs, a, mask, panel, c, ldc, q8_panel_value);
}

void q4_gemm_runs(size_t m, size_t kp, size_t runs, const uint8_t* const* a, uint8_t mask, const uint8_t* panel,
                  int32_t* c, size_t ldc) {
  gemm_runs(m, kp, runs, a, mask, panel, c, ldc, q4_panel_value);
}

void q8_dw(size_t n, size_t taps, size_t pixels, const uint8_t* const* x, uint8_t mask, const int8_t* w,
           const int32_t* bias, int32_t* acc) {
  for (size_t p = 0; p < pixels; ++p)
    for (size_t c = 0; c < n; ++c) {
      int64_t sum = 0;
      for (size_t t = 0; t < taps; ++t) sum += static_cast<int8_t>(x[p * taps + t][c] ^ mask) * w[t * n + c];
      acc[p * n + c] = static_cast<int32_t>(static_cast<uint32_t>(bias[c]) + static_cast<uint32_t>(sum));
    }
}

void q16_small_k(size_t k, size_t n, size_t pixels, const int16_t* x, size_t ldx, const int16_t* w, size_t stride,
                 const int32_t* bias, int32_t* acc) {
  for (size_t p = 0; p < pixels; ++p)
    for (size_t c = 0; c < n; ++c) {
      int32_t sum = bias[c];
      for (size_t i = 0; i < k; ++i) sum += x[p * ldx + i] * w[i * stride + c];
      acc[p * n + c] = sum;
    }
}

}  // namespace lowbit::ref
