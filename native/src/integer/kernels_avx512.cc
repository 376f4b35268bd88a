// kernels_avx512.cc: integer GEMMs for x86-64 with AVX-512 F+BW+VL+VNNI (Ice Lake, Zen 4 and
// later). Built with -mavx512f -mavx512bw -mavx512vl -mavx512vnni and chosen at run time only
// where the CPU and OS support them (cpu/dispatch.cc).
//
// vpdpbusd adds four u8 x s8 products into each int32 lane, exact and without saturation, and one
// 64-byte panel group (16 channels x 4 k) is exactly one zmm of weights: a row's 4 activation
// bytes broadcast to every lane give the 16 channels' group sums in one instruction, one zmm
// accumulator per row and no final reduction. The unsigned operand is u = x ^ mask ^ 0x80 =
// (int8 value) + 128 and the weights are the signed one, so every int8 weight, -128 included, is
// exact; the accumulators start at -128 * wsum (the panel header) to take the 128 back out.
// That costs nothing for uint8 tensors (mask 0x80: the bytes are u already). For int8 tensors
// (mask 0) the roles swap instead of XORing every broadcast: the weights made unsigned (w + 128,
// one vpxord per group shared by the rows) times the raw int8 activations, the accumulators
// starting at -128 * (the row's sum over K), itself one vpdpbusd by ones per 64 bytes of the row.
// (XORing each row into a buffer first measured ~25% slower than uint8 on Zen 4; the swap costs
// ~5%.) Other masks XOR the broadcasts in the loop.
// Q7 panels are Q8 panels, so q7_gemm is q8_gemm here. q8_gemm_runs is the same tile with each
// row's broadcasts taken from a pointer per piece: a 3x3 conv reads its kernel rows from the input
// in place instead of from gathered patch rows (measured ResNet-18 c64 56x56: 10% faster).
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>
#include <vector>

#include "integer/kernels.h"

