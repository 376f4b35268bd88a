// kernels_avx2.cc: the float kernel for x86-64 AVX2 + FMA: 6 rows x 16 channels of accumulators
// (12 ymm) + 2 weight vectors + 1 broadcast row value, the register budget of the 16 ymm, so each
// step of K costs 2 loads, 6 broadcasts and 12 FMAs: FMA-bound on Zen 3 (2 FMA, 3 loads a cycle).
// The row values are broadcast from the input itself (row origin + run offset), so a convolution
// gathers no patch rows.
#include <immintrin.h>

#include <cmath>

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

// Row i's epilogue: the clamp (NaN passes: max/min return their second operand when it is NaN),
// then its first n of 16 channels stored, or its sign mask (ordered less-than: NaN compares false,
// bit 0). The constants are loaded here, not held through the K loop, whose 15 live registers leave
// none to spare.
template <bool Bits, bool Clamp>
inline void store_row(const F32GemmOut& out, size_t i, __m256 va, __m256 vb, size_t n) {
  if (Clamp) {
    const __m256 lo = _mm256_broadcast_ss(&out.lo), hi = _mm256_broadcast_ss(&out.hi);
    va = _mm256_min_ps(hi, _mm256_max_ps(lo, va));
    vb = _mm256_min_ps(hi, _mm256_max_ps(lo, vb));
  }
  if (Bits) {
    const uint32_t below_a =
        static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(va, _mm256_loadu_ps(out.threshold), _CMP_LT_OQ)));
    const uint32_t below_b =
        static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(vb, _mm256_loadu_ps(out.threshold + 8), _CMP_LT_OQ)));
    out.bits[i * out.ldb] = static_cast<uint16_t>((below_a | below_b << 8) & ((uint32_t{1} << n) - 1));
    return;
  }
  float* c = out.c + i * out.ldc;
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

// Rows i0 .. i0 + R - 1 of the call.
template <size_t R, bool Bits, bool Clamp>
void tile(size_t i0, const float* const* rows, const FRun* runs, size_t nruns, const float* panel,
          const F32GemmOut& out, size_t n) {
  static_assert(R >= 1 && R <= kRows, "rows 0-5");
  const __m256 bias_a = _mm256_loadu_ps(out.bias), bias_b = _mm256_loadu_ps(out.bias + 8);
  __m256 c0a = bias_a, c0b = bias_b, c1a = bias_a, c1b = bias_b, c2a = bias_a, c2b = bias_b;
  __m256 c3a = bias_a, c3b = bias_b, c4a = bias_a, c4b = bias_b, c5a = bias_a, c5b = bias_b;
  const float* a0 = rows[i0];
  const float* a1 = R > 1 ? rows[i0 + 1] : a0;
  const float* a2 = R > 2 ? rows[i0 + 2] : a0;
  const float* a3 = R > 3 ? rows[i0 + 3] : a0;
  const float* a4 = R > 4 ? rows[i0 + 4] : a0;
  const float* a5 = R > 5 ? rows[i0 + 5] : a0;
  const float* w = panel;
  for (size_t r = 0; r < nruns; ++r) {
    const size_t end = runs[r].offset + runs[r].length;
    for (size_t kk = runs[r].offset; kk < end; ++kk, w += kFPanelChannels) {
      const __m256 w_a = _mm256_loadu_ps(w), w_b = _mm256_loadu_ps(w + 8);
#define LOWBIT_FSTEP(r, ca, cb)                      \
  {                                                  \
    const __m256 x = _mm256_broadcast_ss(a##r + kk); \
    ca = _mm256_fmadd_ps(x, w_a, ca);                \
    cb = _mm256_fmadd_ps(x, w_b, cb);                \
  }
      LOWBIT_FROWS(R, LOWBIT_FSTEP)
#undef LOWBIT_FSTEP
    }
  }
#define LOWBIT_FSTORE(r, ca, cb) store_row<Bits, Clamp>(out, i0 + (r), ca, cb, n);
  LOWBIT_FROWS(R, LOWBIT_FSTORE)
#undef LOWBIT_FSTORE
}

template <bool Bits, bool Clamp>
void gemm(size_t m, const float* const* rows, const FRun* runs, size_t nruns, const float* panel, const F32GemmOut& out,
          size_t n) {
  size_t i = 0;
  for (; i + kRows <= m; i += kRows) tile<kRows, Bits, Clamp>(i, rows, runs, nruns, panel, out, n);
  switch (m - i) {
    case 5:
      return tile<5, Bits, Clamp>(i, rows, runs, nruns, panel, out, n);
    case 4:
      return tile<4, Bits, Clamp>(i, rows, runs, nruns, panel, out, n);
    case 3:
      return tile<3, Bits, Clamp>(i, rows, runs, nruns, panel, out, n);
    case 2:
      return tile<2, Bits, Clamp>(i, rows, runs, nruns, panel, out, n);
    case 1:
      return tile<1, Bits, Clamp>(i, rows, runs, nruns, panel, out, n);
    default:
      return;
  }
}

}  // namespace

void f32_gemm(size_t m, const float* const* rows, const FRun* runs, size_t nruns, const float* panel,
              const F32GemmOut& out, size_t n) {
  // Without a clamp (lo = -inf, hi = +inf) the clamp is skipped: it would change nothing.
  const bool clamp = out.lo != -INFINITY || out.hi != INFINITY;
  if (out.threshold)
    return clamp ? gemm<true, true>(m, rows, runs, nruns, panel, out, n)
                 : gemm<true, false>(m, rows, runs, nruns, panel, out, n);
  return clamp ? gemm<false, true>(m, rows, runs, nruns, panel, out, n)
               : gemm<false, false>(m, rows, runs, nruns, panel, out, n);
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
