// kernels.h: the contracts of the binary (b1) kernel family. Every ISA implements the same
// functions in its own namespace (lowbit::scalar, lowbit::avx2, lowbit::neon); lowbit::ref holds
// the obviously-correct versions the tests compare against.
//
// Bit convention (shared by every kernel and the TypeScript side):
//   A value v is packed as bit 1 when v < 0 and bit 0 otherwise, so sign(0) = +1 and NaN/-0 pack
//   as +1. Bits run along the channel axis, 64 per little-endian uint64 word: channel 64*w + j is
//   bit j of word w. Unused tail bits of the last word are always 0.
//   For two packed vectors of K real bits, dot(+-1) = K - 2 * popcount(a XOR b): tail bits are 0
//   in both operands, so they never count.
#pragma once
#include <cstddef>
#include <cstdint>

namespace lowbit {

// Packs `rows` rows of `channels` values each into rows * words_for_bits(channels) words.
using B1PackF32Fn = void (*)(const float* src, size_t rows, size_t channels, uint64_t* dst);
using B1PackS8Fn = void (*)(const int8_t* src, size_t rows, size_t channels, uint64_t* dst);

// Binary GEMM, A (m rows) times B (n rows), both `kw` words deep:
//   c[i * ldc + j] = kbits - 2 * sum_{w < kw} popcount(a[i * lda + w] ^ b[j * ldb + w])
// kbits is the number of real bits (the +-1 dot product length); padding bits must be 0 in both.
// A kernel reads exactly the words named above, never past them.
using B1GemmFn = void (*)(size_t m, size_t n, size_t kw, const uint64_t* a, size_t lda,
                          const uint64_t* b, size_t ldb, int32_t kbits, int32_t* c, size_t ldc);

// Output transforms: one row of n int32 dot products y (one output pixel, all its channels).
// f32:  out[c] = min(max(y[c] * scale[c] + bias[c], lo), hi): a float multiply then a float add,
//       never fused (the build uses -ffp-contract=off), so every ISA rounds the same way.
struct B1OutputF32Params {
  const float* scale;
  const float* bias;
  float lo, hi;
};
using B1OutputF32Fn = void (*)(size_t n, const int32_t* y, const B1OutputF32Params& p, float* out);

// s8 (integer only, dyadic rescale with round half up; also the requantizer of the integer family):
//   out[c] = clamp(((int64)y[c] * mult[c] + round(shift[c])) >> shift[c] + bias[c], lo, hi)
//   round(e) = e > 0 ? 1 << (e - 1) : 0; >> is an arithmetic (flooring) shift;
//   mult[c] != INT32_MIN (its sign carries a negative scale), shift[c] in [0, 62], lo <= hi both
//   in [-128, 127] (signed output) or both in [0, 255] (unsigned output): the byte written is the
//   low 8 bits of the clamped value, an int8 or a uint8.
struct B1OutputS8Params {
  const int32_t* mult;
  const uint8_t* shift;
  const int32_t* bias;
  int32_t lo, hi;
};
using B1OutputS8Fn = void (*)(size_t n, const int32_t* y, const B1OutputS8Params& p, int8_t* out);

// b1 (bitpacked, feeds the next binary layer): bit c = (y[c] < threshold[c]) XOR flip[c],
// written to words_for_bits(n) words with zero tail bits. flip[c] is 0 or 1.
struct B1OutputB1Params {
  const int32_t* threshold;
  const uint8_t* flip;
};
using B1OutputB1Fn = void (*)(size_t n, const int32_t* y, const B1OutputB1Params& p, uint64_t* out);

// One channel of an MST schedule over a tile of kMstTile output pixels (bconv2d_mst.cc). The tile's
// patches are bit-transposed: a row is one weight position for all the tile's pixels (pixel p is bit
// p % 64 of word p / 64), so a channel that differs from its parent in d positions adds d rows
// instead of K. entries[i] is the byte offset from `rows` of a row already XORed with the channel's
// weight bit there (the tile stores both polarities), a multiple of kMstRowBytes.
//   count[p] = sum_{i < n} bit p of the row at rows + entries[i]
//   y[p] = base - (count[p] << shift) + sign * parent[p]      sign in {-1, 0, 1}; parent unread if 0
// A root: base K, shift 1, sign 0 (y = K - 2 popcount). A child: base 2d, shift 2, sign +1 (or base
// 2(K - d), sign -1 for a negated parent). n < 2^31, and |y| stays far below 2^31 (K <= 2^24).
constexpr size_t kMstTile = 256;
constexpr size_t kMstRowBytes = kMstTile / 8;
using B1MstChannelFn = void (*)(const uint64_t* rows, const uint32_t* entries, size_t n, const int32_t* parent,
                                int32_t sign, int32_t base, int32_t shift, int32_t* y);

struct BinaryKernels {
  B1PackF32Fn pack_f32;
  B1PackS8Fn pack_s8;
  B1GemmFn gemm;
  B1OutputF32Fn output_f32;
  B1OutputS8Fn output_s8;
  B1OutputB1Fn output_b1;
  B1MstChannelFn mst_channel;
};

#define LOWBIT_DECLARE_BINARY_KERNELS(ns)                                                            \
  namespace ns {                                                                                   \
  void b1_pack_f32(const float* src, size_t rows, size_t channels, uint64_t* dst);                 \
  void b1_pack_s8(const int8_t* src, size_t rows, size_t channels, uint64_t* dst);                 \
  void b1_gemm(size_t m, size_t n, size_t kw, const uint64_t* a, size_t lda, const uint64_t* b,    \
               size_t ldb, int32_t kbits, int32_t* c, size_t ldc);                                 \
  void b1_output_f32(size_t n, const int32_t* y, const B1OutputF32Params& p, float* out);          \
  void b1_output_s8(size_t n, const int32_t* y, const B1OutputS8Params& p, int8_t* out);           \
  void b1_output_b1(size_t n, const int32_t* y, const B1OutputB1Params& p, uint64_t* out);         \
  void b1_mst_channel(const uint64_t* rows, const uint32_t* entries, size_t n, const int32_t* parent,  \
                      int32_t sign, int32_t base, int32_t shift, int32_t* y);                          \
  inline constexpr BinaryKernels kBinaryKernels = {b1_pack_f32,   b1_pack_s8,   b1_gemm,     \
                                                   b1_output_f32, b1_output_s8, b1_output_b1, \
                                                   b1_mst_channel};                           \
  }

LOWBIT_DECLARE_BINARY_KERNELS(ref)
LOWBIT_DECLARE_BINARY_KERNELS(scalar)
#if defined(__x86_64__)
LOWBIT_DECLARE_BINARY_KERNELS(avx2)
#endif
#if defined(__aarch64__)
LOWBIT_DECLARE_BINARY_KERNELS(neon)
#endif

// Dyadic rescale of one value, the single definition every ISA must match bit for bit.
// static: each ISA file gets its own copy, so no -mavx2 code can be linked into the scalar path.
static inline int32_t dyadic_rescale_s8(int32_t y, int32_t mult, uint8_t shift, int32_t bias, int32_t lo,
                                 int32_t hi) {
  int64_t prod = static_cast<int64_t>(y) * mult;
  int64_t round = shift > 0 ? (int64_t{1} << (shift - 1)) : 0;
  int64_t v = ((prod + round) >> shift) + bias;
  return static_cast<int32_t>(v < lo ? lo : (v > hi ? hi : v));
}

}  // namespace lowbit
