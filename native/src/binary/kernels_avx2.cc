// kernels_avx2.cc: binary kernels for x86-64 AVX2 (vpshufb popcount GEMM, movemask packing).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "binary/kernels.h"
#include "binary/mst_count.h"
#include "common/checked_math.h"

namespace lowbit::avx2 {

namespace {

// GEMM register tile: 1 row of A x 8 rows of B. 8 byte accumulators + A + 2 constants + 3
// temporaries fit the 16 ymm registers with B read as a memory operand. A 2x4 tile needs a second A
// register and a B register on top; GCC then spills accumulators (measured slower, worst at kw = 9).
// Loads are not the limit (9 per 16 vpshufb), and the final reduction costs the same per output.
constexpr size_t kNR = 8;
// Each step adds at most 8 to a byte counter, so 31 steps (248) is the most before it can wrap.
constexpr size_t kMaxSteps = 31;

inline __m256i load256(const uint64_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

inline __m256i nibble_popcounts() {
  return _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,  //
                          0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
}

// acc + the per-byte popcount of x, by nibble lookup (Mula): AVX2 has no vpopcnt, and one vpshufb
// does 32 lookups.
inline __m256i add_popcount_bytes(__m256i acc, __m256i x, __m256i lut, __m256i low_nibbles) {
  const __m256i lo = _mm256_and_si256(x, low_nibbles);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low_nibbles);
  return _mm256_add_epi8(acc, _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi)));
}

// [sum of the bytes of v0, ..., of v7] as int32; each byte at most 248.
inline __m256i sum_bytes8(__m256i v0, __m256i v1, __m256i v2, __m256i v3, __m256i v4, __m256i v5, __m256i v6,
                          __m256i v7) {
  const __m256i zero = _mm256_setzero_si256();
  // vpsadbw leaves 4 qword sums below 2^11: two packs narrow them to words without saturating, and
  // vpmaddwd adds the two words of each output. Dwords: [v0 v1 v2 v3 | v0 v1 v2 v3] (qwords 0-1, 2-3).
  const auto sum4 = [&](__m256i w, __m256i x, __m256i y, __m256i z) {
    const __m256i wx = _mm256_packus_epi32(_mm256_sad_epu8(w, zero), _mm256_sad_epu8(x, zero));
    const __m256i yz = _mm256_packus_epi32(_mm256_sad_epu8(y, zero), _mm256_sad_epu8(z, zero));
    return _mm256_madd_epi16(_mm256_packus_epi32(wx, yz), _mm256_set1_epi16(1));
  };
  const __m256i v0123 = sum4(v0, v1, v2, v3), v4567 = sum4(v4, v5, v6, v7);
  return _mm256_add_epi32(_mm256_permute2x128_si256(v0123, v4567, 0x20), _mm256_permute2x128_si256(v0123, v4567, 0x31));
}

// Differing bits of row a against the 8 rows of b over words [4 * s0, 4 * s1), s1 - s0 <= kMaxSteps.
inline __m256i differ_steps(const uint64_t* a, const uint64_t* b, size_t ldb, size_t s0, size_t s1) {
  const __m256i lut = nibble_popcounts();
  const __m256i low_nibbles = _mm256_set1_epi8(0x0f);
  __m256i vacc0 = _mm256_setzero_si256(), vacc1 = vacc0, vacc2 = vacc0, vacc3 = vacc0, vacc4 = vacc0, vacc5 = vacc0,
          vacc6 = vacc0, vacc7 = vacc0;
  for (size_t w = 4 * s0; w < 4 * s1; w += 4) {
    const __m256i va = load256(a + w);
    vacc0 = add_popcount_bytes(vacc0, _mm256_xor_si256(va, load256(b + w)), lut, low_nibbles);
    vacc1 = add_popcount_bytes(vacc1, _mm256_xor_si256(va, load256(b + ldb + w)), lut, low_nibbles);
    vacc2 = add_popcount_bytes(vacc2, _mm256_xor_si256(va, load256(b + 2 * ldb + w)), lut, low_nibbles);
    vacc3 = add_popcount_bytes(vacc3, _mm256_xor_si256(va, load256(b + 3 * ldb + w)), lut, low_nibbles);
    vacc4 = add_popcount_bytes(vacc4, _mm256_xor_si256(va, load256(b + 4 * ldb + w)), lut, low_nibbles);
    vacc5 = add_popcount_bytes(vacc5, _mm256_xor_si256(va, load256(b + 5 * ldb + w)), lut, low_nibbles);
    vacc6 = add_popcount_bytes(vacc6, _mm256_xor_si256(va, load256(b + 6 * ldb + w)), lut, low_nibbles);
    vacc7 = add_popcount_bytes(vacc7, _mm256_xor_si256(va, load256(b + 7 * ldb + w)), lut, low_nibbles);
    // Pins the accumulators to registers: without it GCC 12 spills three of them in this loop.
    asm("" : "+x"(vacc0), "+x"(vacc1), "+x"(vacc2), "+x"(vacc3), "+x"(vacc4), "+x"(vacc5), "+x"(vacc6), "+x"(vacc7));
  }
  return sum_bytes8(vacc0, vacc1, vacc2, vacc3, vacc4, vacc5, vacc6, vacc7);
}

