// quantize.h: the per-value rules of quantize_f32 / dequantize_8bit (lowbit/quantize.h), shared with
// the model executor's layout-changing boundary operators so every path rounds identically.
#pragma once
#include <cmath>
#include <cstdint>

namespace lowbit {

// q = clamp(round_half_even(x / scale) + zero_point, lo, hi); NaN -> zero_point; the low byte.
inline uint8_t quantize_value(float x, float scale, int32_t zero_point, int32_t lo, int32_t hi) {
  float v = x / scale;
  if (std::isnan(v)) v = 0;
  // Beyond +-512 every value saturates, however it rounds (|zero_point| <= 255). Inside, adding and
  // subtracting 1.5 * 2^23 rounds half to even in the default rounding mode, like nearbyint but
  // inline (the float is exact there, and the compiler may not fold the pair without -ffast-math).
  v = v < -512.0f ? -512.0f : (v > 512.0f ? 512.0f : v);
  const int32_t q = static_cast<int32_t>((v + 12582912.0f) - 12582912.0f) + zero_point;
  return static_cast<uint8_t>(q < lo ? lo : (q > hi ? hi : q));
}

// x = (q - zero_point) * scale, q read as int8 (is_signed) or uint8.
inline float dequantize_value(uint8_t q, bool is_signed, float scale, int32_t zero_point) {
  const int32_t v = is_signed ? static_cast<int8_t>(q) : q;
  return static_cast<float>(v - zero_point) * scale;
}

}  // namespace lowbit
