// checks.h: argument checks shared by the integer operators.
#pragma once
#include <cstdint>
#include <string>

#include "lowbit/error.h"

namespace lowbit {

// An 8-bit output clamp: signed ([-128, 127]: s8, or s4 as [-8, 7]) or unsigned ([0, 255]: u8, u4).
inline void check_8bit_clamp(int32_t lo, int32_t hi) {
  const bool is_signed = lo >= -128 && hi <= 127, is_unsigned = lo >= 0 && hi <= 255;
  if (lo > hi || !(is_signed || is_unsigned))
    fail(ErrorKind::Range, "clamp [" + std::to_string(lo) + ", " + std::to_string(hi) +
                               "] must have lo <= hi, both in [-128, 127] or both in [0, 255]");
}

}  // namespace lowbit