namespace lowbit::avx512 {

namespace {

// Tile: kMR rows x 16 channels, kMR zmm accumulators; each group's weights are loaded once and
// shared by the rows, each row's 4 bytes come as one broadcast load. Zen 4 runs one zmm vpdpbusd
// a cycle (64 MACs) with a latency of several cycles: measured with native/bench/q_gemm_bench
// (one thread, 64 rows x 4 panels, K 576-4608, load 2 from other work), 4 rows ran 10-20% below
// 6-14 rows, which were level with each other within the noise at 350-450 Gop/s, the peak of
// one vpdpbusd a cycle. 8 keeps one address register per row and half the zmm free. (ymm would
// issue two a cycle for the same 64 MACs, with twice the accumulators and weight loads.)
constexpr size_t kMR = 8;
// Q4: a chunk of K is unpacked into Q8 groups first (16 KiB), then runs as Q8; a GEMV (fewer
// rows) runs the avx2 kernel, which unpacks in its tile while the weights stream from DRAM
// (measured 4096 x 4096: 97 Gop/s against 65 through the buffer).
constexpr size_t kQ4ChunkGroups = 256;
constexpr size_t kQ4BufferMinRows = 4;
// Few rows (a GEMV) stream the weights from DRAM: prefetch ahead as the avx2 tiles do.
constexpr size_t kPrefetchBytes = 4096;

// How the activation bytes x become the operands (see the top of the file).
enum class Mode {
  Unsigned,  // mask 0x80: u = x, weights signed
  Signed,    // mask 0: x signed, weights unsigned (w ^ 0x80), minus 128 * the row sum
  Xor,       // any other mask: u = x ^ (mask ^ 0x80), weights signed
};

inline __m512i broadcast32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Sum of the int8 values of n bytes.
inline int32_t row_sum(const uint8_t* p, size_t n) {
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i sum = _mm512_setzero_si512();
  size_t k = 0;
  for (; k + 64 <= n; k += 64) sum = _mm512_dpbusd_epi32(sum, ones, _mm512_loadu_si512(p + k));
  const __mmask64 tail = (uint64_t{1} << (n - k)) - 1;  // n - k < 64
  sum = _mm512_dpbusd_epi32(sum, ones, _mm512_maskz_loadu_epi8(tail, p + k));
  // (Not _mm512_reduce_add_epi32, whose header trips GCC 12's -Wuninitialized.)
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, sum);
  int32_t total = 0;
  for (int32_t v : lanes) total += v;
  return total;
}

// R rows x 16 channels over `runs` pieces of `groups` groups of body each: row r's piece s at
// a[r * runs + s] (a plain GEMM: one piece, a + r * lda). first: start from the offset correction,
// else add to c. vpdpbusd's latency needs several independent chains, so fewer than 4 rows (a
// GEMV) keep S = ceil(4 / R) chains per row over interleaved groups and add them up at the end.
template <size_t R, Mode kMode>
void tile(size_t runs, size_t groups, const uint8_t* body, const uint8_t* const* a, uint8_t flip, const uint8_t* header,
          bool first, int32_t* c, size_t ldc) {
  constexpr size_t S = (4 + R - 1) / R;
  const __m512i bias = _mm512_mullo_epi32(_mm512_loadu_si512(header), _mm512_set1_epi32(-128));
  const __m512i vflip = _mm512_set1_epi8(static_cast<char>(flip));
  __m512i acc[R][S];
#pragma GCC unroll 16
  for (size_t r = 0; r < R; ++r) {
    if constexpr (kMode == Mode::Signed) {
      int32_t sum = 0;
      for (size_t piece = 0; piece < runs; ++piece) sum += row_sum(a[r * runs + piece], 4 * groups);
      const __m512i correction = _mm512_set1_epi32(-128 * sum);
      acc[r][0] = first ? correction : _mm512_add_epi32(_mm512_loadu_si512(c + r * ldc), correction);
    } else {
      acc[r][0] = first ? bias : _mm512_loadu_si512(c + r * ldc);
    }
#pragma GCC unroll 4
    for (size_t s = 1; s < S; ++s) acc[r][s] = _mm512_setzero_si512();
  }
  for (size_t piece = 0; piece < runs; ++piece, body += 64 * groups) {
    const uint8_t* row[R];
#pragma GCC unroll 16
    for (size_t r = 0; r < R; ++r) row[r] = a[r * runs + piece];
    const auto step = [&](size_t g, size_t s) {
      _mm_prefetch(reinterpret_cast<const char*>(body + 64 * g + kPrefetchBytes), _MM_HINT_T0);
      __m512i w = _mm512_loadu_si512(body + 64 * g);
      if constexpr (kMode == Mode::Signed) w = _mm512_xor_si512(w, vflip);
#pragma GCC unroll 16
      for (size_t r = 0; r < R; ++r) {
        __m512i x = broadcast32(row[r] + 4 * g);
        if constexpr (kMode == Mode::Signed) {
          acc[r][s] = _mm512_dpbusd_epi32(acc[r][s], w, x);
        } else {
          if constexpr (kMode == Mode::Xor) x = _mm512_xor_si512(x, vflip);
          acc[r][s] = _mm512_dpbusd_epi32(acc[r][s], x, w);
        }
      }
    };
    size_t g = 0;
    for (; g + S <= groups; g += S) {
#pragma GCC unroll 4
      for (size_t s = 0; s < S; ++s) step(g + s, s);
    }
    for (; g < groups; ++g) step(g, 0);
  }
#pragma GCC unroll 16
  for (size_t r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (size_t s = 1; s < S; ++s) acc[r][0] = _mm512_add_epi32(acc[r][0], acc[r][s]);
    _mm512_storeu_si512(c + r * ldc, acc[r][0]);
  }
}

using Tile = void (*)(size_t, size_t, const uint8_t*, const uint8_t* const*, uint8_t, const uint8_t*, bool, int32_t*,
                      size_t);
template <Mode kMode, size_t... R>
constexpr std::array<Tile, sizeof...(R)> make_tiles(std::index_sequence<R...>) {
  return {tile<R + 1, kMode>...};
}
template <Mode kMode>
constexpr std::array<Tile, kMR> kTiles = make_tiles<kMode>(std::make_index_sequence<kMR>());

const std::array<Tile, kMR>& tiles_for(uint8_t mask) {
  return mask == 0x80 ? kTiles<Mode::Unsigned> : mask == 0 ? kTiles<Mode::Signed> : kTiles<Mode::Xor>;
}

// Q8 GEMM over `groups` groups of body; header: the panel's (wsum). first: overwrite c, else add.
void gemm_body(size_t m, size_t groups, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* body,
               const uint8_t* header, bool first, int32_t* c, size_t ldc) {
  const std::array<Tile, kMR>& tiles = tiles_for(mask);
  const uint8_t* rows[kMR];
  for (size_t i0 = 0; i0 < m; i0 += kMR) {
    const size_t r = std::min(kMR, m - i0);
    for (size_t i = 0; i < r; ++i) rows[i] = a + (i0 + i) * lda;
    tiles[r - 1](1, groups, body, rows, mask ^ 0x80, header, first, c + i0 * ldc, ldc);
  }
}

// Unpacks n Q4 groups (32 bytes each: channels 0-7 in the low nibbles, 8-15 in the high ones) into
// Q8 groups (64 int8 bytes).
void unpack_q4(const uint8_t* src, size_t n, uint8_t* dst) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1,  //
                                       0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1);
  const __m256i nibbles = _mm256_set1_epi8(0x0F);
  for (size_t g = 0; g < n; ++g) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 32 * g));
    const __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, nibbles));
    const __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), nibbles));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 64 * g), lo);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 64 * g + 32), hi);
  }
}

}  // namespace