// Word w of B rows first, first + 2, first + 4, first + 6 (first = 0: even columns, 1: odd).
inline __m256i column_words(const uint64_t* b, size_t ldb, size_t w, size_t first) {
  return _mm256_set_epi64x(
      static_cast<long long>(b[(first + 6) * ldb + w]), static_cast<long long>(b[(first + 4) * ldb + w]),
      static_cast<long long>(b[(first + 2) * ldb + w]), static_cast<long long>(b[first * ldb + w]));
}

// Columns 0..7 of the m rows of c: rows of a against the 8 rows of b. kTail = kw % 4.
//
// The last kTail words of the 8 B rows are the same for every A row, so they are gathered once
// into two vectors per word (rows 0, 2, 4, 6 and rows 1, 3, 5, 7); per A row the word of a is
// broadcast against both, and vpsadbw leaves each column's count in its own qword.
template <size_t kTail>
void gemm_8_columns(size_t m, size_t kw, const uint64_t* a, size_t lda, const uint64_t* b, size_t ldb, int32_t kbits,
                    int32_t* c, size_t ldc) {
  const size_t steps = kw / 4, w = 4 * steps;
  const __m256i vkbits = _mm256_set1_epi32(kbits);
  __m256i tail_even[kTail > 0 ? kTail : 1], tail_odd[kTail > 0 ? kTail : 1];
  for (size_t t = 0; t < kTail; ++t) {
    tail_even[t] = column_words(b, ldb, w + t, 0);
    tail_odd[t] = column_words(b, ldb, w + t, 1);
  }
  for (size_t i = 0; i < m; ++i, a += lda, c += ldc) {
    __m256i vdiffer = differ_steps(a, b, ldb, 0, std::min(steps, kMaxSteps));
    for (size_t s0 = kMaxSteps; s0 < steps; s0 += kMaxSteps)
      vdiffer = _mm256_add_epi32(vdiffer, differ_steps(a, b, ldb, s0, std::min(steps, s0 + kMaxSteps)));
    if constexpr (kTail != 0) {
      const __m256i lut = nibble_popcounts();
      const __m256i low_nibbles = _mm256_set1_epi8(0x0f);
      const __m256i zero = _mm256_setzero_si256();
      __m256i even = zero, odd = zero;
      for (size_t t = 0; t < kTail; ++t) {
        const __m256i va = _mm256_set1_epi64x(static_cast<long long>(a[w + t]));
        even = add_popcount_bytes(even, _mm256_xor_si256(va, tail_even[t]), lut, low_nibbles);
        odd = add_popcount_bytes(odd, _mm256_xor_si256(va, tail_odd[t]), lut, low_nibbles);
      }
      // Each qword sum is below 2^8, so the odd columns shift into the free high dwords.
      const __m256i counts =
          _mm256_or_si256(_mm256_sad_epu8(even, zero), _mm256_slli_epi64(_mm256_sad_epu8(odd, zero), 32));
      vdiffer = _mm256_add_epi32(vdiffer, counts);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c), _mm256_sub_epi32(vkbits, _mm256_slli_epi32(vdiffer, 1)));
  }
}

