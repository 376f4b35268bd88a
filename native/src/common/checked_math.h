// checked_math.h: size arithmetic that throws instead of wrapping, used before any allocation or loop.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "lowbit/error.h"

namespace lowbit {

inline size_t checked_mul(size_t a, size_t b, const char* what) {
  size_t r;
  if (__builtin_mul_overflow(a, b, &r)) fail(ErrorKind::Range, std::string(what) + " overflows size_t");
  return r;
}

inline size_t checked_add(size_t a, size_t b, const char* what) {
  size_t r;
  if (__builtin_add_overflow(a, b, &r)) fail(ErrorKind::Range, std::string(what) + " overflows size_t");
  return r;
}

// A size in an error message.
inline std::string num(size_t v) { return std::to_string(v); }

// Number of 64-bit words that hold `bits` bits.
inline size_t words_for_bits(size_t bits) { return bits / 64 + (bits % 64 != 0); }

}  // namespace lowbit
