// TEMPORARY placeholder: forwards to the scalar kernels until the neon kernels land.
#include "integer/kernels.h"

namespace lowbit::neon {
void q8_gemm(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel, bool fr,
             int32_t* c, size_t ldc) { scalar::q8_gemm(m, kp, a, lda, mask, panel, fr, c, ldc); }
void q4_gemm(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel, int32_t* c,
             size_t ldc) { scalar::q4_gemm(m, kp, a, lda, mask, panel, c, ldc); }
void dw_tap(size_t n, const uint8_t* x, uint8_t mask, const int8_t* w, int32_t* acc) { scalar::dw_tap(n, x, mask, w, acc); }
}  // namespace lowbit::neon
