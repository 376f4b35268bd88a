// quantize.h: the per-value rules of quantize_f32 / dequantize_8bit (lowbit/integer.h), shared with
// the model executor's layout-changing boundary operators so every path rounds identically.
#pragma once
#include <cmath>
#include <cstdint>

namespace lowbit {

// q = clamp(round_half_even(x / scale) + zero_point, lo, hi); NaN -> zero_point; the low byte.
inline uint8_t quantize_value(float x, float scale, int32_t zero_point, int32_t lo, int32_t hi) {
  const float v = x / scale;
  // The default rounding mode rounds half to even; comparing in double keeps +-Inf and huge
  // values out of any float -> int conversion.
  const double r = std::isnan(v) ? zero_point : static_cast<double>(std::nearbyint(v)) + zero_point;
  const int32_t q = r < lo ? lo : (r > hi ? hi : static_cast<int32_t>(r));
  return static_cast<uint8_t>(q);
}

// x = (q - zero_point) * scale, q read as int8 (is_signed) or uint8.
inline float dequantize_value(uint8_t q, bool is_signed, float scale, int32_t zero_point) {
  const int32_t v = is_signed ? static_cast<int8_t>(q) : q;
  return static_cast<float>(v - zero_point) * scale;
}

}  // namespace lowbit
