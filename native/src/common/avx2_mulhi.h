// avx2_mulhi.h: the signed 32-bit high multiply on AVX2, shared by the 8-bit element-wise kernels
// (qadd's terms) and the requantizer (epilogue). Include only from files built with -mavx2.
#pragma once
#include <immintrin.h>

namespace lowbit::avx2 {

// floor(x * m / 2^32) per signed 32-bit lane (AVX2 has no 32-bit high multiply): the even lanes'
// 64-bit products shifted down, blended with the odd lanes' products, whose high halves are in place.
inline __m256i mulhi_epi32(__m256i x, __m256i m) {
  const __m256i even = _mm256_mul_epi32(x, m);
  const __m256i odd = _mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(m, 32));
  return _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

// mulhi_epi32 where m holds one value in every lane, so the odd lanes need no shift of m.
inline __m256i mulhi_epi32_broadcast(__m256i x, __m256i m) {
  const __m256i even = _mm256_mul_epi32(x, m);
  const __m256i odd = _mm256_mul_epi32(_mm256_srli_epi64(x, 32), m);
  return _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

}  // namespace lowbit::avx2
