// kernels_avx2.cc: integer kernels for x86-64 AVX2, exact for every operand value.
//
// Q8 does not use vpmaddubsw: u8 x s8 pairs saturate int16, and the exact sign trick (vpabsb +
// a vpsignb per weight vector and row) puts the vpsignb on the pipes that run the multiplies
// (Zen 3). Instead both operands are split into int16 even/odd bytes with shifts (other pipes)
// and (a0, a2) . (w0, w2) + (a1, a3) . (w1, w3) is done by vpmaddwd: 4 vpmaddwd + 4 vpaddd per row
// and group of 4 (64 MACs), exact for -128 too, so no weight needs a separate path. Measured on
// Zen 3: the tile alone runs ~15% faster than a sign-trick tile (82% vs 72% of the inexact plain
// vpmaddubsw tile); the per-call split of the activations eats most of that, so the whole kernel
// is level with a sign-trick kernel without -128 weights and 1.5-2x an int16 fallback with them.
//
// Q4 does use vpmaddubsw: activations offset to unsigned (a + 128) times int4 weights give pairs
// of at most 2 * 255 * 8 = 4080, so 8 groups add up in int16 before one vpmaddwd widens them; the
// header's weight sums take the 128 back out.
//
// Q7 (weights in [-64, 64]) does too: a pair is at most 2 * 255 * 64 = 32640, so one vpmaddubsw per
// 8 channels and group is exact, and vpmaddwd by ones widens it at once: 2 vpmaddubsw + 2 vpmaddwd
// + 2 vpaddd per row and group, straight from the panel, with no splitting of either operand.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "integer/kernels.h"

