// kernels_avx2.cc: f32 element-wise kernels for x86-64 AVX2, 8 floats per step. The min / max
// and compare forms are chosen so NaN and -0.0 take the scalar expressions' branches.
#include <immintrin.h>

#include "eltwise_f32/kernels.h"

namespace lowbit::avx2 {

namespace {

// _mm256_max_ps(lo, v) is lo > v ? lo : v, _mm256_min_ps(hi, t) is hi < t ? hi : t: together
// v < lo ? lo : (v > hi ? hi : v), NaN v passing through.
inline __m256 clamp8(__m256 v, __m256 vlo, __m256 vhi) { return _mm256_min_ps(vhi, _mm256_max_ps(vlo, v)); }

}  // namespace

void add_f32(size_t n, const float* a, const float* b, float lo, float hi, float* out) {
  const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, clamp8(_mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)), vlo, vhi));
  for (; i < n; ++i) out[i] = clamp_value(a[i] + b[i], lo, hi);
}

void clamp_f32(size_t n, const float* x, float lo, float hi, float* out) {
  const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, clamp8(_mm256_loadu_ps(x + i), vlo, vhi));
  for (; i < n; ++i) out[i] = clamp_value(x[i], lo, hi);
}

void prelu_f32(size_t n, const float* x, const float* slope, const float* input_bias, const float* output_bias,
               float* out) {
  const __m256 zero = _mm256_setzero_ps();
  size_t c = 0;
  for (; c + 8 <= n; c += 8) {
    const __m256 v = _mm256_sub_ps(_mm256_loadu_ps(x + c), _mm256_loadu_ps(input_bias + c));
    const __m256 neg = _mm256_mul_ps(v, _mm256_loadu_ps(slope + c));
    // v >= 0 (ordered: false for NaN, which then takes v * slope, NaN as well).
    const __m256 y = _mm256_blendv_ps(neg, v, _mm256_cmp_ps(v, zero, _CMP_GE_OQ));
    _mm256_storeu_ps(out + c, _mm256_add_ps(y, _mm256_loadu_ps(output_bias + c)));
  }
  for (; c < n; ++c) out[c] = prelu_value(x[c], slope[c], input_bias[c], output_bias[c]);
}

// Four vectors (32 floats) of a row at a time through the whole window, then one vector, then
// single values: the running values stay in registers, one store per output.
void max_taps_f32(size_t n, const float* const* src, size_t taps, float* out) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256 m[4];
    for (int j = 0; j < 4; ++j) m[j] = _mm256_loadu_ps(src[0] + i + 8 * j);
    // _mm256_max_ps(x, m) is x > m ? x : m.
    for (size_t t = 1; t < taps; ++t)
      for (int j = 0; j < 4; ++j) m[j] = _mm256_max_ps(_mm256_loadu_ps(src[t] + i + 8 * j), m[j]);
    for (int j = 0; j < 4; ++j) _mm256_storeu_ps(out + i + 8 * j, m[j]);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 m = _mm256_loadu_ps(src[0] + i);
    for (size_t t = 1; t < taps; ++t) m = _mm256_max_ps(_mm256_loadu_ps(src[t] + i), m);
    _mm256_storeu_ps(out + i, m);
  }
  for (; i < n; ++i) out[i] = max_taps_value(src, taps, i);
}

void avg_taps_f32(size_t n, const float* const* src, size_t taps, float d, float* out) {
  const __m256 vd = _mm256_set1_ps(d);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256 v[4];
    for (int j = 0; j < 4; ++j) v[j] = _mm256_setzero_ps();
    for (size_t t = 0; t < taps; ++t)
      for (int j = 0; j < 4; ++j) v[j] = _mm256_add_ps(v[j], _mm256_loadu_ps(src[t] + i + 8 * j));
    for (int j = 0; j < 4; ++j) _mm256_storeu_ps(out + i + 8 * j, _mm256_div_ps(v[j], vd));
  }
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_setzero_ps();
    for (size_t t = 0; t < taps; ++t) v = _mm256_add_ps(v, _mm256_loadu_ps(src[t] + i));
    _mm256_storeu_ps(out + i, _mm256_div_ps(v, vd));
  }
  for (; i < n; ++i) out[i] = avg_taps_value(src, taps, i, d);
}

void div_f32(size_t n, const float* x, float d, float* out) {
  const __m256 vd = _mm256_set1_ps(d);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_div_ps(_mm256_loadu_ps(x + i), vd));
  for (; i < n; ++i) out[i] = x[i] / d;
}

void sign_f32(size_t n, const float* x, const float* threshold, uint64_t* out) {
  for (size_t w = 0; w * 64 < n; ++w) {
    const size_t begin = 64 * w, count = n - begin < 64 ? n - begin : 64;
    uint64_t word = 0;
    size_t j = 0;
    for (; j + 8 <= count; j += 8) {
      // Ordered less-than: NaN compares false, bit 0.
      const __m256 below =
          _mm256_cmp_ps(_mm256_loadu_ps(x + begin + j), _mm256_loadu_ps(threshold + begin + j), _CMP_LT_OQ);
      word |= static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_ps(below))) << j;
    }
    for (; j < count; ++j) word |= static_cast<uint64_t>(x[begin + j] < threshold[begin + j]) << j;
    out[w] = word;
  }
}

}  // namespace lowbit::avx2
