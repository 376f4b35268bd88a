// kernels.h: the contracts of the binary (b1) kernel family. Every ISA implements the same
// functions in its own namespace (lowbit::scalar, lowbit::avx2, lowbit::neon); lowbit::ref holds
// the obviously-correct versions the tests compare against. Their output transforms (f32, s8,
// b1) are a family of their own: epilogue/kernels.h.
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
using B1GemmFn = void (*)(size_t m, size_t n, size_t kw, const uint64_t* a, size_t lda, const uint64_t* b, size_t ldb,
                          int32_t kbits, int32_t* c, size_t ldc);

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
  B1MstChannelFn mst_channel;
};

#define LOWBIT_DECLARE_BINARY_KERNELS(ns)                                                                           \
  namespace ns {                                                                                                    \
  void b1_pack_f32(const float* src, size_t rows, size_t channels, uint64_t* dst);                                  \
  void b1_pack_s8(const int8_t* src, size_t rows, size_t channels, uint64_t* dst);                                  \
  void b1_gemm(size_t m, size_t n, size_t kw, const uint64_t* a, size_t lda, const uint64_t* b, size_t ldb,         \
               int32_t kbits, int32_t* c, size_t ldc);                                                              \
  void b1_mst_channel(const uint64_t* rows, const uint32_t* entries, size_t n, const int32_t* parent, int32_t sign, \
                      int32_t base, int32_t shift, int32_t* y);                                                     \
  inline constexpr BinaryKernels kBinaryKernels = {b1_pack_f32, b1_pack_s8, b1_gemm, b1_mst_channel};               \
  }

LOWBIT_DECLARE_BINARY_KERNELS(ref)
LOWBIT_DECLARE_BINARY_KERNELS(scalar)
#if defined(__x86_64__)
LOWBIT_DECLARE_BINARY_KERNELS(avx2)
#endif
#if defined(__aarch64__)
LOWBIT_DECLARE_BINARY_KERNELS(neon)
#endif

}  // namespace lowbit