namespace lowbit::avx2 {

namespace {

inline __m256i loadu(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline void storeu(void* p, __m256i v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }
inline __m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
inline __m128i load64(const void* p) { return _mm_loadl_epi64(static_cast<const __m128i*>(p)); }  // 8 bytes only
inline __m256i broadcast32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// The tiles keep their accumulators in named variables, rows 0-3 (lo: channels 0-7, hi: 8-15),
// pinned to registers once per group with an empty asm: as an array indexed in a loop, GCC 12
// keeps them on the stack, a load and a store on the critical path of every group.
#define LOWBIT_ROWS(R, X)  \
  { X(0, lo0, hi0); }      \
  if constexpr ((R) > 1) { \
    X(1, lo1, hi1);        \
  }                        \
  if constexpr ((R) > 2) { \
    X(2, lo2, hi2);        \
  }                        \
  if constexpr ((R) > 3) { \
    X(3, lo3, hi3);        \
  }
#define LOWBIT_PIN(r, lo, hi) asm("" : "+x"(lo), "+x"(hi))

// Chunk lengths (in groups of 4) for `groups` groups: as even as possible, multiples of 8 (one
// ymm of activations) except the last, at most `max` so the chunk's buffers stay in L1.
inline size_t chunk_groups(size_t groups, size_t max) {
  const size_t chunks = (groups + max - 1) / max;
  return std::min(max, ((groups + chunks - 1) / chunks + 7) / 8 * 8);
}

// ---- Q8 ---------------------------------------------------------------------------------------
//
// Per chunk of K the weights are split once into [even lo, odd lo, even hi, odd hi] (channels 0-7
// and 8-15, 128 bytes a group) when enough rows share them, and each row's activations into even
// and odd int16 pairs, so the inner loop is 2 broadcasts, 4 vpmaddwd and 4 vpaddd per row and
// group. The tile is 4 rows x 16 channels: 8 accumulators + 4 weights + 2 broadcasts + 2
// temporaries fill the 16 ymm (measured: 4 rows beat 3, 5 and 6).
// Few rows (a GEMV) stream the weights once from DRAM: the tiles that read the panel directly
// prefetch this far ahead (measured on the 4096 x 4096 W4 GEMV: 1.13 -> 0.88 ms; 256 B to 16 KiB tried).
constexpr size_t kPrefetchBytes = 4096;
constexpr size_t kQ8ChunkGroups = 128;  // 16 KiB of split weights + 4 KiB of split activations
constexpr size_t kQ8MR = 4;
// Below this many rows, splitting the weights in each tile (6 shifts a group, per 4 rows) costs
// less than a buffer pass (the same shifts plus 4 stores a group, once).
constexpr size_t kQ8BufferMinRows = 8;

inline __m256i even_bytes(__m256i v) { return _mm256_srai_epi16(_mm256_slli_epi16(v, 8), 8); }
inline __m256i odd_bytes(__m256i v) { return _mm256_srai_epi16(v, 8); }

// One row's activations over `groups` groups: e[g] = int16 (a0, a2), o[g] = (a1, a3) of group g.
template <bool kMask>
void split_activations(const uint8_t* row, uint8_t mask, size_t groups, int32_t* e, int32_t* o) {
  const __m256i vmask = _mm256_set1_epi8(static_cast<char>(mask));
  size_t g = 0;
  for (; g + 8 <= groups; g += 8) {
    __m256i x = loadu(row + 4 * g);
    if constexpr (kMask) x = _mm256_xor_si256(x, vmask);
    _mm256_store_si256(reinterpret_cast<__m256i*>(e + g), even_bytes(x));
    _mm256_store_si256(reinterpret_cast<__m256i*>(o + g), odd_bytes(x));
  }
  for (; g < groups; ++g) {
    const auto value = [&](int t) {
      return static_cast<uint32_t>(static_cast<uint16_t>(static_cast<int8_t>(row[4 * g + t] ^ mask)));
    };
    e[g] = static_cast<int32_t>(value(0) | value(2) << 16);
    o[g] = static_cast<int32_t>(value(1) | value(3) << 16);
  }
}

inline void split_weights(const uint8_t* group, __m256i& e0, __m256i& o0, __m256i& e1, __m256i& o1) {
  const __m256i w0 = loadu(group), w1 = loadu(group + 32);
  e0 = even_bytes(w0);
  o0 = odd_bytes(w0);
  e1 = even_bytes(w1);
  o1 = odd_bytes(w1);
}

// R rows x 16 channels over `groups` groups. Weights come split from wbuf (kBuffered) or raw from
// the panel body. e/o hold the rows' split activations at row stride ld. first: overwrite c,
// else add to it.
template <size_t R, bool kBuffered>
void q8_tile(size_t groups, const __m256i* wbuf, const uint8_t* body, const int32_t* e, const int32_t* o, size_t ld,
             bool first, int32_t* c, size_t ldc) {
  static_assert(R >= 1 && R <= 4, "rows 0-3");
  __m256i lo0 = _mm256_setzero_si256(), hi0 = lo0, lo1 = lo0, hi1 = lo0, lo2 = lo0, hi2 = lo0, lo3 = lo0, hi3 = lo0;
#define LOWBIT_LOAD(r, lo, hi) \
  lo = loadu(c + (r)*ldc);     \
  hi = loadu(c + (r)*ldc + 8)
  if (!first) {
    LOWBIT_ROWS(R, LOWBIT_LOAD)
  }
  for (size_t g = 0; g < groups; ++g) {
    __m256i we0, wo0, we1, wo1;
    if constexpr (kBuffered) {
      we0 = _mm256_load_si256(wbuf + 4 * g);
      wo0 = _mm256_load_si256(wbuf + 4 * g + 1);
      we1 = _mm256_load_si256(wbuf + 4 * g + 2);
      wo1 = _mm256_load_si256(wbuf + 4 * g + 3);
    } else {
      _mm_prefetch(reinterpret_cast<const char*>(body + 64 * g + kPrefetchBytes), _MM_HINT_T0);
      split_weights(body + 64 * g, we0, wo0, we1, wo1);
    }
#define LOWBIT_STEP(r, lo, hi)                                                                           \
  {                                                                                                      \
    const __m256i ve = broadcast32(e + (r)*ld + g), vo = broadcast32(o + (r)*ld + g);                    \
    lo = _mm256_add_epi32(lo, _mm256_add_epi32(_mm256_madd_epi16(ve, we0), _mm256_madd_epi16(vo, wo0))); \
    hi = _mm256_add_epi32(hi, _mm256_add_epi32(_mm256_madd_epi16(ve, we1), _mm256_madd_epi16(vo, wo1))); \
  }
    LOWBIT_ROWS(R, LOWBIT_STEP)
#undef LOWBIT_STEP
    LOWBIT_ROWS(R, LOWBIT_PIN)
  }
#define LOWBIT_STORE(r, lo, hi) \
  storeu(c + (r)*ldc, lo);      \
  storeu(c + (r)*ldc + 8, hi)
  LOWBIT_ROWS(R, LOWBIT_STORE)
}

template <bool kBuffered, bool kMask>
void q8_chunks(size_t m, size_t groups, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* body, int32_t* c,
               size_t ldc) {
  using Tile =
      void (*)(size_t, const __m256i*, const uint8_t*, const int32_t*, const int32_t*, size_t, bool, int32_t*, size_t);
  static constexpr Tile kTiles[kQ8MR] = {q8_tile<1, kBuffered>, q8_tile<2, kBuffered>, q8_tile<3, kBuffered>,
                                         q8_tile<4, kBuffered>};
  __m256i wbuf[kBuffered ? 4 * kQ8ChunkGroups : 1];
  alignas(32) int32_t e[kQ8MR * kQ8ChunkGroups], o[kQ8MR * kQ8ChunkGroups];
  const size_t step = chunk_groups(groups, kQ8ChunkGroups);
  for (size_t g0 = 0; g0 < groups; g0 += step) {
    const size_t n = std::min(step, groups - g0);
    const uint8_t* chunk = body + 64 * g0;
    if constexpr (kBuffered)
      for (size_t g = 0; g < n; ++g)
        split_weights(chunk + 64 * g, wbuf[4 * g], wbuf[4 * g + 1], wbuf[4 * g + 2], wbuf[4 * g + 3]);
    for (size_t i0 = 0; i0 < m; i0 += kQ8MR) {
      const size_t rows = std::min(kQ8MR, m - i0);
      for (size_t r = 0; r < rows; ++r)
        split_activations<kMask>(a + (i0 + r) * lda + 4 * g0, mask, n, e + r * kQ8ChunkGroups, o + r * kQ8ChunkGroups);
      kTiles[rows - 1](n, wbuf, chunk, e, o, kQ8ChunkGroups, g0 == 0, c + i0 * ldc, ldc);
    }
  }
}

// ---- Q7 ---------------------------------------------------------------------------------------
//
// The tile is 4 rows x 16 channels: 8 int32 accumulators + 2 weights + ones + flip + a broadcast
// and 2 products fill the 16 ymm. The accumulators start at -128 * wsum (the tile multiplies
// a + 128) and stay in registers over a chunk of K whose weights (8 KiB) stay in L1 across the
// row tiles.
constexpr size_t kQ7ChunkGroups = 128;
constexpr size_t kQ7MR = 4;

// R rows x 16 channels over `groups` groups of body; x ^ flip = a + 128 (kFlip: flip != 0).
// first: start from bias (lo: channels 0-7, hi: 8-15), else add to c.
template <size_t R, bool kFlip>
void q7_tile(size_t groups, const uint8_t* body, const uint8_t* a, size_t lda, uint8_t flip, __m256i bias_lo,
             __m256i bias_hi, bool first, int32_t* c, size_t ldc) {
  static_assert(R >= 1 && R <= 4, "rows 0-3");
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i vflip = _mm256_set1_epi8(static_cast<char>(flip));
  __m256i lo0 = bias_lo, hi0 = bias_hi, lo1 = lo0, hi1 = hi0, lo2 = lo0, hi2 = hi0, lo3 = lo0, hi3 = hi0;
  if (!first) {
    LOWBIT_ROWS(R, LOWBIT_LOAD)
  }
  for (size_t g = 0; g < groups; ++g) {
    _mm_prefetch(reinterpret_cast<const char*>(body + 64 * g + kPrefetchBytes), _MM_HINT_T0);
    const __m256i wlo = loadu(body + 64 * g), whi = loadu(body + 64 * g + 32);
#define LOWBIT_STEP(r, lo, hi)                                                        \
  {                                                                                   \
    __m256i x = broadcast32(a + (r)*lda + 4 * g);                                     \
    if constexpr (kFlip) x = _mm256_xor_si256(x, vflip);                              \
    lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_maddubs_epi16(x, wlo), ones)); \
    hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_maddubs_epi16(x, whi), ones)); \
  }
    LOWBIT_ROWS(R, LOWBIT_STEP)
#undef LOWBIT_STEP
    LOWBIT_ROWS(R, LOWBIT_PIN)
  }
  LOWBIT_ROWS(R, LOWBIT_STORE)
}

