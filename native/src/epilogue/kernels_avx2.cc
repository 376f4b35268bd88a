// kernels_avx2.cc: output transforms for x86-64 AVX2 (8 channels per step; the dyadic rescale in
// 64-bit lanes, the b1 compare through movemask).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "epilogue/kernels.h"

namespace lowbit::avx2 {

namespace {

// requantize_value on 4 int64 lanes: y, mult, bias sign-extended, shift zero-extended. Exact:
// |y * mult| < 2^62 and round <= 2^61, so nothing wraps before the clamp.
inline __m256i dyadic_rescale4(__m256i y, __m256i mult, __m256i shift, __m256i bias, __m256i lo, __m256i hi) {
  const __m256i one = _mm256_set1_epi64x(1);
  const __m256i sign_bit = _mm256_set1_epi64x(INT64_MIN);
  const __m256i round = _mm256_srli_epi64(_mm256_sllv_epi64(one, shift), 1);  // 2^(e-1), or 0 when e = 0
  const __m256i sum = _mm256_add_epi64(_mm256_mul_epi32(y, mult), round);
  // No 64-bit arithmetic shift in AVX2: bias by 2^63, shift logically, remove 2^63 >> e.
  const __m256i floor_shifted =
      _mm256_sub_epi64(_mm256_srlv_epi64(_mm256_xor_si256(sum, sign_bit), shift), _mm256_srlv_epi64(sign_bit, shift));
  __m256i v = _mm256_add_epi64(floor_shifted, bias);
  v = _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
  return _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
}

}  // namespace

void output_f32(size_t n, const int32_t* y, const OutputF32Params& p, float* out) {
  const __m256 vlo = _mm256_set1_ps(p.lo), vhi = _mm256_set1_ps(p.hi);
  size_t c = 0;
  for (; c + 8 <= n; c += 8) {
    const __m256 vy = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + c)));
    // Multiply then add, unfused, as the scalar path rounds. max(lo, v) / min(hi, v) return v when v
    // is NaN, as the scalar comparisons do.
    __m256 v = _mm256_add_ps(_mm256_mul_ps(vy, _mm256_loadu_ps(p.scale + c)), _mm256_loadu_ps(p.bias + c));
    v = _mm256_min_ps(vhi, _mm256_max_ps(vlo, v));
    _mm256_storeu_ps(out + c, v);
  }
  for (; c < n; ++c) {
    const float v = static_cast<float>(y[c]) * p.scale[c] + p.bias[c];
    out[c] = v < p.lo ? p.lo : (v > p.hi ? p.hi : v);
  }
}

void output_s8(size_t n, const int32_t* y, const RequantizeParams& p, int8_t* out) {
  const __m256i vlo = _mm256_set1_epi64x(p.lo), vhi = _mm256_set1_epi64x(p.hi);
  // Byte 0 of each qword: lane 0 to bytes 0-1, lane 1 to bytes 2-3 (first vector) or 4-5 / 6-7 (second).
  const __m256i pick_first = _mm256_setr_epi8(0, 8, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  //
                                              -1, -1, 0, 8, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i pick_second = _mm256_setr_epi8(-1, -1, -1, -1, 0, 8, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  //
                                               -1, -1, -1, -1, -1, -1, 0, 8, -1, -1, -1, -1, -1, -1, -1, -1);
  size_t c = 0;
  for (; c + 8 <= n; c += 8) {
    __m256i vout[2];
    for (size_t h = 0; h < 2; ++h) {
      const size_t k = c + 4 * h;
      const __m256i vy = _mm256_cvtepi32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y + k)));
      const __m256i vmult = _mm256_cvtepi32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p.mult + k)));
      const __m256i vbias = _mm256_cvtepi32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p.bias + k)));
      uint32_t shift4;
      std::memcpy(&shift4, p.shift + k, 4);
      const __m256i vshift = _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(static_cast<int>(shift4)));
      vout[h] = dyadic_rescale4(vy, vmult, vshift, vbias, vlo, vhi);
    }
    const __m256i vbytes =
        _mm256_or_si256(_mm256_shuffle_epi8(vout[0], pick_first), _mm256_shuffle_epi8(vout[1], pick_second));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + c),
                     _mm_or_si128(_mm256_castsi256_si128(vbytes), _mm256_extracti128_si256(vbytes, 1)));
  }
  for (; c < n; ++c) out[c] = static_cast<int8_t>(requantize_value(y[c], p.mult[c], p.shift[c], p.bias[c], p.lo, p.hi));
}