// As gemm_8_columns, for steps = kw / 4 <= kMaxSteps (kSteps = steps for short K, unrolled, or 0
// when only known at run time). (a ^ b) & 0x0f = (a & 0x0f) ^ (b & 0x0f), and likewise for the high
// nibbles: the 8 rows of B are split into nibbles once per call (on the stack, at most 16 KiB), and
// each A row once per step, so a column step costs 2 vpxor, 2 vpshufb and 2 vpaddb instead of also
// 2 vpand and a vpsrlw (which competes with vpshufb for the same two Zen 3 pipes).
template <size_t kTail, size_t kSteps>
void gemm_8_columns_split(size_t m, size_t kw, const uint64_t* a, size_t lda, const uint64_t* b, size_t ldb,
                          int32_t kbits, int32_t* c, size_t ldc) {
  const size_t steps = kSteps != 0 ? kSteps : kw / 4, w = 4 * steps;
  const __m256i lut = nibble_popcounts();
  const __m256i low_nibbles = _mm256_set1_epi8(0x0f);
  const __m256i zero = _mm256_setzero_si256();
  const __m256i vkbits = _mm256_set1_epi32(kbits);
  // [step][column][low, high nibbles]
  __m256i bsplit[(kSteps != 0 ? kSteps : kMaxSteps) * kNR * 2];
  for (size_t s = 0; s < steps; ++s)
    for (size_t j = 0; j < kNR; ++j) {
      const __m256i vb = load256(b + j * ldb + 4 * s);
      bsplit[(s * kNR + j) * 2] = _mm256_and_si256(vb, low_nibbles);
      bsplit[(s * kNR + j) * 2 + 1] = _mm256_and_si256(_mm256_srli_epi16(vb, 4), low_nibbles);
    }
  // Tail word t of rows 0, 2, 4, 6 and of rows 1, 3, 5, 7, split the same way.
  __m256i tsplit[(kTail > 0 ? kTail : 1) * 4];
  for (size_t t = 0; t < kTail; ++t) {
    const __m256i even = column_words(b, ldb, w + t, 0), odd = column_words(b, ldb, w + t, 1);
    tsplit[4 * t] = _mm256_and_si256(even, low_nibbles);
    tsplit[4 * t + 1] = _mm256_and_si256(_mm256_srli_epi16(even, 4), low_nibbles);
    tsplit[4 * t + 2] = _mm256_and_si256(odd, low_nibbles);
    tsplit[4 * t + 3] = _mm256_and_si256(_mm256_srli_epi16(odd, 4), low_nibbles);
  }
  for (size_t i = 0; i < m; ++i, a += lda, c += ldc) {
    __m256i vacc0 = zero, vacc1 = zero, vacc2 = zero, vacc3 = zero, vacc4 = zero, vacc5 = zero, vacc6 = zero,
            vacc7 = zero;
    const __m256i* bs = bsplit;
    for (size_t s = 0; s < steps; ++s, bs += 2 * kNR) {
      const __m256i va = load256(a + 4 * s);
      __m256i alo = _mm256_and_si256(va, low_nibbles);
      __m256i ahi = _mm256_and_si256(_mm256_srli_epi16(va, 4), low_nibbles);
      // Hides the masks from GCC, which would otherwise fold (a & m) ^ (b & m) back to (a ^ b) & m.
      asm("" : "+x"(alo), "+x"(ahi));
      const auto step = [&](__m256i acc, const __m256i* bj) {
        return _mm256_add_epi8(acc, _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_xor_si256(alo, bj[0])),
                                                    _mm256_shuffle_epi8(lut, _mm256_xor_si256(ahi, bj[1]))));
      };
      vacc0 = step(vacc0, bs + 0);
      vacc1 = step(vacc1, bs + 2);
      vacc2 = step(vacc2, bs + 4);
      vacc3 = step(vacc3, bs + 6);
      vacc4 = step(vacc4, bs + 8);
      vacc5 = step(vacc5, bs + 10);
      vacc6 = step(vacc6, bs + 12);
      vacc7 = step(vacc7, bs + 14);
      asm("" : "+x"(vacc0), "+x"(vacc1), "+x"(vacc2), "+x"(vacc3), "+x"(vacc4), "+x"(vacc5), "+x"(vacc6), "+x"(vacc7));
    }
    __m256i vdiffer = sum_bytes8(vacc0, vacc1, vacc2, vacc3, vacc4, vacc5, vacc6, vacc7);
    if constexpr (kTail != 0) {
      __m256i even = zero, odd = zero;
      for (size_t t = 0; t < kTail; ++t) {
        const __m256i va = _mm256_set1_epi64x(static_cast<long long>(a[w + t]));
        __m256i alo = _mm256_and_si256(va, low_nibbles);
        __m256i ahi = _mm256_and_si256(_mm256_srli_epi16(va, 4), low_nibbles);
        asm("" : "+x"(alo), "+x"(ahi));
        even =
            _mm256_add_epi8(even, _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_xor_si256(alo, tsplit[4 * t])),
                                                  _mm256_shuffle_epi8(lut, _mm256_xor_si256(ahi, tsplit[4 * t + 1]))));
        odd = _mm256_add_epi8(odd, _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_xor_si256(alo, tsplit[4 * t + 2])),
                                                   _mm256_shuffle_epi8(lut, _mm256_xor_si256(ahi, tsplit[4 * t + 3]))));
      }
      // As in gemm_8_columns: qword sums below 2^8, odd columns into the high dwords.
      const __m256i counts =
          _mm256_or_si256(_mm256_sad_epu8(even, zero), _mm256_slli_epi64(_mm256_sad_epu8(odd, zero), 32));
      vdiffer = _mm256_add_epi32(vdiffer, counts);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c), _mm256_sub_epi32(vkbits, _mm256_slli_epi32(vdiffer, 1)));
  }
}