template <bool kFlip>
void q7_chunks(size_t m, size_t groups, const uint8_t* a, size_t lda, uint8_t flip, const uint8_t* panel, int32_t* c,
               size_t ldc) {
  using Tile =
      void (*)(size_t, const uint8_t*, const uint8_t*, size_t, uint8_t, __m256i, __m256i, bool, int32_t*, size_t);
  static constexpr Tile kTiles[kQ7MR] = {q7_tile<1, kFlip>, q7_tile<2, kFlip>, q7_tile<3, kFlip>, q7_tile<4, kFlip>};
  int32_t wsum[kQPanelChannels];
  std::memcpy(wsum, panel, sizeof wsum);
  const __m256i bias_lo = _mm256_mullo_epi32(loadu(wsum), _mm256_set1_epi32(-128));
  const __m256i bias_hi = _mm256_mullo_epi32(loadu(wsum + 8), _mm256_set1_epi32(-128));
  const uint8_t* body = panel + kQPanelHeaderBytes;
  const size_t step = chunk_groups(groups, kQ7ChunkGroups);
  for (size_t g0 = 0; g0 < groups; g0 += step) {
    const size_t n = std::min(step, groups - g0);
    for (size_t i0 = 0; i0 < m; i0 += kQ7MR)
      kTiles[std::min(kQ7MR, m - i0) - 1](n, body + 64 * g0, a + i0 * lda + 4 * g0, lda, flip, bias_lo, bias_hi,
                                          g0 == 0, c + i0 * ldc, ldc);
  }
}