void output_b1(size_t n, const int32_t* y, const OutputB1Params& p, uint64_t* out) {
  const __m256i zero = _mm256_setzero_si256();
  for (size_t w = 0; w * 64 < n; ++w) {
    const size_t begin = 64 * w;
    const size_t count = std::min<size_t>(64, n - begin);
    uint64_t word = 0;
    size_t j = 0;
    for (; j + 8 <= count; j += 8) {
      const size_t k = begin + j;
      const __m256i vy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + k));
      const __m256i vthreshold = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.threshold + k));
      const __m256i vflip = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p.flip + k)));
      // (y < t) XOR (flip != 0) == NOT((y < t) XOR (flip == 0)).
      const __m256i vkeep = _mm256_xor_si256(_mm256_cmpgt_epi32(vthreshold, vy), _mm256_cmpeq_epi32(vflip, zero));
      const uint64_t bits = ~static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(vkeep))) & 0xffu;
      word |= bits << j;
    }
    for (; j < count; ++j) {
      const size_t k = begin + j;
      word |= static_cast<uint64_t>((y[k] < p.threshold[k]) ^ (p.flip[k] != 0)) << j;
    }
    out[w] = word;
  }
}

}  // namespace lowbit::avx2

namespace lowbit::avx2 {

namespace {

// output_f32_fused with its options fixed, so that a row of a few vectors runs no tests.
template <bool kResidual, bool kPrelu, bool kSign>
void f32_fused_rows(size_t m, size_t n, const int32_t* y, size_t ldy, const OutputF32FusedParams& p, float* out,
                    size_t ldo, uint64_t* bits, size_t ldbits) {
  const __m256 vlo = _mm256_set1_ps(p.lo), vhi = _mm256_set1_ps(p.hi), zero = _mm256_setzero_ps();
  const float* residual = p.residual;
  for (size_t i = 0; i < m; ++i, y += ldy, out += ldo) {
    for (size_t w = 0; w * 64 < n; ++w) {
      const size_t begin = 64 * w, count = std::min<size_t>(64, n - begin);
      uint64_t word = 0;
      size_t j = 0;
      for (; j + 8 <= count; j += 8) {
        const size_t c = begin + j;
        const __m256 vy = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + c)));
        __m256 v = _mm256_add_ps(_mm256_mul_ps(vy, _mm256_loadu_ps(p.scale + c)), _mm256_loadu_ps(p.bias + c));
        if constexpr (kResidual) v = _mm256_add_ps(v, _mm256_loadu_ps(residual + c));
        if constexpr (kPrelu) {
          const __m256 u = _mm256_sub_ps(v, _mm256_loadu_ps(p.input_bias + c));
          // u >= 0 ordered: NaN takes u * slope, NaN as well, as the scalar ternary does.
          const __m256 r =
              _mm256_blendv_ps(_mm256_mul_ps(u, _mm256_loadu_ps(p.slope + c)), u, _mm256_cmp_ps(u, zero, _CMP_GE_OQ));
          v = _mm256_add_ps(r, _mm256_loadu_ps(p.output_bias + c));
        }
        v = _mm256_min_ps(vhi, _mm256_max_ps(vlo, v));  // NaN passes through, as in output_f32
        _mm256_storeu_ps(out + c, v);
        if constexpr (kSign) {
          const __m256 below = _mm256_cmp_ps(v, _mm256_loadu_ps(p.threshold + c), _CMP_LT_OQ);
          word |= static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_ps(below))) << j;
        }
      }
      for (; j < count; ++j) {
        const size_t c = begin + j;
        out[c] = fused_value(p, residual, c, y[c]);
        if constexpr (kSign) word |= static_cast<uint64_t>(out[c] < p.threshold[c]) << j;
      }
      if constexpr (kSign) bits[i * ldbits + w] = word;
    }
    if constexpr (kResidual) residual += p.residual_stride;
  }
}

template <bool kResidual, bool kPrelu>
constexpr OutputF32FusedFn kFusedRows[2] = {f32_fused_rows<kResidual, kPrelu, false>,
                                            f32_fused_rows<kResidual, kPrelu, true>};

}  // namespace

void output_f32_fused(size_t m, size_t n, const int32_t* y, size_t ldy, const OutputF32FusedParams& p, float* out,
                      size_t ldo, uint64_t* bits, size_t ldbits) {
  const bool sign = p.threshold != nullptr;
  const OutputF32FusedFn rows = p.residual ? (p.slope ? kFusedRows<true, true>[sign] : kFusedRows<true, false>[sign])
                                           : (p.slope ? kFusedRows<false, true>[sign] : kFusedRows<false, false>[sign]);
  rows(m, n, y, ldy, p, out, ldo, bits, ldbits);
}

}  // namespace lowbit::avx2