// Rows of kWords <= kMaxShort words (3x3 taps of 16, 32, 64 input channels: 3, 5, 9 words), kBlocks
// blocks of 8 columns per pass. Every word is a tail word of gemm_8_columns_split (4 columns a
// vector, split into nibbles once per call, read from the stack); per A row each word is broadcast
// and split once for all the pass's columns, and no 4-word step or its 8-way byte sum runs (faster
// than gemm_8_columns_split up to 9 words; bytes count at most 8 * 9 bits). Passes of 32 columns
// where there are that many (8 accumulators; 32-channel layers 10-20% faster than with 16).
template <size_t kWords, size_t kBlocks>
void gemm_short_rows(size_t m, const uint64_t* a, size_t lda, const uint64_t* b, size_t ldb, int32_t kbits, int32_t* c,
                     size_t ldc) {
  const __m256i lut = nibble_popcounts();
  const __m256i low_nibbles = _mm256_set1_epi8(0x0f);
  const __m256i zero = _mm256_setzero_si256();
  const __m256i vkbits = _mm256_set1_epi32(kbits);
  // [block][word][even low, even high, odd low, odd high nibbles]
  __m256i bsplit[kBlocks][kWords][4];
  for (size_t k = 0; k < kBlocks; ++k)
    for (size_t t = 0; t < kWords; ++t) {
      const __m256i even = column_words(b + k * kNR * ldb, ldb, t, 0);
      const __m256i odd = column_words(b + k * kNR * ldb, ldb, t, 1);
      bsplit[k][t][0] = _mm256_and_si256(even, low_nibbles);
      bsplit[k][t][1] = _mm256_and_si256(_mm256_srli_epi16(even, 4), low_nibbles);
      bsplit[k][t][2] = _mm256_and_si256(odd, low_nibbles);
      bsplit[k][t][3] = _mm256_and_si256(_mm256_srli_epi16(odd, 4), low_nibbles);
    }
  const auto count = [&](__m256i acc, __m256i alo, __m256i ahi, const __m256i* bs) {
    return _mm256_add_epi8(acc, _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_xor_si256(alo, bs[0])),
                                                _mm256_shuffle_epi8(lut, _mm256_xor_si256(ahi, bs[1]))));
  };
  for (size_t i = 0; i < m; ++i, a += lda, c += ldc) {
    __m256i even[kBlocks], odd[kBlocks];
    for (size_t k = 0; k < kBlocks; ++k) even[k] = odd[k] = zero;
    for (size_t t = 0; t < kWords; ++t) {
      const __m256i va = _mm256_set1_epi64x(static_cast<long long>(a[t]));
      __m256i alo = _mm256_and_si256(va, low_nibbles);
      __m256i ahi = _mm256_and_si256(_mm256_srli_epi16(va, 4), low_nibbles);
      asm("" : "+x"(alo), "+x"(ahi));  // as in gemm_8_columns_split
      for (size_t k = 0; k < kBlocks; ++k) {
        even[k] = count(even[k], alo, ahi, bsplit[k][t]);
        odd[k] = count(odd[k], alo, ahi, bsplit[k][t] + 2);
      }
    }
    for (size_t k = 0; k < kBlocks; ++k) {
      // Each qword sum is below 2^8, so the odd columns shift into the free high dwords.
      const __m256i counts =
          _mm256_or_si256(_mm256_sad_epu8(even[k], zero), _mm256_slli_epi64(_mm256_sad_epu8(odd[k], zero), 32));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + k * kNR),
                          _mm256_sub_epi32(vkbits, _mm256_slli_epi32(counts, 1)));
    }
  }
}