// ---- Q4 ---------------------------------------------------------------------------------------
//
// Per chunk of K the nibbles are unpacked once into int8 (64 bytes a group: channels 0-7, then
// 8-15) when enough rows share them. Each row's 4 activation bytes are broadcast and made a + 128
// (a vpxor with mask ^ 0x80, none for mask = 0x80, whose bytes already are a + 128), then 2
// vpmaddubsw + 2 vpaddw per row and group; every kQ4Steps groups vpmaddwd widens the int16 sums
// into c, which a load and a store per row keep off the registers. (Xoring the rows into a buffer
// first measured the same as the in-loop vpxor; skipping it for mask = 0x80 is ~12% faster.)
constexpr size_t kQ4ChunkGroups = 256;  // 16 KiB of unpacked weights
constexpr size_t kQ4Steps = 8;          // 8 * 4080 = 32640 <= 32767
constexpr size_t kQ4MR = 4;             // 8 int16 sums; 6 rows: as fast without the vpxor, 15% slower with it
constexpr size_t kQ4BufferMinRows = 4;  // fewer rows unpack in the tile (5 ops a group)

inline void unpack_q4(const uint8_t* group, __m256i& lo, __m256i& hi) {
  // Two's-complement nibble -> int8.
  const __m256i lut = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1,  //
                                       0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1);
  const __m256i nibbles = _mm256_set1_epi8(0x0F);
  const __m256i v = loadu(group);
  lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, nibbles));
  hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), nibbles));
}

