// kernels_avx2.cc: binary kernels for x86-64 AVX2 (vpshufb popcount GEMM, movemask packing).
#include <immintrin.h>

#include <algorithm>

#include "binary/kernels.h"
#include "common/checked_math.h"

namespace lowbit::avx2 {

namespace {

// GEMM register tile: kMR rows of A x kNR rows of B, 8 byte accumulators + 2 A + 1 B + 2 constants
// + 3 temporaries = 16 ymm. Larger tiles spill on 16 registers.
constexpr size_t kMR = 2;
constexpr size_t kNR = 4;
// Each step adds at most 8 to a byte counter, so 31 steps (248) is the most before it can wrap.
constexpr size_t kMaxSteps = 31;

// Per-byte popcount by nibble lookup (Mula): AVX2 has no vpopcnt, and vpshufb does 32 lookups at once.
inline __m256i popcount_bytes(__m256i x, __m256i lut, __m256i low_nibbles) {
  const __m256i lo = _mm256_and_si256(x, low_nibbles);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low_nibbles);
  return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

// [sum of bytes of v0, of v1, of v2, of v3] as int32.
inline __m128i sum_bytes4(__m256i v0, __m256i v1, __m256i v2, __m256i v3) {
  const __m256i zero = _mm256_setzero_si256();
  // vpsadbw leaves 4 qword sums below 2^16, so two of them share a qword as two dwords.
  const __m256i v01 = _mm256_or_si256(_mm256_sad_epu8(v0, zero), _mm256_slli_epi64(_mm256_sad_epu8(v1, zero), 32));
  const __m256i v23 = _mm256_or_si256(_mm256_sad_epu8(v2, zero), _mm256_slli_epi64(_mm256_sad_epu8(v3, zero), 32));
  const __m256i v0123 = _mm256_add_epi32(_mm256_unpacklo_epi64(v01, v23), _mm256_unpackhi_epi64(v01, v23));
  return _mm_add_epi32(_mm256_castsi256_si128(v0123), _mm256_extracti128_si256(v0123, 1));
}

// One MR x NR block of c. NR <= 4: a row's NR results fit one xmm.
template <size_t MR, size_t NR>
void gemm_tile(size_t kw, const uint64_t* a, size_t lda, const uint64_t* b, size_t ldb, int32_t kbits, int32_t* c,
               size_t ldc) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,  //
                                       0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low_nibbles = _mm256_set1_epi8(0x0f);
  const size_t steps = kw / 4;

  __m128i vdiffer[MR];
  for (size_t i = 0; i < MR; ++i) vdiffer[i] = _mm_setzero_si128();
  for (size_t s0 = 0; s0 < steps; s0 += kMaxSteps) {
    const size_t s1 = std::min(steps, s0 + kMaxSteps);
    __m256i vacc[MR][4];
    for (size_t i = 0; i < MR; ++i)
      for (size_t j = 0; j < 4; ++j) vacc[i][j] = _mm256_setzero_si256();
    for (size_t s = s0; s < s1; ++s) {
      __m256i va[MR];
      for (size_t i = 0; i < MR; ++i) va[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i * lda + 4 * s));
      for (size_t j = 0; j < NR; ++j) {
        const __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + j * ldb + 4 * s));
        for (size_t i = 0; i < MR; ++i)
          vacc[i][j] = _mm256_add_epi8(vacc[i][j], popcount_bytes(_mm256_xor_si256(va[i], vb), lut, low_nibbles));
      }
    }
    for (size_t i = 0; i < MR; ++i)
      vdiffer[i] = _mm_add_epi32(vdiffer[i], sum_bytes4(vacc[i][0], vacc[i][1], vacc[i][2], vacc[i][3]));
  }

  // The last kw % 4 words go to scalar popcnt, which runs on the integer ports beside the vector work.
  const __m128i vkbits = _mm_set1_epi32(kbits);
  for (size_t i = 0; i < MR; ++i) {
    alignas(16) int32_t tail[4] = {0, 0, 0, 0};
    for (size_t j = 0; j < NR; ++j)
      for (size_t w = 4 * steps; w < kw; ++w)
        tail[j] += static_cast<int32_t>(__builtin_popcountll(a[i * lda + w] ^ b[j * ldb + w]));
    const __m128i vdiffer_all = _mm_add_epi32(vdiffer[i], _mm_load_si128(reinterpret_cast<const __m128i*>(tail)));
    const __m128i vout = _mm_sub_epi32(vkbits, _mm_slli_epi32(vdiffer_all, 1));
    if constexpr (NR == 4) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(c + i * ldc), vout);
    } else {
      alignas(16) int32_t out[4];
      _mm_store_si128(reinterpret_cast<__m128i*>(out), vout);
      for (size_t j = 0; j < NR; ++j) c[i * ldc + j] = out[j];
    }
  }
}

