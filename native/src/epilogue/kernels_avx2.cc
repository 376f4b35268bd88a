// kernels_avx2.cc: output transforms for x86-64 AVX2 (8 channels per step; the dyadic rescale in
// 32-bit lanes through a high multiply where requantize32_ok allows, else in 64-bit lanes; the b1 compare through
// movemask).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "common/avx2_mulhi.h"
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

namespace {

// The 32-bit form of requantize_value on 8 lanes (requantize32_ok in kernels.h has the proof):
// s = shift - 32 in [1, 30].
inline __m256i requantize8_32(__m256i y, __m256i mult, __m256i s, __m256i bias, __m256i lo, __m256i hi) {
  const __m256i round = _mm256_srli_epi32(_mm256_sllv_epi32(_mm256_set1_epi32(1), s), 1);  // 2^(s-1)
  const __m256i v = _mm256_add_epi32(_mm256_srav_epi32(_mm256_add_epi32(mulhi_epi32(y, mult), round), s), bias);
  return _mm256_min_epi32(_mm256_max_epi32(v, lo), hi);
}

// The residual add's constants (output_s8_add) as vectors.
struct AddTerms {
  __m256i self_zero, self_mult, self_round, res_zero, res_mult, res_round, out_zero, lo, hi;
  __m256i self_zero16, res_zero16, lo16, hi16;  // add16's, in 16-bit lanes
  __m128i self_shift, res_shift, res_mask;
  explicit AddTerms(const ResidualAddParams& r)
      : self_zero(_mm256_set1_epi32(r.self.zero)),
        self_mult(_mm256_set1_epi32(r.self.mult)),
        self_round(_mm256_set1_epi32(1 << (r.self.shift - 1))),
        res_zero(_mm256_set1_epi32(r.res.zero)),
        res_mult(_mm256_set1_epi32(r.res.mult)),
        res_round(_mm256_set1_epi32(1 << (r.res.shift - 1))),
        out_zero(_mm256_set1_epi32(r.out_zero)),
        lo(_mm256_set1_epi32(r.lo)),
        hi(_mm256_set1_epi32(r.hi)),
        self_zero16(_mm256_set1_epi16(static_cast<int16_t>(r.self.zero))),
        res_zero16(_mm256_set1_epi16(static_cast<int16_t>(r.res.zero))),
        lo16(_mm256_set1_epi16(static_cast<int16_t>(r.lo))),
        hi16(_mm256_set1_epi16(static_cast<int16_t>(r.hi))),
        self_shift(_mm_cvtsi32_si128(r.self.shift)),
        res_shift(_mm_cvtsi32_si128(r.res.shift)),
        res_mask(_mm_set1_epi8(static_cast<char>(r.res.mask))) {}
};

// r32(d, mult, shift) on 8 lanes with |d| <= 255 (eltwise/kernels.h), mult the same in every lane:
// d * 2^23 fits int32, and the high half of its product with mult is floor(d * mult / 2^9).
inline __m256i rescale32_8(__m256i d, __m256i mult, __m256i round, __m128i shift) {
  return _mm256_sra_epi32(_mm256_add_epi32(mulhi_epi32_broadcast(_mm256_slli_epi32(d, 23), mult), round), shift);
}

// requantize_add_value on 8 lanes: v the requantized values, res the 8 residual bytes.
inline __m256i add8(__m256i v, const uint8_t* res, const AddTerms& t) {
  const __m256i r =
      _mm256_cvtepu8_epi32(_mm_xor_si128(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(res)), t.res_mask));
  const __m256i a = rescale32_8(_mm256_sub_epi32(v, t.self_zero), t.self_mult, t.self_round, t.self_shift);
  const __m256i b = rescale32_8(_mm256_sub_epi32(r, t.res_zero), t.res_mult, t.res_round, t.res_shift);
  const __m256i sum = _mm256_add_epi32(_mm256_add_epi32(a, b), t.out_zero);
  return _mm256_min_epi32(_mm256_max_epi32(sum, t.lo), t.hi);
}