// R rows x 16 channels, adding into c; x ^ flip = a + 128 (kFlip: flip != 0).
template <size_t R, bool kBuffered, bool kFlip>
void q4_tile(size_t groups, const __m256i* wbuf, const uint8_t* body, const uint8_t* a, size_t lda, uint8_t flip,
             int32_t* c, size_t ldc) {
  static_assert(R >= 1 && R <= 4, "rows 0-3");
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i vflip = _mm256_set1_epi8(static_cast<char>(flip));
  for (size_t g0 = 0; g0 < groups; g0 += kQ4Steps) {
    const size_t g1 = std::min(groups, g0 + kQ4Steps);
    __m256i lo0 = _mm256_setzero_si256(), hi0 = lo0, lo1 = lo0, hi1 = lo0, lo2 = lo0, hi2 = lo0, lo3 = lo0, hi3 = lo0;
    for (size_t g = g0; g < g1; ++g) {
      __m256i wlo, whi;
      if constexpr (kBuffered) {
        wlo = _mm256_load_si256(wbuf + 2 * g);
        whi = _mm256_load_si256(wbuf + 2 * g + 1);
      } else {
        _mm_prefetch(reinterpret_cast<const char*>(body + 32 * g + kPrefetchBytes), _MM_HINT_T0);
        unpack_q4(body + 32 * g, wlo, whi);
      }
#define LOWBIT_STEP(r, lo, hi)                               \
  {                                                          \
    __m256i x = broadcast32(a + (r)*lda + 4 * g);            \
    if constexpr (kFlip) x = _mm256_xor_si256(x, vflip);     \
    lo = _mm256_add_epi16(lo, _mm256_maddubs_epi16(x, wlo)); \
    hi = _mm256_add_epi16(hi, _mm256_maddubs_epi16(x, whi)); \
  }
      LOWBIT_ROWS(R, LOWBIT_STEP)
#undef LOWBIT_STEP
      LOWBIT_ROWS(R, LOWBIT_PIN)
    }
#define LOWBIT_WIDEN(r, lo, hi)                                                           \
  storeu(c + (r)*ldc, _mm256_add_epi32(loadu(c + (r)*ldc), _mm256_madd_epi16(lo, ones))); \
  storeu(c + (r)*ldc + 8, _mm256_add_epi32(loadu(c + (r)*ldc + 8), _mm256_madd_epi16(hi, ones)))
    LOWBIT_ROWS(R, LOWBIT_WIDEN)
#undef LOWBIT_WIDEN
  }
}

#undef LOWBIT_LOAD
#undef LOWBIT_STORE
#undef LOWBIT_PIN
#undef LOWBIT_ROWS

template <bool kBuffered, bool kFlip>
void q4_chunks(size_t m, size_t groups, const uint8_t* a, size_t lda, uint8_t flip, const uint8_t* body, int32_t* c,
               size_t ldc) {
  using Tile = void (*)(size_t, const __m256i*, const uint8_t*, const uint8_t*, size_t, uint8_t, int32_t*, size_t);
  static constexpr Tile kTiles[kQ4MR] = {q4_tile<1, kBuffered, kFlip>, q4_tile<2, kBuffered, kFlip>,
                                         q4_tile<3, kBuffered, kFlip>, q4_tile<4, kBuffered, kFlip>};
  __m256i wbuf[kBuffered ? 2 * kQ4ChunkGroups : 1];
  const size_t step = chunk_groups(groups, kQ4ChunkGroups);
  for (size_t g0 = 0; g0 < groups; g0 += step) {
    const size_t n = std::min(step, groups - g0);
    const uint8_t* chunk = body + 32 * g0;
    if constexpr (kBuffered)
      for (size_t g = 0; g < n; ++g) unpack_q4(chunk + 32 * g, wbuf[2 * g], wbuf[2 * g + 1]);
    for (size_t i0 = 0; i0 < m; i0 += kQ4MR)
      kTiles[std::min(kQ4MR, m - i0) - 1](n, wbuf, chunk, a + i0 * lda + 4 * g0, lda, flip, c + i0 * ldc, ldc);
  }
}

