// mst_count.h: the bit-sliced row counter of the MST channel kernels, written once for every ISA.
// Each ISA file instantiates it with its own 256-bit vector: a struct Ops with a type T and
// static zero(), load(const uint8_t*), xor_, and_, or_.
//
// The count of each of the 256 pixels stays spread over bit planes (plane l holds bit l of every
// pixel's count), so adding a row is bitwise work only. Rows go in blocks of 16 through a
// Harley-Seal carry-save tree: 15 full adders of 5 ops each, about 5 ops per row for 256 pixels,
// the same budget the channel-packed XOR-popcount kernel spends per 256 weight bits. Integers appear
// only once per channel, when the planes are converted (in the ISA file).
#pragma once
#include <cstddef>
#include <cstdint>

namespace lowbit::mst_count {

// n < 2^32 rows need at most 4 + 28 planes.
constexpr size_t kMaxPlanes = 32;

// The planes count_rows writes for n rows: ones, twos, fours, eights, then the count of sixteens.
inline size_t planes_for(size_t n) {
  size_t high = 0;
  for (size_t v = n >> 4; v != 0; v >>= 1) ++high;
  return 4 + high;
}

// Full adder on every bit: sum + a + b = 2 * carry + sum'.
template <class O>
inline void full_add(typename O::T& carry, typename O::T& sum, typename O::T a, typename O::T b) {
  const typename O::T u = O::xor_(sum, a);
  carry = O::or_(O::and_(sum, a), O::and_(u, b));
  sum = O::xor_(u, b);
}

// Adds one bit per pixel to the binary counter held in planes[0, count).
template <class O>
inline void add_bit(typename O::T* planes, size_t count, typename O::T carry) {
  for (size_t l = 0; l < count; ++l) {
    const typename O::T p = planes[l];
    planes[l] = O::xor_(p, carry);
    carry = O::and_(p, carry);
  }
}

// Counts, per pixel, the set bits of the n rows at rows + entries[i]: afterwards bit p of planes[l]
// is bit l of pixel p's count. Returns the number of planes written (at least 4); the count never
// carries out of them, since n < 16 * 2^(planes - 4).
template <class O>
size_t count_rows(const uint8_t* rows, const uint32_t* entries, size_t n, typename O::T* planes) {
  using T = typename O::T;
  auto row = [&](size_t i) { return O::load(rows + entries[i]); };
  const size_t high = planes_for(n) - 4;  // planes of the count of sixteens
  T* sixteens_count = planes + 4;
  for (size_t l = 0; l < high; ++l) sixteens_count[l] = O::zero();
  T ones = O::zero(), twos = O::zero(), fours = O::zero(), eights = O::zero();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    T twos_a, twos_b, fours_a, fours_b, eights_a, eights_b, sixteens;
    full_add<O>(twos_a, ones, row(i), row(i + 1));
    full_add<O>(twos_b, ones, row(i + 2), row(i + 3));
    full_add<O>(fours_a, twos, twos_a, twos_b);
    full_add<O>(twos_a, ones, row(i + 4), row(i + 5));
    full_add<O>(twos_b, ones, row(i + 6), row(i + 7));
    full_add<O>(fours_b, twos, twos_a, twos_b);
    full_add<O>(eights_a, fours, fours_a, fours_b);
    full_add<O>(twos_a, ones, row(i + 8), row(i + 9));
    full_add<O>(twos_b, ones, row(i + 10), row(i + 11));
    full_add<O>(fours_a, twos, twos_a, twos_b);
    full_add<O>(twos_a, ones, row(i + 12), row(i + 13));
    full_add<O>(twos_b, ones, row(i + 14), row(i + 15));
    full_add<O>(fours_b, twos, twos_a, twos_b);
    full_add<O>(eights_b, fours, fours_a, fours_b);
    full_add<O>(sixteens, eights, eights_a, eights_b);
    add_bit<O>(sixteens_count, high, sixteens);
  }
  planes[0] = ones, planes[1] = twos, planes[2] = fours, planes[3] = eights;
  for (; i < n; ++i) add_bit<O>(planes, 4 + high, row(i));
  return 4 + high;
}

}  // namespace lowbit::mst_count
