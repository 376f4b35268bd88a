// bit_copy.h: copy a run of bits between packed rows at arbitrary bit offsets (im2col and
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

}  // namespace lowbit