// kp = 0: every sum is empty.
void zero_rows(size_t m, int32_t* c, size_t ldc) {
  for (size_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + kQPanelChannels, 0);
}

}  // namespace

void q8_gemm(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel, int32_t* c,
             size_t ldc) {
  const size_t groups = kp / 4;
  if (groups == 0) return zero_rows(m, c, ldc);
  const uint8_t* body = panel + kQPanelHeaderBytes;
  if (m >= kQ8BufferMinRows)
    mask ? q8_chunks<true, true>(m, groups, a, lda, mask, body, c, ldc)
         : q8_chunks<true, false>(m, groups, a, lda, mask, body, c, ldc);
  else
    mask ? q8_chunks<false, true>(m, groups, a, lda, mask, body, c, ldc)
         : q8_chunks<false, false>(m, groups, a, lda, mask, body, c, ldc);
}

void q4_gemm(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel, int32_t* c,
             size_t ldc) {
  // c starts at -128 * wsum[j]: the tiles multiply a + 128.
  int32_t wsum[kQPanelChannels];
  std::memcpy(wsum, panel, sizeof wsum);
  const __m256i bias0 = _mm256_mullo_epi32(loadu(wsum), _mm256_set1_epi32(-128));
  const __m256i bias1 = _mm256_mullo_epi32(loadu(wsum + 8), _mm256_set1_epi32(-128));
  for (size_t i = 0; i < m; ++i) {
    storeu(c + i * ldc, bias0);
    storeu(c + i * ldc + 8, bias1);
  }
  const size_t groups = kp / 4;
  if (groups == 0) return;
  const uint8_t* body = panel + kQPanelHeaderBytes;
  const uint8_t flip = mask ^ 0x80;
  if (m >= kQ4BufferMinRows)
    flip ? q4_chunks<true, true>(m, groups, a, lda, flip, body, c, ldc)
         : q4_chunks<true, false>(m, groups, a, lda, flip, body, c, ldc);
  else
    flip ? q4_chunks<false, true>(m, groups, a, lda, flip, body, c, ldc)
         : q4_chunks<false, false>(m, groups, a, lda, flip, body, c, ldc);
}

void q7_gemm(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel, int32_t* c,
             size_t ldc) {
  const size_t groups = kp / 4;
  if (groups == 0) return zero_rows(m, c, ldc);
  const uint8_t flip = mask ^ 0x80;
  flip ? q7_chunks<true>(m, groups, a, lda, flip, panel, c, ldc)
       : q7_chunks<false>(m, groups, a, lda, flip, panel, c, ldc);
}

namespace {

// The bytes of two taps over kC = 16 or 8 channels (xor mask) as int16 pairs (a[c], b[c]) for
// vpmaddwd: channels 0-7 in lo, 8-15 in hi (kC = 16 only).
template <size_t kC>
inline void dw_pairs(const void* pa, const void* pb, __m128i mask, __m256i& lo, __m256i& hi) {
  const __m128i a = _mm_xor_si128(kC == 16 ? load128(pa) : load64(pa), mask);
  const __m128i b = _mm_xor_si128(kC == 16 ? load128(pb) : load64(pb), mask);
  lo = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, b));
  if constexpr (kC == 16) hi = _mm256_cvtepi8_epi16(_mm_unpackhi_epi8(a, b));
}

// Channels c .. c + kC of every pixel, taps in chunks of up to 2 * kDwPairs: the weights of each
// pair of taps interleaved into int16 pairs once per chunk, then per pixel the input bytes likewise
// and one vpmaddwd per pair, the int32 sums in registers across the taps.
constexpr size_t kDwPairs = 16;

