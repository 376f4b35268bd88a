// kernels_scalar.cc: portable binary kernels, word at a time; the path on CPUs without SIMD
// support and the baseline the benchmarks compare SIMD against.
#include "binary/kernels.h"
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

void b1_pack_f32(const float* src, size_t rows, size_t channels, uint64_t* dst) {
  pack(src, rows, channels, dst);
}

void b1_pack_s8(const int8_t* src, size_t rows, size_t channels, uint64_t* dst) {
  pack(src, rows, channels, dst);
}

LOWBIT_POPCNT_CLONES void b1_gemm(size_t m, size_t n, size_t kw, const uint64_t* a, size_t lda,
                                  const uint64_t* b, size_t ldb, int32_t kbits, int32_t* c, size_t ldc) {
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

void b1_output_f32(size_t n, const int32_t* y, const B1OutputF32Params& p, float* out) {
  for (size_t c = 0; c < n; ++c) {
    float v = static_cast<float>(y[c]) * p.scale[c] + p.bias[c];
    out[c] = v < p.lo ? p.lo : (v > p.hi ? p.hi : v);
  }
}

void b1_output_s8(size_t n, const int32_t* y, const B1OutputS8Params& p, int8_t* out) {
  for (size_t c = 0; c < n; ++c)
    out[c] = static_cast<int8_t>(dyadic_rescale_s8(y[c], p.mult[c], p.shift[c], p.bias[c], p.lo, p.hi));
}

void b1_output_b1(size_t n, const int32_t* y, const B1OutputB1Params& p, uint64_t* out) {
  for (size_t w = 0; w * 64 < n; ++w) {
    const size_t count = n - w * 64 < 64 ? n - w * 64 : 64;
    uint64_t word = 0;
    for (size_t j = 0; j < count; ++j) {
      const size_t c = w * 64 + j;
      word |= static_cast<uint64_t>((y[c] < p.threshold[c]) ^ p.flip[c]) << j;
    }
    out[w] = word;
  }
}

}  // namespace lowbit::scalar
