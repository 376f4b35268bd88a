// kernels_avx2.cc: the element-wise kernels for x86-64 AVX2 (32 bytes a step; qadd's rescale in
// 32-bit lanes through a high multiply, sign through movemask, quantize with a true division).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "common/avx2_mulhi.h"
#include "common/checked_math.h"
#include "eltwise/kernels.h"
#include "integer/quantize.h"

namespace lowbit::avx2 {
namespace {

inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline void store32(void* p, __m256i v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }

// The qadd term of 16 unsigned readings u (16-bit lanes, one 256-bit vector) as two vectors of
// 32-bit lanes: lo holds elements 0-3 | 8-11, hi 4-7 | 12-15, the order packs_epi32(lo, hi) undoes.
struct Term {
  __m256i zero, mult, round;
  __m128i shift;
  explicit Term(const QAddTerm& t)
      : zero(_mm256_set1_epi16(static_cast<int16_t>(t.zero))),
        mult(_mm256_set1_epi32(t.mult)),
        round(_mm256_set1_epi32(1 << (t.shift - 1))),
        shift(_mm_cvtsi32_si128(t.shift)) {}
  // x = (u - zero) * 2^23: (u - zero) * 2^7 fits int16, and interleaving it above 16 zero bits shifts by 16 more.
  inline void apply(__m256i u, __m256i& lo, __m256i& hi) const {
    const __m256i v = _mm256_slli_epi16(_mm256_sub_epi16(u, zero), 7);
    const __m256i z = _mm256_setzero_si256();
    lo = _mm256_sra_epi32(_mm256_add_epi32(mulhi_epi32_broadcast(_mm256_unpacklo_epi16(z, v), mult), round), shift);
    hi = _mm256_sra_epi32(_mm256_add_epi32(mulhi_epi32_broadcast(_mm256_unpackhi_epi16(z, v), mult), round), shift);
  }
};

// Bytes of 0x00FF-masked 16-bit lanes a (elements 0-15) and b (16-31) in element order.
inline __m256i pack_bytes(__m256i a, __m256i b) {
  return _mm256_permute4x64_epi64(_mm256_packus_epi16(a, b), _MM_SHUFFLE(3, 1, 2, 0));
}

}  // namespace

void qadd(size_t n, const uint8_t* a, const uint8_t* b, const QAddParams& p, uint8_t* out) {
  const Term ta(p.a), tb(p.b);
  const __m256i amask = _mm256_set1_epi8(static_cast<char>(p.a.mask));
  const __m256i bmask = _mm256_set1_epi8(static_cast<char>(p.b.mask));
  const __m256i zo = _mm256_set1_epi32(p.out_zero);
  const __m256i lo = _mm256_set1_epi16(static_cast<int16_t>(p.lo)), hi = _mm256_set1_epi16(static_cast<int16_t>(p.hi));
  const __m256i low_byte = _mm256_set1_epi16(0xFF);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i va = _mm256_xor_si256(load32(a + i), amask), vb = _mm256_xor_si256(load32(b + i), bmask);
    __m256i half[2];
    for (int h = 0; h < 2; ++h) {
      const __m128i a16 = h == 0 ? _mm256_castsi256_si128(va) : _mm256_extracti128_si256(va, 1);
      const __m128i b16 = h == 0 ? _mm256_castsi256_si128(vb) : _mm256_extracti128_si256(vb, 1);
      __m256i alo, ahi, blo, bhi;
      ta.apply(_mm256_cvtepu8_epi16(a16), alo, ahi);
      tb.apply(_mm256_cvtepu8_epi16(b16), blo, bhi);
      const __m256i slo = _mm256_add_epi32(_mm256_add_epi32(alo, blo), zo);
      const __m256i shi = _mm256_add_epi32(_mm256_add_epi32(ahi, bhi), zo);
      // Saturating to int16 keeps the clamp's answer (lo, hi are inside int16); then the low byte.
      const __m256i s16 = _mm256_min_epi16(_mm256_max_epi16(_mm256_packs_epi32(slo, shi), lo), hi);
      half[h] = _mm256_and_si256(s16, low_byte);
    }
    store32(out + i, pack_bytes(half[0], half[1]));
  }
  for (; i < n; ++i) out[i] = qadd_value(a[i], b[i], p);
}

