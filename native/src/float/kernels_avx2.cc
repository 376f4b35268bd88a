// kernels_avx2.cc: the float kernel for x86-64 AVX2 + FMA: 6 rows x 16 channels of accumulators
// (12 ymm) + 2 weight vectors + 1 broadcast row value, the register budget of the 16 ymm, so each
// step of K costs 2 loads, 6 broadcasts and 12 FMAs: FMA-bound on Zen 3 (2 FMA, 3 loads a cycle).
#include <immintrin.h>

#include "float/kernels.h"

namespace lowbit::avx2 {
namespace {

constexpr size_t kRows = 6;

// Rows 0-5 of the tile (a: channels 0-7, b: 8-15), in named variables so they stay in registers.
#define LOWBIT_FROWS(R, X) \
  { X(0, c0a, c0b) }       \
  if constexpr ((R) > 1) { \
    X(1, c1a, c1b)         \
  }                        \
  if constexpr ((R) > 2) { \
    X(2, c2a, c2b)         \
  }                        \
  if constexpr ((R) > 3) { \
    X(3, c3a, c3b)         \
  }                        \
  if constexpr ((R) > 4) { \
    X(4, c4a, c4b)         \
  }                        \
  if constexpr ((R) > 5) { \
    X(5, c5a, c5b)         \
  }

// Lane masks for the first n of 8 floats (maskstore writes the lanes whose sign bit is set).
inline __m256i first_lanes(size_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Clamps (NaN passes: max/min return their second operand when it is NaN) and stores the first
// n of 16 channels of one row.
inline void store_row(float* c, __m256 va, __m256 vb, __m256 vlo, __m256 vhi, size_t n) {
  va = _mm256_min_ps(vhi, _mm256_max_ps(vlo, va));
  vb = _mm256_min_ps(vhi, _mm256_max_ps(vlo, vb));
  if (n == kFPanelChannels) {
    _mm256_storeu_ps(c, va);
    _mm256_storeu_ps(c + 8, vb);
  } else if (n > 8) {
    _mm256_storeu_ps(c, va);
    _mm256_maskstore_ps(c + 8, first_lanes(n - 8), vb);
  } else {
    _mm256_maskstore_ps(c, first_lanes(n), va);
  }
}

template <size_t R>
void tile(size_t k, const float* a, size_t lda, const float* panel, const float* bias, __m256 vlo, __m256 vhi, float* c,
          size_t ldc, size_t n) {
  static_assert(R >= 1 && R <= kRows, "rows 0-5");
  const __m256 vbias_a = _mm256_loadu_ps(bias), vbias_b = _mm256_loadu_ps(bias + 8);
  __m256 c0a = vbias_a, c0b = vbias_b, c1a = vbias_a, c1b = vbias_b, c2a = vbias_a, c2b = vbias_b;
  __m256 c3a = vbias_a, c3b = vbias_b, c4a = vbias_a, c4b = vbias_b, c5a = vbias_a, c5b = vbias_b;
  const float* a0 = a;
  const float* a1 = R > 1 ? a0 + lda : a0;
  const float* a2 = R > 2 ? a1 + lda : a0;
  const float* a3 = R > 3 ? a2 + lda : a0;
  const float* a4 = R > 4 ? a3 + lda : a0;
  const float* a5 = R > 5 ? a4 + lda : a0;
  for (size_t kk = 0; kk < k; ++kk) {
    const __m256 w_a = _mm256_loadu_ps(panel + kk * kFPanelChannels);
    const __m256 w_b = _mm256_loadu_ps(panel + kk * kFPanelChannels + 8);
#define LOWBIT_FSTEP(r, ca, cb)                      \
  {                                                  \
    const __m256 x = _mm256_broadcast_ss(a##r + kk); \
    ca = _mm256_fmadd_ps(x, w_a, ca);                \
    cb = _mm256_fmadd_ps(x, w_b, cb);                \
  }
    LOWBIT_FROWS(R, LOWBIT_FSTEP)
#undef LOWBIT_FSTEP
  }
#define LOWBIT_FSTORE(r, ca, cb) store_row(c + (r)*ldc, ca, cb, vlo, vhi, n);
  LOWBIT_FROWS(R, LOWBIT_FSTORE)
#undef LOWBIT_FSTORE
}

// One row (a GEMV): the 6-row tile would leave 2 dependent FMA chains, bound by the FMA latency
// (4 cycles), so K is split 4 ways over 8 accumulators that are summed at the end.
void row(size_t k, const float* a, const float* panel, const float* bias, __m256 vlo, __m256 vhi, float* c, size_t n) {
  __m256 s0a = _mm256_loadu_ps(bias), s0b = _mm256_loadu_ps(bias + 8);
  __m256 s1a = _mm256_setzero_ps(), s1b = s1a, s2a = s1a, s2b = s1a, s3a = s1a, s3b = s1a;
  size_t kk = 0;
  for (; kk + 4 <= k; kk += 4) {
    const float* w = panel + kk * kFPanelChannels;
    const __m256 x0 = _mm256_broadcast_ss(a + kk), x1 = _mm256_broadcast_ss(a + kk + 1);
    const __m256 x2 = _mm256_broadcast_ss(a + kk + 2), x3 = _mm256_broadcast_ss(a + kk + 3);
    s0a = _mm256_fmadd_ps(x0, _mm256_loadu_ps(w), s0a);
    s0b = _mm256_fmadd_ps(x0, _mm256_loadu_ps(w + 8), s0b);
    s1a = _mm256_fmadd_ps(x1, _mm256_loadu_ps(w + 16), s1a);
    s1b = _mm256_fmadd_ps(x1, _mm256_loadu_ps(w + 24), s1b);
    s2a = _mm256_fmadd_ps(x2, _mm256_loadu_ps(w + 32), s2a);
    s2b = _mm256_fmadd_ps(x2, _mm256_loadu_ps(w + 40), s2b);
    s3a = _mm256_fmadd_ps(x3, _mm256_loadu_ps(w + 48), s3a);
    s3b = _mm256_fmadd_ps(x3, _mm256_loadu_ps(w + 56), s3b);
  }
  for (; kk < k; ++kk) {
    const __m256 x = _mm256_broadcast_ss(a + kk);
    s0a = _mm256_fmadd_ps(x, _mm256_loadu_ps(panel + kk * kFPanelChannels), s0a);
    s0b = _mm256_fmadd_ps(x, _mm256_loadu_ps(panel + kk * kFPanelChannels + 8), s0b);
  }
  const __m256 va = _mm256_add_ps(_mm256_add_ps(s0a, s1a), _mm256_add_ps(s2a, s3a));
  const __m256 vb = _mm256_add_ps(_mm256_add_ps(s0b, s1b), _mm256_add_ps(s2b, s3b));
  store_row(c, va, vb, vlo, vhi, n);
}

}  // namespace

void f32_gemm(size_t m, size_t k, const float* a, size_t lda, const float* panel, const float* bias, float lo, float hi,
              float* c, size_t ldc, size_t n) {
  const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
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
  for (; c + 8 <= n; c += 8)
    _mm256_storeu_ps(acc + c,
                     _mm256_fmadd_ps(_mm256_loadu_ps(x + c), _mm256_loadu_ps(w + c), _mm256_loadu_ps(acc + c)));
  if (c < n) {
    const __m256i mask = first_lanes(n - c);
    const __m256 v = _mm256_fmadd_ps(_mm256_maskload_ps(x + c, mask), _mm256_maskload_ps(w + c, mask),
                                     _mm256_maskload_ps(acc + c, mask));
    _mm256_maskstore_ps(acc + c, mask, v);
  }
}

}  // namespace lowbit::avx2
