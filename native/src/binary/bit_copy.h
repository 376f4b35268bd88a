// bit_copy.h: copy or count a run of bits of packed rows at arbitrary bit offsets (im2col and
// weight packing concatenate taps densely, so C need not be a multiple of 64).
#pragma once
#include <cstddef>
#include <cstdint>

namespace lowbit {

// ORs `count` bits of src starting at bit `src_bit` into dst starting at bit `dst_bit`.
// dst's target bits must be 0. Reads only the src words that hold the copied bits.
inline void or_bits(const uint64_t* src, size_t src_bit, uint64_t* dst, size_t dst_bit, size_t count) {
  while (count > 0) {
    const size_t s = src_bit % 64, d = dst_bit % 64;
    size_t n = 64 - (s > d ? s : d);  // bits that stay inside one src word and one dst word
    if (n > count) n = count;
    uint64_t v = src[src_bit / 64] >> s;
    if (n < 64) v &= (uint64_t{1} << n) - 1;
    dst[dst_bit / 64] |= v << d;
    src_bit += n;
    dst_bit += n;
    count -= n;
  }
}

// Number of 1 bits among the `count` bits of row starting at bit `first`.
inline int32_t count_bits(const uint64_t* row, size_t first, size_t count) {
  int32_t n = 0;
  while (count > 0) {
    const size_t s = first % 64;
    const size_t take = count < 64 - s ? count : 64 - s;
    uint64_t v = row[first / 64] >> s;
    if (take < 64) v &= (uint64_t{1} << take) - 1;
    n += __builtin_popcountll(v);
    first += take;
    count -= take;
  }
  return n;
}

}  // namespace lowbit