void prelu8(size_t rows, size_t c, const uint8_t* x, const Prelu8Params& p, uint8_t* out) {
  const __m128i vmask = _mm_set1_epi8(static_cast<char>(p.mask));
  const __m256i zero = _mm256_set1_epi32(p.zero), zo = _mm256_set1_epi32(p.out_zero);
  const __m256i lo = _mm256_set1_epi32(p.lo), hi = _mm256_set1_epi32(p.hi), one = _mm256_set1_epi32(1);
  // Byte 0 of each 32-bit lane, to bytes 0-3 of each 128-bit half.
  const __m256i low_bytes = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  //
                                             0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const auto load = [](const int32_t* q) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)); };
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* row = x + r * c;
    uint8_t* dst = out + r * c;
    size_t ch = 0;
    for (; ch + 8 <= c; ch += 8) {
      const __m128i u = _mm_xor_si128(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + ch)), vmask);
      const __m256i v = _mm256_sub_epi32(_mm256_cvtepu8_epi32(u), zero);
      // The slope of each lane's side (v = 0 gives 0 on either).
      const __m256i negative = _mm256_cmpgt_epi32(_mm256_setzero_si256(), v);
      const __m256i mult = _mm256_blendv_epi8(load(p.mult_pos + ch), load(p.mult_neg + ch), negative);
      const __m256i shift = _mm256_blendv_epi8(load(p.shift_pos + ch), load(p.shift_neg + ch), negative);
      const __m256i round = _mm256_srli_epi32(_mm256_sllv_epi32(one, shift), 1);
      const __m256i h = mulhi_epi32(_mm256_slli_epi32(v, 23), mult);
      const __m256i y = _mm256_add_epi32(_mm256_srav_epi32(_mm256_add_epi32(h, round), shift), zo);
      const __m256i bytes = _mm256_shuffle_epi8(_mm256_min_epi32(_mm256_max_epi32(y, lo), hi), low_bytes);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + ch),
                       _mm_unpacklo_epi32(_mm256_castsi256_si128(bytes), _mm256_extracti128_si256(bytes, 1)));
    }
    for (; ch < c; ++ch) dst[ch] = prelu8_value(row[ch], ch, p);
  }
}

void sign8(size_t rows, size_t c, const uint8_t* x, uint8_t mask, int32_t threshold, uint64_t* out) {
  // u < threshold as a signed compare: both sides shifted by -128 (the mask's top bit flipped).
  const __m256i vmask = _mm256_set1_epi8(static_cast<char>(mask ^ 0x80));
  const __m256i vthreshold = _mm256_set1_epi8(static_cast<char>(threshold - 128));
  const auto word = [&](const uint8_t* p) {
    const __m256i lt0 = _mm256_cmpgt_epi8(vthreshold, _mm256_xor_si256(load32(p), vmask));
    const __m256i lt1 = _mm256_cmpgt_epi8(vthreshold, _mm256_xor_si256(load32(p + 32), vmask));
    return static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(lt0))) |
           static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(lt1))) << 32;
  };
  const size_t words = words_for_bits(c), full = c / 64, tail = c % 64;
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* row = x + r * c;
    uint64_t* dst = out + r * words;
    for (size_t w = 0; w < full; ++w) dst[w] = word(row + 64 * w);
    if (tail != 0) {
      // The last partial word: read in place while the 64 bytes stay inside the rows given (the
      // next rows' bytes, masked off), else from a copy, so nothing past the input is read.
      const uint8_t* last = row + 64 * full;
      uint8_t buffer[64] = {};
      if (r * c + 64 * full + 64 > rows * c) {
        std::memcpy(buffer, last, tail);
        last = buffer;
      }
      dst[full] = word(last) & ((uint64_t{1} << tail) - 1);
    }
  }
}