void q8_gemm(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel, int32_t* c,
             size_t ldc) {
  gemm_body(m, kp / 4, a, lda, mask, panel + kQPanelHeaderBytes, panel, true, c, ldc);
}

void q8_gemm_runs(size_t m, size_t kp, size_t runs, const uint8_t* const* a, uint8_t mask, const uint8_t* panel,
                  int32_t* c, size_t ldc) {
  const std::array<Tile, kMR>& tiles = tiles_for(mask);
  for (size_t i0 = 0; i0 < m; i0 += kMR)
    tiles[std::min(kMR, m - i0) - 1](runs, kp / runs / 4, panel + kQPanelHeaderBytes, a + i0 * runs, mask ^ 0x80, panel,
                                     true, c + i0 * ldc, ldc);
}

// The whole panel unpacked into a Q8 panel first (a conv's K: at most 4608 * 16 bytes for
// ResNet-18), then run as one.
void q4_gemm_runs(size_t m, size_t kp, size_t runs, const uint8_t* const* a, uint8_t mask, const uint8_t* panel,
                  int32_t* c, size_t ldc) {
  thread_local std::vector<uint8_t> q8;
  q8.resize(q8_panel_bytes(kp));
  std::memcpy(q8.data(), panel, kQPanelHeaderBytes);
  unpack_q4(panel + kQPanelHeaderBytes, kp / 4, q8.data() + kQPanelHeaderBytes);
  q8_gemm_runs(m, kp, runs, a, mask, q8.data(), c, ldc);
}

void q4_gemm(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel, int32_t* c,
             size_t ldc) {
  if (m < kQ4BufferMinRows) return avx2::q4_gemm(m, kp, a, lda, mask, panel, c, ldc);
  const size_t groups = kp / 4;
  if (groups == 0) return gemm_body(m, 0, a, lda, mask, nullptr, panel, true, c, ldc);
  alignas(64) uint8_t body[64 * kQ4ChunkGroups];
  for (size_t g0 = 0; g0 < groups; g0 += kQ4ChunkGroups) {
    const size_t n = std::min(kQ4ChunkGroups, groups - g0);
    unpack_q4(panel + kQPanelHeaderBytes + 32 * g0, n, body);
    gemm_body(m, n, a + 4 * g0, lda, mask, body, panel, g0 == 0, c, ldc);
  }
}

}  // namespace lowbit::avx512