template <size_t kC>
void dw_block(size_t c, size_t n, size_t taps, size_t pixels, const uint8_t* const* x, __m128i mask, const int8_t* w,
              const int32_t* bias, int32_t* acc) {
  alignas(32) int16_t wp[kDwPairs][2][16];
  for (size_t t0 = 0; t0 < taps; t0 += 2 * kDwPairs) {
    const size_t tn = std::min(2 * kDwPairs, taps - t0), pairs = tn / 2;
    for (size_t q = 0; q < (tn + 1) / 2; ++q) {  // an odd last tap pairs with weight 0
      const int8_t* wa = w + (t0 + 2 * q) * n + c;
      __m256i lo, hi;
      dw_pairs<kC>(wa, 2 * q + 1 < tn ? wa + n : wa, _mm_setzero_si128(), lo, hi);
      if (2 * q + 1 == tn) {
        const __m256i even = _mm256_set1_epi32(0xFFFF);
        lo = _mm256_and_si256(lo, even), hi = _mm256_and_si256(hi, even);
      }
      storeu(wp[q][0], lo);
      if constexpr (kC == 16) storeu(wp[q][1], hi);
    }
    for (size_t p = 0; p < pixels; ++p) {
      const uint8_t* const* xp = x + p * taps + t0;
      int32_t* out = acc + p * n + c;
      const int32_t* from = t0 == 0 ? bias + c : out;
      __m256i lo = loadu(from), hi = kC == 16 ? loadu(from + 8) : _mm256_setzero_si256();
      __m256i a, b;
      for (size_t q = 0; q < pairs; ++q) {
        dw_pairs<kC>(xp[2 * q] + c, xp[2 * q + 1] + c, mask, a, b);
        lo = _mm256_add_epi32(lo, _mm256_madd_epi16(a, loadu(wp[q][0])));
        if constexpr (kC == 16) hi = _mm256_add_epi32(hi, _mm256_madd_epi16(b, loadu(wp[q][1])));
      }
      if (tn % 2) {
        dw_pairs<kC>(xp[tn - 1] + c, xp[tn - 1] + c, mask, a, b);
        lo = _mm256_add_epi32(lo, _mm256_madd_epi16(a, loadu(wp[pairs][0])));
        if constexpr (kC == 16) hi = _mm256_add_epi32(hi, _mm256_madd_epi16(b, loadu(wp[pairs][1])));
      }
      storeu(out, lo);
      if constexpr (kC == 16) storeu(out + 8, hi);
    }
  }
}

}  // namespace

// Depthwise: blocks of 16 channels, then one of 8, then scalar channels (|x * w| <= 128 * 128, so
// a vpmaddwd pair sum is exact; vector adds wrap modulo 2^32 as the contract wants).
void q8_dw(size_t n, size_t taps, size_t pixels, const uint8_t* const* x, uint8_t mask, const int8_t* w,
           const int32_t* bias, int32_t* acc) {
  const __m128i vmask = _mm_set1_epi8(static_cast<char>(mask));
  size_t c = 0;
  for (; c + 16 <= n; c += 16) dw_block<16>(c, n, taps, pixels, x, vmask, w, bias, acc);
  if (c + 8 <= n) dw_block<8>(c, n, taps, pixels, x, vmask, w, bias, acc), c += 8;
  for (; c < n; ++c)
    for (size_t p = 0; p < pixels; ++p) {
      int32_t sum = 0;
      for (size_t t = 0; t < taps; ++t) sum += static_cast<int8_t>(x[p * taps + t][c] ^ mask) * w[t * n + c];
      acc[p * n + c] = static_cast<int32_t>(static_cast<uint32_t>(sum) + static_cast<uint32_t>(bias[c]));
    }
}