using GemmShortFn = void (*)(size_t, const uint64_t*, size_t, const uint64_t*, size_t, int32_t, int32_t*, size_t);
constexpr size_t kMaxShort = 9;
template <size_t kBlocks>
constexpr GemmShortFn kGemmShort[kMaxShort] = {
    gemm_short_rows<1, kBlocks>, gemm_short_rows<2, kBlocks>, gemm_short_rows<3, kBlocks>,
    gemm_short_rows<4, kBlocks>, gemm_short_rows<5, kBlocks>, gemm_short_rows<6, kBlocks>,
    gemm_short_rows<7, kBlocks>, gemm_short_rows<8, kBlocks>, gemm_short_rows<9, kBlocks>};

// kw >= 4 * (kMaxSteps + 1) keeps B in place and counts in chunks of kMaxSteps (kw <= kMaxShort
// runs gemm_short_rows).
using Gemm8Fn = void (*)(size_t, size_t, const uint64_t*, size_t, const uint64_t*, size_t, int32_t, int32_t*, size_t);
template <size_t kSteps>
constexpr Gemm8Fn kGemm8Split[4] = {gemm_8_columns_split<0, kSteps>, gemm_8_columns_split<1, kSteps>,
                                    gemm_8_columns_split<2, kSteps>, gemm_8_columns_split<3, kSteps>};
constexpr Gemm8Fn kGemm8Long[4] = {gemm_8_columns<0>, gemm_8_columns<1>, gemm_8_columns<2>, gemm_8_columns<3>};
inline Gemm8Fn pick_gemm8(size_t kw) {
  switch (kw / 4) {
    case 1:
      return kGemm8Split<1>[kw % 4];
    case 2:
      return kGemm8Split<2>[kw % 4];
    case 3:
      return kGemm8Split<3>[kw % 4];
    case 4:
      return kGemm8Split<4>[kw % 4];
    default:
      return kw / 4 <= kMaxSteps ? kGemm8Split<0>[kw % 4] : kGemm8Long[kw % 4];
  }
}

// One column of c, for n < 8 only.
void gemm_1_column(size_t m, size_t kw, const uint64_t* a, size_t lda, const uint64_t* b, int32_t kbits, int32_t* c,
                   size_t ldc) {
  const __m256i lut = nibble_popcounts();
  const __m256i low_nibbles = _mm256_set1_epi8(0x0f);
  const size_t steps = kw / 4;
  for (size_t i = 0; i < m; ++i, a += lda, c += ldc) {
    uint64_t differ = 0;
    for (size_t s0 = 0; s0 < steps; s0 += kMaxSteps) {
      __m256i vacc = _mm256_setzero_si256();
      for (size_t w = 4 * s0; w < 4 * std::min(steps, s0 + kMaxSteps); w += 4)
        vacc = add_popcount_bytes(vacc, _mm256_xor_si256(load256(a + w), load256(b + w)), lut, low_nibbles);
      const __m256i vsum = _mm256_sad_epu8(vacc, _mm256_setzero_si256());
      differ += _mm256_extract_epi64(vsum, 0) + _mm256_extract_epi64(vsum, 1) + _mm256_extract_epi64(vsum, 2) +
                _mm256_extract_epi64(vsum, 3);
    }
    for (size_t w = 4 * steps; w < kw; ++w) differ += __builtin_popcountll(a[w] ^ b[w]);
    *c = kbits - 2 * static_cast<int32_t>(differ);
  }
}

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
      // The sign bit of each byte is its bit.
      for (; j + 32 <= count; j += 32) {
        const __m256i vx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + j));
        word |= static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(vx))) << j;
      }
      for (; j + 8 <= count; j += 8) {
        const __m128i vx = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + j));  // 8 bytes only
        word |= static_cast<uint64_t>(_mm_movemask_epi8(vx) & 0xff) << j;
      }
      for (; j < count; ++j) word |= static_cast<uint64_t>(x[j] < 0) << j;
      dst[w] = word;
    }
  }
}

