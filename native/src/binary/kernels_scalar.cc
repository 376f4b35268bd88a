// kernels_scalar.cc: portable binary kernels, word at a time; the path on CPUs without SIMD
// support and the baseline the benchmarks compare SIMD against.
#include <cstring>

#include "binary/kernels.h"
#include "binary/mst_count.h"
#include "common/checked_math.h"

// The baseline x86-64 ISA has no popcnt instruction, and the generic fallback is ~10x slower;
// where the CPU has it, the loader picks a clone built with it (still plain scalar code).
#if defined(__x86_64__) && defined(__linux__)
#define LOWBIT_POPCNT_CLONES __attribute__((target_clones("popcnt", "default")))
#else
#define LOWBIT_POPCNT_CLONES
#endif

namespace lowbit::scalar {

namespace {
template <typename T>
void pack(const T* src, size_t rows, size_t channels, uint64_t* dst) {
  const size_t words = words_for_bits(channels);
  for (size_t r = 0; r < rows; ++r, src += channels, dst += words) {
    for (size_t w = 0; w < words; ++w) {
      const size_t begin = w * 64;
      const size_t count = channels - begin < 64 ? channels - begin : 64;
      uint64_t word = 0;
      for (size_t j = 0; j < count; ++j) word |= static_cast<uint64_t>(src[begin + j] < T(0)) << j;
      dst[w] = word;
    }
  }
}
}  // namespace

void b1_pack_f32(const float* src, size_t rows, size_t channels, uint64_t* dst) { pack(src, rows, channels, dst); }

void b1_pack_s8(const int8_t* src, size_t rows, size_t channels, uint64_t* dst) { pack(src, rows, channels, dst); }

LOWBIT_POPCNT_CLONES void b1_gemm(size_t m, size_t n, size_t kw, const uint64_t* a, size_t lda, const uint64_t* b,
                                  size_t ldb, int32_t kbits, int32_t* c, size_t ldc) {
  for (size_t i = 0; i < m; ++i) {
    const uint64_t* ai = a + i * lda;
    for (size_t j = 0; j < n; ++j) {
      const uint64_t* bj = b + j * ldb;
      int32_t differ = 0;
      for (size_t w = 0; w < kw; ++w) differ += __builtin_popcountll(ai[w] ^ bj[w]);
      c[i * ldc + j] = kbits - 2 * differ;
    }
  }
}

namespace {
// 256 pixels as four words, for the shared bit-sliced counter.
struct Words4 {
  struct T {
    uint64_t w[4];
  };
  static T zero() { return T{{0, 0, 0, 0}}; }
  static T load(const uint8_t* p) {
    T v;
    std::memcpy(v.w, p, sizeof v.w);
    return v;
  }
  template <typename F>
  static T map(T a, T b, F f) {
    return T{{f(a.w[0], b.w[0]), f(a.w[1], b.w[1]), f(a.w[2], b.w[2]), f(a.w[3], b.w[3])}};
  }
  static T xor_(T a, T b) {
    return map(a, b, [](uint64_t x, uint64_t y) { return x ^ y; });
  }
  static T and_(T a, T b) {
    return map(a, b, [](uint64_t x, uint64_t y) { return x & y; });
  }
  static T or_(T a, T b) {
    return map(a, b, [](uint64_t x, uint64_t y) { return x | y; });
  }
};

// Byte b spread to one bit per byte: byte i of spread(b) is bit i of b.
struct SpreadTable {
  uint64_t v[256];
  constexpr SpreadTable() : v() {
    for (int b = 0; b < 256; ++b)
      for (int i = 0; i < 8; ++i) v[b] |= static_cast<uint64_t>((b >> i) & 1) << (8 * i);
  }
};
constexpr SpreadTable kSpread;
}  // namespace

void b1_mst_channel(const uint64_t* rows, const uint32_t* entries, size_t n, const int32_t* parent, int32_t sign,
                    int32_t base, int32_t shift, int32_t* y) {
  Words4::T planes[mst_count::kMaxPlanes];
  const size_t used = mst_count::count_rows<Words4>(reinterpret_cast<const uint8_t*>(rows), entries, n, planes);
  int32_t count[kMstTile] = {};
  // Eight planes at a time: 8 pixels' counts build up as bytes of one word, top plane first.
  for (size_t first = 0; first < used; first += 8) {
    const size_t last = used < first + 8 ? used : first + 8;
    for (size_t b = 0; b < kMstTile / 8; ++b) {
      uint64_t bytes = 0;
      for (size_t l = last; l-- > first;)
        bytes = (bytes << 1) + kSpread.v[(planes[l].w[b / 8] >> (8 * (b % 8))) & 0xff];
      for (size_t i = 0; i < 8; ++i) count[8 * b + i] += static_cast<int32_t>((bytes >> (8 * i)) & 0xff) << first;
    }
  }
  for (size_t p = 0; p < kMstTile; ++p) y[p] = base - (count[p] << shift) + (sign != 0 ? sign * parent[p] : 0);
}

}  // namespace lowbit::scalar