using GemmTileFn = void (*)(size_t, const uint64_t*, size_t, const uint64_t*, size_t, int32_t, int32_t*, size_t);

template <size_t MR>
constexpr GemmTileFn kRowTiles[kNR + 1] = {nullptr, gemm_tile<MR, 1>, gemm_tile<MR, 2>, gemm_tile<MR, 3>,
                                           gemm_tile<MR, 4>};
// kTiles[mr][nr] covers an mr x nr block, mr in 1..kMR, nr in 1..kNR.
constexpr const GemmTileFn* kTiles[kMR + 1] = {nullptr, kRowTiles<1>, kRowTiles<2>};

}  // namespace

void b1_pack_f32(const float* src, size_t rows, size_t channels, uint64_t* dst) {
  const __m256 zero = _mm256_setzero_ps();
  const size_t words = words_for_bits(channels);
  for (size_t r = 0; r < rows; ++r, src += channels, dst += words) {
    for (size_t w = 0; w < words; ++w) {
      const float* x = src + 64 * w;
      const size_t count = std::min<size_t>(64, channels - 64 * w);
      uint64_t word = 0;
      size_t j = 0;
      // x < 0 (ordered), not the sign bit: -0.0 and NaN must pack as 0.
      for (; j + 8 <= count; j += 8)
        word |= static_cast<uint64_t>(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + j), zero, _CMP_LT_OQ))) << j;
      for (; j < count; ++j) word |= static_cast<uint64_t>(x[j] < 0.0f) << j;
      dst[w] = word;
    }
  }
}

void b1_pack_s8(const int8_t* src, size_t rows, size_t channels, uint64_t* dst) {
  const size_t words = words_for_bits(channels);
  for (size_t r = 0; r < rows; ++r, src += channels, dst += words) {
    for (size_t w = 0; w < words; ++w) {
      const int8_t* x = src + 64 * w;
      const size_t count = std::min<size_t>(64, channels - 64 * w);
      uint64_t word = 0;
      size_t j = 0;
      for (; j + 32 <= count; j += 32)
        word |= static_cast<uint64_t>(static_cast<uint32_t>(
                    _mm256_movemask_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + j)))))
                << j;
      for (; j + 8 <= count; j += 8)
        word |= static_cast<uint64_t>(_mm_movemask_epi8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + j))) & 0xff)
                << j;
      for (; j < count; ++j) word |= static_cast<uint64_t>(x[j] < 0) << j;
      dst[w] = word;
    }
  }
}

void b1_gemm(size_t m, size_t n, size_t kw, const uint64_t* a, size_t lda, const uint64_t* b, size_t ldb,
             int32_t kbits, int32_t* c, size_t ldc) {
  // Columns outer: the kNR rows of B stay in L1 while the (smaller) A tile streams past them.
  for (size_t j = 0; j < n; j += kNR) {
    const size_t nr = std::min(kNR, n - j);
    size_t i = 0;
    if (nr == kNR)
      for (; i + kMR <= m; i += kMR) gemm_tile<kMR, kNR>(kw, a + i * lda, lda, b + j * ldb, ldb, kbits, c + i * ldc + j, ldc);
    for (; i < m; i += kMR) {
      const size_t mr = std::min(kMR, m - i);
      kTiles[mr][nr](kw, a + i * lda, lda, b + j * ldb, ldb, kbits, c + i * ldc + j, ldc);
    }
  }
}

void b1_output_f32(size_t n, const int32_t* y, const B1OutputF32Params& p, float* out) {
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

namespace {
// dyadic_rescale_s8 for 4 lanes in int64: y, mult, bias sign-extended, shift zero-extended.
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

void b1_output_s8(size_t n, const int32_t* y, const B1OutputS8Params& p, int8_t* out) {
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
      __builtin_memcpy(&shift4, p.shift + k, 4);
      const __m256i vshift = _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(static_cast<int>(shift4)));
      vout[h] = dyadic_rescale4(vy, vmult, vshift, vbias, vlo, vhi);
    }
    const __m256i vbytes =
        _mm256_or_si256(_mm256_shuffle_epi8(vout[0], pick_first), _mm256_shuffle_epi8(vout[1], pick_second));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + c),
                     _mm_or_si128(_mm256_castsi256_si128(vbytes), _mm256_extracti128_si256(vbytes, 1)));
  }
  for (; c < n; ++c)
    out[c] = static_cast<int8_t>(dyadic_rescale_s8(y[c], p.mult[c], p.shift[c], p.bias[c], p.lo, p.hi));
}

void b1_output_b1(size_t n, const int32_t* y, const B1OutputB1Params& p, uint64_t* out) {
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