void b1_gemm(size_t m, size_t n, size_t kw, const uint64_t* a, size_t lda, const uint64_t* b, size_t ldb, int32_t kbits,
             int32_t* c, size_t ldc) {
  if (n < kNR) {
    for (size_t j = 0; j < n; ++j) gemm_1_column(m, kw, a, lda, b + j * ldb, kbits, c + j, ldc);
    return;
  }
  // Columns outer: the 8 rows of B stay in L1 while the rows of the A tile stream past them. A last
  // partial block is shifted left to overlap the one before; the overlap is written twice, equally.
  if (kw != 0 && kw <= kMaxShort) {
    size_t j = 0;
    for (; j + 4 * kNR <= n; j += 4 * kNR) kGemmShort<4>[kw - 1](m, a, lda, b + j * ldb, ldb, kbits, c + j, ldc);
    for (; j + 2 * kNR <= n; j += 2 * kNR) kGemmShort<2>[kw - 1](m, a, lda, b + j * ldb, ldb, kbits, c + j, ldc);
    for (; j < n; j += kNR) {
      const size_t j0 = std::min(j, n - kNR);
      kGemmShort<1>[kw - 1](m, a, lda, b + j0 * ldb, ldb, kbits, c + j0, ldc);
    }
    return;
  }
  const Gemm8Fn gemm8 = pick_gemm8(kw);
  for (size_t j = 0; j < n; j += kNR) {
    const size_t j0 = std::min(j, n - kNR);
    gemm8(m, kw, a, lda, b + j0 * ldb, ldb, kbits, c + j0, ldc);
  }
}

namespace {
struct Ymm {
  using T = __m256i;
  static T zero() { return _mm256_setzero_si256(); }
  static T load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static T xor_(T a, T b) { return _mm256_xor_si256(a, b); }
  static T and_(T a, T b) { return _mm256_and_si256(a, b); }
  static T or_(T a, T b) { return _mm256_or_si256(a, b); }
};
}  // namespace

void b1_mst_channel(const uint64_t* rows, const uint32_t* entries, size_t n, const int32_t* parent, int32_t sign,
                    int32_t base, int32_t shift, int32_t* y) {
  alignas(32) __m256i planes[mst_count::kMaxPlanes];
  const size_t used = mst_count::count_rows<Ymm>(reinterpret_cast<const uint8_t*>(rows), entries, n, planes);
  // Planes to integers, 32 pixels at a time: broadcast the pixels' 32 bits of a plane so that byte i
  // holds bit i (vpshufb picks byte i / 8, the AND + compare tests bit i % 8), and build the counts
  // as bytes, eight planes at a time, top plane first: bytes = 2 * bytes + bit.
  const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
  const __m256i vbase = _mm256_set1_epi32(base);
  const __m128i vshift = _mm_cvtsi32_si128(shift);
  const auto* plane_words = reinterpret_cast<const uint32_t*>(planes);  // 8 per plane
  for (size_t chunk = 0; chunk < kMstTile / 32; ++chunk) {
    __m256i count[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
    for (size_t first = 0; first < used; first += 8) {
      const size_t last = std::min(used, first + 8);
      __m256i bytes = _mm256_setzero_si256();
      for (size_t l = last; l-- > first;) {
        const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(plane_words[l * 8 + chunk])), spread);
        const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);  // -1 where the bit is set
        bytes = _mm256_sub_epi8(_mm256_add_epi8(bytes, bytes), set);
      }
      const __m128i lo = _mm256_castsi256_si128(bytes), hi = _mm256_extracti128_si256(bytes, 1);
      const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
      const __m128i up = _mm_cvtsi32_si128(static_cast<int>(first));
      for (size_t q = 0; q < 4; ++q)
        count[q] = _mm256_add_epi32(count[q], _mm256_sll_epi32(_mm256_cvtepu8_epi32(parts[q]), up));
    }
    for (size_t q = 0; q < 4; ++q) {
      const size_t p = chunk * 32 + q * 8;
      __m256i v = _mm256_sub_epi32(vbase, _mm256_sll_epi32(count[q], vshift));
      if (sign != 0) {
        const __m256i vp = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(parent + p));
        v = sign > 0 ? _mm256_add_epi32(v, vp) : _mm256_sub_epi32(v, vp);
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + p), v);
    }
  }
}

}  // namespace lowbit::avx2
