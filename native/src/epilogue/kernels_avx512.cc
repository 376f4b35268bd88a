// kernels_avx512.cc: the requantizers (output_s8, output_s8_add) for x86-64 with AVX-512 F+BW+VL,
// built with the flags of integer/kernels_avx512.cc and chosen only where cpu/dispatch.cc finds
// Isa::Avx512. 16 channels a step; the tail of a row is the same step under a lane mask, so rows of
// any length run no scalar code. The lanes are AVX2's: 32-bit through a high multiply where
// requantize32_ok allows (kernels.h has the proof), else 64-bit products (AVX-512 has the
// arithmetic 64-bit shift and 64-bit min / max that AVX2 lacks). Rows of at most 16 channels (the
// GEMM path's panels, qconv.cc) keep the per-channel vectors in registers across the rows: 1.4x the
// AVX2 requantizer there (native/bench/epilogue_bench.cc).
#include <immintrin.h>

#include "epilogue/kernels.h"

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_epi32() (`__m512i __Y = __Y`) as the unused
// merge source, which -W(maybe-)uninitialized reports once per inlined call: a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace lowbit::avx512 {

namespace {

// floor(x * m / 2^32) per signed 32-bit lane: the even lanes' 64-bit products shifted down,
// blended with the odd lanes' products, whose high halves are in place.
inline __m512i mulhi_epi32(__m512i x, __m512i m) {
  const __m512i even = _mm512_srli_epi64(_mm512_mul_epi32(x, m), 32);
  const __m512i odd = _mm512_mul_epi32(_mm512_srli_epi64(x, 32), _mm512_srli_epi64(m, 32));
  return _mm512_mask_blend_epi32(0xAAAA, even, odd);
}

// The lanes of channels [c, c + 16) that exist in a row of n.
inline __mmask16 lanes(size_t c, size_t n) {
  return n - c >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - c)) - 1);
}

// requantize_value in 32-bit lanes (requantize32_ok): s = shift - 32 in [1, 30].
inline __m512i requantize16_32(__m512i y, __m512i mult, __m512i s, __m512i bias, __m512i lo, __m512i hi) {
  const __m512i round = _mm512_srli_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(1), s), 1);  // 2^(s-1)
  const __m512i v = _mm512_add_epi32(_mm512_srav_epi32(_mm512_add_epi32(mulhi_epi32(y, mult), round), s), bias);
  return _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
}

// requantize_value on 8 int64 lanes (y, mult, bias sign-extended, shift zero-extended), narrowed to
// int32 after the clamp. Exact: |y * mult| < 2^62 and round <= 2^61.
inline __m256i requantize8_64(__m256i y, __m256i mult, __m128i shift, __m256i bias, __m512i lo, __m512i hi) {
  const __m512i e = _mm512_cvtepu8_epi64(shift);
  const __m512i round = _mm512_srli_epi64(_mm512_sllv_epi64(_mm512_set1_epi64(1), e), 1);  // 2^(e-1), or 0
  const __m512i sum = _mm512_add_epi64(_mm512_mul_epi32(_mm512_cvtepi32_epi64(y), _mm512_cvtepi32_epi64(mult)), round);
  const __m512i v = _mm512_add_epi64(_mm512_srav_epi64(sum, e), _mm512_cvtepi32_epi64(bias));
  return _mm512_cvtepi64_epi32(_mm512_min_epi64(_mm512_max_epi64(v, lo), hi));
}

// The residual add's constants (output_s8_add) as vectors.
struct AddTerms {
  __m512i self_zero, self_mult, self_round, res_zero, res_mult, res_round, out_zero, lo, hi;
  __m128i self_shift, res_shift, res_mask;
  explicit AddTerms(const ResidualAddParams& r)
      : self_zero(_mm512_set1_epi32(r.self.zero)),
        self_mult(_mm512_set1_epi32(r.self.mult)),
        self_round(_mm512_set1_epi32(1 << (r.self.shift - 1))),
        res_zero(_mm512_set1_epi32(r.res.zero)),
        res_mult(_mm512_set1_epi32(r.res.mult)),
        res_round(_mm512_set1_epi32(1 << (r.res.shift - 1))),
        out_zero(_mm512_set1_epi32(r.out_zero)),
        lo(_mm512_set1_epi32(r.lo)),
        hi(_mm512_set1_epi32(r.hi)),
        self_shift(_mm_cvtsi32_si128(r.self.shift)),
        res_shift(_mm_cvtsi32_si128(r.res.shift)),
        res_mask(_mm_set1_epi8(static_cast<char>(r.res.mask))) {}
};