// add8 on 16 channels, as the qadd kernel computes its terms (eltwise/kernels_avx2.cc): the
// differences in 16-bit lanes (|d| <= 255, d * 2^7 fits int16), each put above 16 zero bits (d * 2^23)
// for the high multiply; the sums saturated to int16 keep the clamp's answer. Returns the 16 bytes.
inline __m128i add16(__m256i q0, __m256i q1, const uint8_t* res, const AddTerms& t) {
  const __m256i z = _mm256_setzero_si256();
  // q0, q1 in [-128, 255]: packed to int16 exactly, then the 64-bit groups back in channel order.
  const __m256i v = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), _MM_SHUFFLE(3, 1, 2, 0));
  const __m256i u =
      _mm256_cvtepu8_epi16(_mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(res)), t.res_mask));
  const __m256i dv = _mm256_slli_epi16(_mm256_sub_epi16(v, t.self_zero16), 7);
  const __m256i du = _mm256_slli_epi16(_mm256_sub_epi16(u, t.res_zero16), 7);
  auto term = [](__m256i d23, __m256i mult, __m256i round, __m128i shift) {
    return _mm256_sra_epi32(_mm256_add_epi32(mulhi_epi32_broadcast(d23, mult), round), shift);
  };
  // Channels 0-3 | 8-11 (lo) and 4-7 | 12-15 (hi), the order packs_epi32(lo, hi) undoes.
  const __m256i lo =
      _mm256_add_epi32(_mm256_add_epi32(term(_mm256_unpacklo_epi16(z, dv), t.self_mult, t.self_round, t.self_shift),
                                        term(_mm256_unpacklo_epi16(z, du), t.res_mult, t.res_round, t.res_shift)),
                       t.out_zero);
  const __m256i hi =
      _mm256_add_epi32(_mm256_add_epi32(term(_mm256_unpackhi_epi16(z, dv), t.self_mult, t.self_round, t.self_shift),
                                        term(_mm256_unpackhi_epi16(z, du), t.res_mult, t.res_round, t.res_shift)),
                       t.out_zero);
  const __m256i s16 = _mm256_min_epi16(_mm256_max_epi16(_mm256_packs_epi32(lo, hi), t.lo16), t.hi16);
  const __m256i bytes = _mm256_packus_epi16(_mm256_and_si256(s16, _mm256_set1_epi16(0xFF)), z);
  return _mm256_castsi256_si128(_mm256_permute4x64_epi64(bytes, _MM_SHUFFLE(3, 1, 2, 0)));
}

// output_s8 (and with kAdd output_s8_add) with the lane width fixed per call.
template <bool k32, bool kAdd>
void s8_rows(size_t m, size_t n, const int32_t* y, size_t ldy, const RequantizeParams& p, const ResidualAddParams* r,
             int8_t* out, size_t ldo) {
  const __m256i vlo64 = _mm256_set1_epi64x(p.lo), vhi64 = _mm256_set1_epi64x(p.hi);
  const __m256i vlo = _mm256_set1_epi32(p.lo), vhi = _mm256_set1_epi32(p.hi), v32 = _mm256_set1_epi32(32);
  // Byte 0 of each dword to the low 4 bytes of its 128-bit half, then the two halves' dwords together.
  const __m256i pick_dwords = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  //
                                               0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i join_halves = _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1);
  // The low dword of each qword, in the low half.
  const __m256i even_dwords = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
  // Local copies: a store to out could alias p, so its pointers would be reloaded after each one.
  const int32_t *mult = p.mult, *bias = p.bias;
  const uint8_t* shift = p.shift;
  const AddTerms terms(kAdd ? *r : kNoResidualAdd);
  const uint8_t* res = kAdd ? r->residual : nullptr;
  for (size_t i = 0; i < m; ++i, y += ldy, out += ldo) {
    size_t c = 0;
    for (; c + 8 <= n; c += 8) {
      __m256i v;
      if constexpr (k32) {
        const __m256i vs =
            _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(shift + c))), v32);
        v = requantize8_32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + c)),
                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(mult + c)), vs,
                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias + c)), vlo, vhi);
      } else {
        __m256i vout[2];
        for (size_t h = 0; h < 2; ++h) {
          const size_t k = c + 4 * h;
          const __m256i vy = _mm256_cvtepi32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y + k)));
          const __m256i vmult = _mm256_cvtepi32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(mult + k)));
          const __m256i vbias = _mm256_cvtepi32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bias + k)));
          uint32_t shift4;
          std::memcpy(&shift4, shift + k, 4);
          const __m256i vshift = _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(static_cast<int>(shift4)));
          // Clamped to [lo, hi]: the low dword is the value.
          vout[h] = _mm256_permutevar8x32_epi32(dyadic_rescale4(vy, vmult, vshift, vbias, vlo64, vhi64), even_dwords);
        }
        v = _mm256_blend_epi32(vout[0], vout[1], 0xF0);
      }
      if constexpr (kAdd) v = add8(v, res + c, terms);
      const __m128i vbytes =
          _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(v, pick_dwords), join_halves));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out + c), vbytes);
    }
    for (; c < n; ++c) {
      const int32_t v = requantize_value(y[c], mult[c], shift[c], bias[c], p.lo, p.hi);
      out[c] = kAdd ? requantize_add_value(v, res[c], *r) : static_cast<int8_t>(v);
    }
    if constexpr (kAdd) res += r->ldr;
  }
}

