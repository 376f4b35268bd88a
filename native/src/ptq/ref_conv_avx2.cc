// ref_conv_avx2.cc: reference_conv's tile loop with AVX2 + FMA; run only where the active ISA has
// them. Four channels by eight pixels in eight float64 registers. A float32 product is exact in
// float64, so the fused multiply-add rounds each sum as the separate multiply and add of the
// JavaScript loop do: the same bits. Single-channel tiles (depthwise, a group's last og % 4
// channels) take the portable loop of ref_conv_tile.h.
#include <immintrin.h>

#define LOWBIT_REF_CONV_NS avx2
#include "ptq/ref_conv_tile.h"

namespace lowbit::avx2 {
namespace {

static_assert(kRefPixels == 8, "one 8-float load per tap");

template <bool Unit>
void tile4(const RefConvTile& t, double* out) {
  __m256d a[4][2];
  for (size_t k = 0; k < 4; ++k) a[k][0] = a[k][1] = _mm256_set1_pd(t.init[k]);
  for (size_t ci = 0; ci < t.cg; ++ci) {
    const float* xp = t.xb + ci * t.plane + (Unit ? t.base : 0);
    const float* wc = t.wt + ci * t.ntaps;
    for (size_t tap = 0; tap < t.ntaps; ++tap) {
      const float* xt = xp + t.taps[tap];
      const size_t* o = t.offs;
      const __m256 v =
          Unit ? _mm256_loadu_ps(xt)
               : _mm256_setr_ps(xt[o[0]], xt[o[1]], xt[o[2]], xt[o[3]], xt[o[4]], xt[o[5]], xt[o[6]], xt[o[7]]);
      const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
      for (size_t k = 0; k < 4; ++k) {
        const __m256d w = _mm256_set1_pd(wc[k * t.ksize + tap]);
        a[k][0] = _mm256_fmadd_pd(w, lo, a[k][0]);
        a[k][1] = _mm256_fmadd_pd(w, hi, a[k][1]);
      }
    }
  }
  for (size_t k = 0; k < 4; ++k) {
    _mm256_storeu_pd(out + k * 8, a[k][0]);
    _mm256_storeu_pd(out + k * 8 + 4, a[k][1]);
  }
}

}  // namespace

void ref_conv_tile_entry(const RefConvTile& t, size_t ob, double* acc) {
  if (ob == 4)
    t.unit ? tile4<true>(t, acc) : tile4<false>(t, acc);
  else
    ref_conv_tile_any(t, ob, acc);
}

}  // namespace lowbit::avx2