// r32(d, mult, shift) with |d| <= 255 (eltwise/kernels.h): d * 2^23 fits int32, and the high half
// of its product with mult is floor(d * mult / 2^9).
inline __m512i rescale32_16(__m512i d, __m512i mult, __m512i round, __m128i shift) {
  return _mm512_sra_epi32(_mm512_add_epi32(mulhi_epi32(_mm512_slli_epi32(d, 23), mult), round), shift);
}

// requantize_add_value on 16 lanes: v the requantized values, r the residual bytes (already read).
inline __m512i add16(__m512i v, __m128i r, const AddTerms& t) {
  const __m512i u = _mm512_cvtepu8_epi32(_mm_xor_si128(r, t.res_mask));
  const __m512i a = rescale32_16(_mm512_sub_epi32(v, t.self_zero), t.self_mult, t.self_round, t.self_shift);
  const __m512i b = rescale32_16(_mm512_sub_epi32(u, t.res_zero), t.res_mult, t.res_round, t.res_shift);
  return _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(_mm512_add_epi32(a, b), t.out_zero), t.lo), t.hi);
}

// output_s8 (and with kAdd output_s8_add) with the lane width fixed per call.
template <bool k32, bool kAdd>
void s8_rows(size_t m, size_t n, const int32_t* y, size_t ldy, const RequantizeParams& p, const ResidualAddParams* r,
             int8_t* out, size_t ldo) {
  const __m512i vlo = _mm512_set1_epi32(p.lo), vhi = _mm512_set1_epi32(p.hi), v32 = _mm512_set1_epi32(32);
  const __m512i vlo64 = _mm512_set1_epi64(p.lo), vhi64 = _mm512_set1_epi64(p.hi);
  const AddTerms terms(kAdd ? *r : kNoResidualAdd);
  // Local copies: a store to out could alias p, so its pointers would be reloaded after each one.
  const int32_t *mult = p.mult, *bias = p.bias;
  const uint8_t* shift = p.shift;
  const uint8_t* res = kAdd ? r->residual : nullptr;
  for (size_t i = 0; i < m; ++i, y += ldy, out += ldo) {
    for (size_t c = 0; c < n; c += 16) {
      const __mmask16 k = lanes(c, n);
      const __m512i vy = _mm512_maskz_loadu_epi32(k, y + c), vmult = _mm512_maskz_loadu_epi32(k, mult + c);
      const __m512i vbias = _mm512_maskz_loadu_epi32(k, bias + c);
      const __m128i vshift = _mm_maskz_loadu_epi8(k, shift + c);
      __m512i v;
      if constexpr (k32) {
        v = requantize16_32(vy, vmult, _mm512_sub_epi32(_mm512_cvtepu8_epi32(vshift), v32), vbias, vlo, vhi);
      } else {
        const __m256i v0 = requantize8_64(_mm512_castsi512_si256(vy), _mm512_castsi512_si256(vmult), vshift,
                                          _mm512_castsi512_si256(vbias), vlo64, vhi64);
        const __m256i v1 = requantize8_64(_mm512_extracti64x4_epi64(vy, 1), _mm512_extracti64x4_epi64(vmult, 1),
                                          _mm_srli_si128(vshift, 8), _mm512_extracti64x4_epi64(vbias, 1), vlo64, vhi64);
        v = _mm512_inserti64x4(_mm512_castsi256_si512(v0), v1, 1);
      }
      if constexpr (kAdd) v = add16(v, _mm_maskz_loadu_epi8(k, res + c), terms);
      _mm_mask_storeu_epi8(out + c, k, _mm512_cvtepi32_epi8(v));  // the low byte of each lane
    }
    if constexpr (kAdd) res += r->ldr;
  }
}