// s8_rows<true, kAdd> for rows of exactly 8 * kVectors channels (qconv2d's 16-channel panels):
// the per-channel vectors (multiplier, shift, its rounding term, bias) built once for all m rows.
template <size_t kVectors, bool kAdd>
void s8_rows_fixed32(size_t m, const int32_t* y, size_t ldy, const RequantizeParams& p, const ResidualAddParams* r,
                     int8_t* out, size_t ldo) {
  const __m256i vlo = _mm256_set1_epi32(p.lo), vhi = _mm256_set1_epi32(p.hi);
  const __m256i pick_dwords = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  //
                                               0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i join_halves = _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1);
  __m256i mult[kVectors], s[kVectors], round[kVectors], bias[kVectors];
  for (size_t v = 0; v < kVectors; ++v) {
    mult[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.mult + 8 * v));
    bias[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.bias + 8 * v));
    s[v] = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p.shift + 8 * v))),
                            _mm256_set1_epi32(32));
    round[v] = _mm256_srli_epi32(_mm256_sllv_epi32(_mm256_set1_epi32(1), s[v]), 1);  // 2^(s-1)
  }
  const AddTerms terms(kAdd ? *r : kNoResidualAdd);
  const uint8_t* res = kAdd ? r->residual : nullptr;
  for (size_t i = 0; i < m; ++i, y += ldy, out += ldo) {
    __m256i q[kVectors];
    for (size_t v = 0; v < kVectors; ++v) {
      const __m256i h = mulhi_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + 8 * v)), mult[v]);
      q[v] = _mm256_add_epi32(_mm256_srav_epi32(_mm256_add_epi32(h, round[v]), s[v]), bias[v]);
      q[v] = _mm256_min_epi32(_mm256_max_epi32(q[v], vlo), vhi);
    }
    if constexpr (kAdd && kVectors == 2) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), add16(q[0], q[1], res, terms));
    } else {
      for (size_t v = 0; v < kVectors; ++v) {
        if constexpr (kAdd) q[v] = add8(q[v], res + 8 * v, terms);
        const __m128i bytes =
            _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(q[v], pick_dwords), join_halves));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(out + 8 * v), bytes);
      }
    }
    if constexpr (kAdd) res += r->ldr;
  }
}

// requantize32_ok, 8 channels a step.
bool requantize32_ok8(size_t n, const RequantizeParams& p) {
  const __m256i below_shift = _mm256_set1_epi32(32);
  const __m256i below_bias = _mm256_set1_epi32(-(1 << 30) - 1), above_bias = _mm256_set1_epi32((1 << 30) + 1);
  __m256i ok = _mm256_set1_epi32(-1);
  size_t c = 0;
  for (; c + 8 <= n; c += 8) {
    const __m256i s = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p.shift + c)));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.bias + c));
    ok = _mm256_and_si256(
        ok, _mm256_and_si256(_mm256_cmpgt_epi32(s, below_shift),
                             _mm256_and_si256(_mm256_cmpgt_epi32(b, below_bias), _mm256_cmpgt_epi32(above_bias, b))));
  }
  return _mm256_movemask_epi8(ok) == -1 && requantize32_ok(c, n, p);
}

