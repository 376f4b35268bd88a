// kernels_ref.cc: reference binary kernels, written bit by bit to be obviously correct.
// They define the results; every ISA path must match them exactly. Used by tests only.
#include "binary/kernels.h"
#include "common/checked_math.h"

namespace lowbit::ref {

namespace {
template <typename T>
void pack(const T* src, size_t rows, size_t channels, uint64_t* dst) {
  const size_t words = words_for_bits(channels);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t w = 0; w < words; ++w) dst[r * words + w] = 0;
    for (size_t c = 0; c < channels; ++c) {
      bool negative = src[r * channels + c] < T(0);  // false for 0, -0 and NaN: sign(0) = +1
      if (negative) dst[r * words + c / 64] |= uint64_t{1} << (c % 64);
    }
  }
}

int bit(const uint64_t* v, size_t i) { return static_cast<int>((v[i / 64] >> (i % 64)) & 1); }
}  // namespace

void b1_pack_f32(const float* src, size_t rows, size_t channels, uint64_t* dst) { pack(src, rows, channels, dst); }

void b1_pack_s8(const int8_t* src, size_t rows, size_t channels, uint64_t* dst) { pack(src, rows, channels, dst); }

void b1_gemm(size_t m, size_t n, size_t kw, const uint64_t* a, size_t lda, const uint64_t* b, size_t ldb, int32_t kbits,
             int32_t* c, size_t ldc) {
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) {
      int32_t differ = 0;
      for (size_t k = 0; k < kw * 64; ++k) differ += bit(a + i * lda, k) ^ bit(b + j * ldb, k);
      c[i * ldc + j] = kbits - 2 * differ;
    }
}

void b1_mst_channel(const uint64_t* rows, const uint32_t* entries, size_t n, const int32_t* parent, int32_t sign,
                    int32_t base, int32_t shift, int32_t* y) {
  for (size_t p = 0; p < kMstTile; ++p) {
    int32_t count = 0;
    for (size_t i = 0; i < n; ++i) count += bit(rows + entries[i] / 8, p);
    y[p] = base - count * (1 << shift) + (sign != 0 ? sign * parent[p] : 0);
  }
}

}  // namespace lowbit::ref