// s8_rows<true, kAdd> for rows of at most 16 channels (qconv2d's 16-channel panels): the
// per-channel vectors (multiplier, shift, its rounding term, bias) built once for all m rows.
template <bool kAdd>
void s8_rows16_32(size_t m, size_t n, const int32_t* y, size_t ldy, const RequantizeParams& p,
                  const ResidualAddParams* r, int8_t* out, size_t ldo) {
  const __mmask16 k = lanes(0, n);
  const __m512i vlo = _mm512_set1_epi32(p.lo), vhi = _mm512_set1_epi32(p.hi);
  const __m512i mult = _mm512_maskz_loadu_epi32(k, p.mult), bias = _mm512_maskz_loadu_epi32(k, p.bias);
  const __m512i s = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, p.shift)), _mm512_set1_epi32(32));
  const __m512i round = _mm512_srli_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(1), s), 1);  // 2^(s-1)
  const AddTerms terms(kAdd ? *r : kNoResidualAdd);
  const uint8_t* res = kAdd ? r->residual : nullptr;
  for (size_t i = 0; i < m; ++i, y += ldy, out += ldo) {
    const __m512i h = mulhi_epi32(_mm512_maskz_loadu_epi32(k, y), mult);
    __m512i v = _mm512_add_epi32(_mm512_srav_epi32(_mm512_add_epi32(h, round), s), bias);
    v = _mm512_min_epi32(_mm512_max_epi32(v, vlo), vhi);
    if constexpr (kAdd) {
      v = add16(v, _mm_maskz_loadu_epi8(k, res), terms);
      res += r->ldr;
    }
    _mm_mask_storeu_epi8(out, k, _mm512_cvtepi32_epi8(v));
  }
}

// requantize32_ok, 16 channels a step.
bool requantize32_ok16(size_t n, const RequantizeParams& p) {
  const __m512i min_shift = _mm512_set1_epi32(33);
  const __m512i min_bias = _mm512_set1_epi32(-(1 << 30)), max_bias = _mm512_set1_epi32(1 << 30);
  for (size_t c = 0; c < n; c += 16) {
    const __mmask16 k = lanes(c, n);
    const __m512i s = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, p.shift + c));
    const __m512i b = _mm512_maskz_loadu_epi32(k, p.bias + c);
    const __mmask16 ok = _mm512_cmpge_epi32_mask(s, min_shift) & _mm512_cmpge_epi32_mask(b, min_bias) &
                         _mm512_cmple_epi32_mask(b, max_bias);
    if ((ok & k) != k) return false;
  }
  return true;
}

}  // namespace

void output_s8(size_t m, size_t n, const int32_t* y, size_t ldy, const RequantizeParams& p, int8_t* out, size_t ldo) {
  if (n <= 16 && requantize32_ok16(n, p))
    s8_rows16_32<false>(m, n, y, ldy, p, nullptr, out, ldo);
  else if (requantize32_ok16(n, p))
    s8_rows<true, false>(m, n, y, ldy, p, nullptr, out, ldo);
  else
    s8_rows<false, false>(m, n, y, ldy, p, nullptr, out, ldo);
}

void output_s8_add(size_t m, size_t n, const int32_t* y, size_t ldy, const RequantizeParams& p,
                   const ResidualAddParams& r, int8_t* out, size_t ldo) {
  if (n <= 16 && requantize32_ok16(n, p))
    s8_rows16_32<true>(m, n, y, ldy, p, &r, out, ldo);
  else if (requantize32_ok16(n, p))
    s8_rows<true, true>(m, n, y, ldy, p, &r, out, ldo);
  else
    s8_rows<false, true>(m, n, y, ldy, p, &r, out, ldo);
}

}  // namespace lowbit::avx512