// The requantizer for these channels: the fixed forms for 8 and 16 in 32-bit lanes, else rows of any length.
template <bool kAdd>
void s8_any(size_t m, size_t n, const int32_t* y, size_t ldy, const RequantizeParams& p, const ResidualAddParams* r,
            int8_t* out, size_t ldo) {
  if (!requantize32_ok8(n, p)) return s8_rows<false, kAdd>(m, n, y, ldy, p, r, out, ldo);
  if (n == 16) return s8_rows_fixed32<2, kAdd>(m, y, ldy, p, r, out, ldo);
  if (n == 8) return s8_rows_fixed32<1, kAdd>(m, y, ldy, p, r, out, ldo);
  s8_rows<true, kAdd>(m, n, y, ldy, p, r, out, ldo);
}

}  // namespace

void output_s8(size_t m, size_t n, const int32_t* y, size_t ldy, const RequantizeParams& p, int8_t* out, size_t ldo) {
  s8_any<false>(m, n, y, ldy, p, nullptr, out, ldo);
}

void output_s8_add(size_t m, size_t n, const int32_t* y, size_t ldy, const RequantizeParams& p,
                   const ResidualAddParams& r, int8_t* out, size_t ldo) {
  s8_any<true>(m, n, y, ldy, p, &r, out, ldo);
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

// The fused transform of 8 channels up to the clamp (the parameters as vectors).
template <bool kResidual, bool kPrelu>
inline __m256 fused8(const int32_t* y, __m256 scale, __m256 bias, const float* residual, __m256 slope,
                     __m256 input_bias, __m256 output_bias, __m256 lo, __m256 hi) {
  const __m256 vy = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y)));
  __m256 v = _mm256_add_ps(_mm256_mul_ps(vy, scale), bias);
  if constexpr (kResidual) v = _mm256_add_ps(v, _mm256_loadu_ps(residual));
  if constexpr (kPrelu) {
    const __m256 u = _mm256_sub_ps(v, input_bias);
    // u >= 0 ordered: NaN takes u * slope, NaN as well, as the scalar ternary does.
    const __m256 r = _mm256_blendv_ps(_mm256_mul_ps(u, slope), u, _mm256_cmp_ps(u, _mm256_setzero_ps(), _CMP_GE_OQ));
    v = _mm256_add_ps(r, output_bias);
  }
  return _mm256_min_ps(hi, _mm256_max_ps(lo, v));  // NaN passes through, as in output_f32
}

// output_f32_fused with its options fixed, so that a row of a few vectors runs no tests.
template <bool kResidual, bool kPrelu, bool kSign>
void f32_fused_rows(size_t m, size_t n, const int32_t* y, size_t ldy, const OutputF32FusedParams& p, float* out,
                    size_t ldo, uint64_t* bits, size_t ldbits) {
  const __m256 vlo = _mm256_set1_ps(p.lo), vhi = _mm256_set1_ps(p.hi), zero = _mm256_setzero_ps();
  // Local copies: a store to out could alias p, so its pointers would be reloaded after each one.
  const float *scale = p.scale, *bias = p.bias, *slope = p.slope, *input_bias = p.input_bias;
  const float *output_bias = p.output_bias, *threshold = p.threshold, *residual = p.residual;
  for (size_t i = 0; i < m; ++i, y += ldy, out += ldo) {
    for (size_t w = 0; w * 64 < n; ++w) {
      const size_t begin = 64 * w, count = std::min<size_t>(64, n - begin);
      uint64_t word = 0;
      size_t j = 0;
      for (; j + 8 <= count; j += 8) {
        const size_t c = begin + j;
        const __m256 v = fused8<kResidual, kPrelu>(
            y + c, _mm256_loadu_ps(scale + c), _mm256_loadu_ps(bias + c), kResidual ? residual + c : nullptr,
            kPrelu ? _mm256_loadu_ps(slope + c) : zero, kPrelu ? _mm256_loadu_ps(input_bias + c) : zero,
            kPrelu ? _mm256_loadu_ps(output_bias + c) : zero, vlo, vhi);
        _mm256_storeu_ps(out + c, v);
        if constexpr (kSign) {
          const __m256 below = _mm256_cmp_ps(v, _mm256_loadu_ps(threshold + c), _CMP_LT_OQ);
          word |= static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_ps(below))) << j;
        }
      }
      for (; j < count; ++j) {
        const size_t c = begin + j;
        out[c] = fused_value(p, residual, c, y[c]);
        if constexpr (kSign) word |= static_cast<uint64_t>(out[c] < threshold[c]) << j;
      }
      if constexpr (kSign) bits[i * ldbits + w] = word;
    }
    if constexpr (kResidual) residual += p.residual_stride;
  }
}