void quantize_f32(size_t n, const float* x, float scale, int32_t zero_point, int32_t lo, int32_t hi, uint8_t* out) {
  const __m256 vscale = _mm256_set1_ps(scale), vmin = _mm256_set1_ps(-512.0f), vmax = _mm256_set1_ps(512.0f);
  const __m256i vzero = _mm256_set1_epi32(zero_point), vlo = _mm256_set1_epi32(lo), vhi = _mm256_set1_epi32(hi);
  const __m256i low_byte = _mm256_set1_epi16(0xFF);
  // quantize_value on 8 lanes: the same division; NaN lanes zeroed; cvtps rounds half to even in the
  // default rounding mode, as the scalar 1.5 * 2^23 trick does on the clamped value.
  const auto q8 = [&](const float* p) {
    __m256 v = _mm256_div_ps(_mm256_loadu_ps(p), vscale);
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    v = _mm256_min_ps(_mm256_max_ps(v, vmin), vmax);
    const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(v), vzero);
    return _mm256_min_epi32(_mm256_max_epi32(q, vlo), vhi);
  };
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    // packs_epi32 interleaves 128-bit lanes: (0-3, 8-11 | 4-7, 12-15); the final permute restores the order.
    const __m256i s01 = _mm256_and_si256(_mm256_packs_epi32(q8(x + i), q8(x + i + 8)), low_byte);
    const __m256i s23 = _mm256_and_si256(_mm256_packs_epi32(q8(x + i + 16), q8(x + i + 24)), low_byte);
    const __m256i bytes = _mm256_packus_epi16(s01, s23);
    store32(out + i, _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  }
  for (; i < n; ++i) out[i] = quantize_value(x[i], scale, zero_point, lo, hi);
}

void dequantize8(size_t n, const uint8_t* x, uint8_t mask, int32_t zero, float scale, float* out) {
  const __m256i vzero = _mm256_set1_epi32(zero);
  const __m128i vmask = _mm_set1_epi8(static_cast<char>(mask));
  const __m256 vscale = _mm256_set1_ps(scale);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i u = _mm_xor_si128(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + i)), vmask);
    const __m256i v = _mm256_sub_epi32(_mm256_cvtepu8_epi32(u), vzero);
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_cvtepi32_ps(v), vscale));
  }
  for (; i < n; ++i) out[i] = static_cast<float>((x[i] ^ mask) - zero) * scale;
}

namespace {
inline __m128i load16(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
inline void store16(void* p, __m128i v) { _mm_storeu_si128(static_cast<__m128i*>(p), v); }

// max_taps8 for one dtype: 32 channels at a time, then 16 (networks of 16-48 channels), every tap
// folded in a register; max32 is the byte max on 32 bytes, max16 on 16.
template <typename T, typename Max32, typename Max16>
void max_taps(size_t n, const uint8_t* const* src, size_t taps, uint8_t* dst, Max32 max32, Max16 max16) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i v = load32(dst + i);
    for (size_t t = 0; t < taps; ++t) v = max32(v, load32(src[t] + i));
    store32(dst + i, v);
  }
  if (i + 16 <= n) {
    __m128i v = load16(dst + i);
    for (size_t t = 0; t < taps; ++t) v = max16(v, load16(src[t] + i));
    store16(dst + i, v);
    i += 16;
  }
  for (; i < n; ++i)
    for (size_t t = 0; t < taps; ++t)
      dst[i] = static_cast<uint8_t>(std::max(static_cast<T>(dst[i]), static_cast<T>(src[t][i])));
}

// acc[0, 16) += the 16 lanes of 16-bit sums, widened.
inline void add_sums16(__m256i sum, int32_t* acc) {
  store32(acc, _mm256_add_epi32(load32(acc), _mm256_cvtepu16_epi32(_mm256_castsi256_si128(sum))));
  store32(acc + 8, _mm256_add_epi32(load32(acc + 8), _mm256_cvtepu16_epi32(_mm256_extracti128_si256(sum, 1))));
}
}  // namespace