namespace {

// Channels c0 .. c0 + 16 of P pixels: each interleaved pair of weight rows serves the P pixels.
template <size_t P>
void small_k_block(size_t k, size_t c0, size_t n, const int16_t* x, size_t ldx, const int16_t* w, size_t stride,
                   const int32_t* bias, int32_t* acc) {
  __m256i lo[P], hi[P];
  for (size_t p = 0; p < P; ++p) lo[p] = hi[p] = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 1 < k; i += 2) {  // the pairs (x_i, x_i+1) broadcast straight from memory
    const __m256i wa = loadu(w + i * stride + c0), wb = loadu(w + (i + 1) * stride + c0);
    const __m256i wl = _mm256_unpacklo_epi16(wa, wb), wh = _mm256_unpackhi_epi16(wa, wb);
    for (size_t p = 0; p < P; ++p) {
      const __m256i vx = broadcast32(x + p * ldx + i);
      lo[p] = _mm256_add_epi32(lo[p], _mm256_madd_epi16(wl, vx));
      hi[p] = _mm256_add_epi32(hi[p], _mm256_madd_epi16(wh, vx));
    }
  }
  if (i < k) {  // an odd last tap pairs with 0
    const __m256i wa = loadu(w + i * stride + c0), zero = _mm256_setzero_si256();
    const __m256i wl = _mm256_unpacklo_epi16(wa, zero), wh = _mm256_unpackhi_epi16(wa, zero);
    for (size_t p = 0; p < P; ++p) {
      const __m256i vx = _mm256_set1_epi32(static_cast<uint16_t>(x[p * ldx + i]));
      lo[p] = _mm256_add_epi32(lo[p], _mm256_madd_epi16(wl, vx));
      hi[p] = _mm256_add_epi32(hi[p], _mm256_madd_epi16(wh, vx));
    }
  }
  for (size_t p = 0; p < P; ++p) {
    int32_t* out = acc + p * n + c0;
    const __m256i sum0 = _mm256_permute2x128_si256(lo[p], hi[p], 0x20);
    const __m256i sum1 = _mm256_permute2x128_si256(lo[p], hi[p], 0x31);
    if (c0 + 16 <= n) {  // a whole block: the bias in vectors too (per element it cost as much as k = 16 MACs)
      storeu(out, _mm256_add_epi32(sum0, loadu(bias + c0)));
      storeu(out + 8, _mm256_add_epi32(sum1, loadu(bias + c0 + 8)));
      continue;
    }
    alignas(32) int32_t sum[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(sum), sum0);
    _mm256_store_si256(reinterpret_cast<__m256i*>(sum + 8), sum1);
    for (size_t j = 0; c0 + j < n; ++j) out[j] = sum[j] + bias[c0 + j];
  }
}

}  // namespace

// Two taps at a time with vpmaddwd: the rows of taps i and i+1 interleaved into (w_i, w_i+1)
// pairs per channel, multiplied by the broadcast pair (x_i, x_i+1) and summed into int32 lanes
// (|x * w| <= 255 * 128, so a pair sum is exact), four pixels per interleaved pair (the unpacking
// cost as much as the multiplies). Unpacking works within 128-bit lanes, so the low accumulator
// holds channels 0-3 and 8-11 of the block, the high one 4-7 and 12-15.
void q16_small_k(size_t k, size_t n, size_t pixels, const int16_t* x, size_t ldx, const int16_t* w, size_t stride,
                 const int32_t* bias, int32_t* acc) {
  size_t p = 0;
  for (; p + 4 <= pixels; p += 4)
    for (size_t c0 = 0; c0 < n; c0 += 16) small_k_block<4>(k, c0, n, x + p * ldx, ldx, w, stride, bias, acc + p * n);
  for (; p < pixels; ++p)
    for (size_t c0 = 0; c0 < n; c0 += 16) small_k_block<1>(k, c0, n, x + p * ldx, ldx, w, stride, bias, acc + p * n);
}

}  // namespace lowbit::avx2