// n = 8 * kVectors <= 64 (16, 32, 64 channels): the parameters stay in registers (or the stack)
// across the rows, and a row is straight-line code with one bits word. Up to 3x faster at 16.
template <bool kResidual, bool kPrelu, bool kSign, size_t kVectors>
void f32_fused_rows_fixed(size_t m, size_t, const int32_t* y, size_t ldy, const OutputF32FusedParams& p, float* out,
                          size_t ldo, uint64_t* bits, size_t ldbits) {
  const __m256 vlo = _mm256_set1_ps(p.lo), vhi = _mm256_set1_ps(p.hi), zero = _mm256_setzero_ps();
  __m256 scale[kVectors], bias[kVectors], slope[kVectors], input_bias[kVectors], output_bias[kVectors],
      threshold[kVectors];
  for (size_t v = 0; v < kVectors; ++v) {
    scale[v] = _mm256_loadu_ps(p.scale + 8 * v);
    bias[v] = _mm256_loadu_ps(p.bias + 8 * v);
    slope[v] = kPrelu ? _mm256_loadu_ps(p.slope + 8 * v) : zero;
    input_bias[v] = kPrelu ? _mm256_loadu_ps(p.input_bias + 8 * v) : zero;
    output_bias[v] = kPrelu ? _mm256_loadu_ps(p.output_bias + 8 * v) : zero;
    threshold[v] = kSign ? _mm256_loadu_ps(p.threshold + 8 * v) : zero;
  }
  const float* residual = p.residual;
  for (size_t i = 0; i < m; ++i, y += ldy, out += ldo) {
    uint64_t word = 0;
    for (size_t v = 0; v < kVectors; ++v) {
      const __m256 r = fused8<kResidual, kPrelu>(y + 8 * v, scale[v], bias[v], kResidual ? residual + 8 * v : nullptr,
                                                 slope[v], input_bias[v], output_bias[v], vlo, vhi);
      _mm256_storeu_ps(out + 8 * v, r);
      if constexpr (kSign)
        word |= static_cast<uint64_t>(_mm256_movemask_ps(_mm256_cmp_ps(r, threshold[v], _CMP_LT_OQ))) << (8 * v);
    }
    if constexpr (kSign) bits[i * ldbits] = word;
    if constexpr (kResidual) residual += p.residual_stride;
  }
}

template <bool kResidual, bool kPrelu, bool kSign>
OutputF32FusedFn pick_fused_rows(size_t n) {
  switch (n) {
    case 8:
      return f32_fused_rows_fixed<kResidual, kPrelu, kSign, 1>;
    case 16:
      return f32_fused_rows_fixed<kResidual, kPrelu, kSign, 2>;
    case 32:
      return f32_fused_rows_fixed<kResidual, kPrelu, kSign, 4>;
    case 64:
      return f32_fused_rows_fixed<kResidual, kPrelu, kSign, 8>;
    default:
      return f32_fused_rows<kResidual, kPrelu, kSign>;
  }
}

template <bool kResidual, bool kPrelu>
OutputF32FusedFn pick_fused_rows(size_t n, bool sign) {
  return sign ? pick_fused_rows<kResidual, kPrelu, true>(n) : pick_fused_rows<kResidual, kPrelu, false>(n);
}

}  // namespace

void output_f32_fused(size_t m, size_t n, const int32_t* y, size_t ldy, const OutputF32FusedParams& p, float* out,
                      size_t ldo, uint64_t* bits, size_t ldbits) {
  const bool sign = p.threshold != nullptr;
  const OutputF32FusedFn rows =
      p.residual ? (p.slope ? pick_fused_rows<true, true>(n, sign) : pick_fused_rows<true, false>(n, sign))
                 : (p.slope ? pick_fused_rows<false, true>(n, sign) : pick_fused_rows<false, false>(n, sign));
  rows(m, n, y, ldy, p, out, ldo, bits, ldbits);
}

}  // namespace lowbit::avx2