void max_taps8(size_t n, const uint8_t* const* src, size_t taps, bool is_signed, uint8_t* dst) {
  // Lambdas, not the intrinsics' addresses, so the calls inline.
  if (is_signed)
    max_taps<int8_t>(
        n, src, taps, dst, [](__m256i a, __m256i b) { return _mm256_max_epi8(a, b); },
        [](__m128i a, __m128i b) { return _mm_max_epi8(a, b); });
  else
    max_taps<uint8_t>(
        n, src, taps, dst, [](__m256i a, __m256i b) { return _mm256_max_epu8(a, b); },
        [](__m128i a, __m128i b) { return _mm_max_epu8(a, b); });
}

void sum_taps8(size_t n, const uint8_t* const* src, size_t taps, uint8_t mask, int32_t* acc) {
  // 32 channels at a time, then 16, in 16-bit sums over runs of 128 taps (128 * 255 < 2^15), then widened.
  const __m256i vmask = _mm256_set1_epi8(static_cast<char>(mask));
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (size_t t0 = 0; t0 < taps; t0 += 128) {
      __m256i sum0 = _mm256_setzero_si256(), sum1 = _mm256_setzero_si256();
      for (size_t t = t0; t < std::min(taps, t0 + 128); ++t) {
        const __m256i u = _mm256_xor_si256(load32(src[t] + i), vmask);
        sum0 = _mm256_add_epi16(sum0, _mm256_cvtepu8_epi16(_mm256_castsi256_si128(u)));
        sum1 = _mm256_add_epi16(sum1, _mm256_cvtepu8_epi16(_mm256_extracti128_si256(u, 1)));
      }
      add_sums16(sum0, acc + i);
      add_sums16(sum1, acc + i + 16);
    }
  if (i + 16 <= n) {
    for (size_t t0 = 0; t0 < taps; t0 += 128) {
      __m256i sum = _mm256_setzero_si256();
      for (size_t t = t0; t < std::min(taps, t0 + 128); ++t)
        sum = _mm256_add_epi16(sum,
                               _mm256_cvtepu8_epi16(_mm_xor_si128(load16(src[t] + i), _mm256_castsi256_si128(vmask))));
      add_sums16(sum, acc + i);
    }
    i += 16;
  }
  for (; i < n; ++i)
    for (size_t t = 0; t < taps; ++t) acc[i] += src[t][i] ^ mask;
}

void clamp8(size_t n, const uint8_t* x, bool is_signed, int32_t lo, int32_t hi, uint8_t* out) {
  const __m256i vlo = _mm256_set1_epi8(static_cast<char>(lo)), vhi = _mm256_set1_epi8(static_cast<char>(hi));
  size_t i = 0;
  if (is_signed) {
    for (; i + 32 <= n; i += 32) store32(out + i, _mm256_min_epi8(_mm256_max_epi8(load32(x + i), vlo), vhi));
    for (; i < n; ++i) out[i] = static_cast<uint8_t>(std::clamp<int32_t>(static_cast<int8_t>(x[i]), lo, hi));
  } else {
    for (; i + 32 <= n; i += 32) store32(out + i, _mm256_min_epu8(_mm256_max_epu8(load32(x + i), vlo), vhi));
    for (; i < n; ++i) out[i] = static_cast<uint8_t>(std::clamp<int32_t>(x[i], lo, hi));
  }
}

void unpack_b1(size_t c, const uint64_t* bits, int8_t* out) {
  // Byte j of 32 channels takes bit byte j / 8, keeps bit j % 8 and turns it into -1 (set) or +1.
  const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i select = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  const __m256i one = _mm256_set1_epi8(1);
  size_t ch = 0;
  for (; ch + 32 <= c; ch += 32) {
    const uint32_t word = static_cast<uint32_t>(bits[ch / 64] >> (ch % 64));
    const __m256i v = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(word)), spread), select);
    store32(out + ch, _mm256_or_si256(_mm256_cmpeq_epi8(v, select), one));
  }
  for (; ch < c; ++ch) out[ch] = (bits[ch / 64] >> (ch % 64)) & 1 ? -1 : 1;
}

}  // namespace lowbit::avx2
