// quantize.cc: float <-> 8-bit at network boundaries (per tensor). Plain loops: they touch each
// input value once, and the same code runs on every ISA, so results never depend on the CPU.
#include "integer/quantize.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "integer/checks.h"
#include "lowbit/error.h"
#include "lowbit/quantize.h"
#include "runtime/thread_pool.h"

namespace lowbit {
namespace {

void check_scale(float scale) {
  if (!std::isfinite(scale) || !(scale > 0))
    fail(ErrorKind::Quantization, "scale must be a finite number > 0, got " + std::to_string(scale));
}

// Blocks of 64 Ki values over the pool.
template <typename F>
void for_blocks(size_t n, F f) {
  constexpr size_t kBlock = size_t{1} << 16;
  parallel_for((n + kBlock - 1) / kBlock, [&](size_t b) { f(b * kBlock, std::min(n, (b + 1) * kBlock)); });
}

}  // namespace

void quantize_f32(const float* x, size_t n, float scale, int32_t zero_point, int32_t lo, int32_t hi, uint8_t* out) {
  check_scale(scale);
  check_8bit_clamp(lo, hi);
  if (zero_point < lo || zero_point > hi)
    fail(ErrorKind::Range, "zero point " + std::to_string(zero_point) + " must lie in the clamp [" +
                               std::to_string(lo) + ", " + std::to_string(hi) + "]");
  for_blocks(n, [&](size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; ++i) out[i] = quantize_value(x[i], scale, zero_point, lo, hi);
  });
}

void dequantize_8bit(const uint8_t* q, size_t n, bool is_signed, float scale, int32_t zero_point, float* out) {
  check_scale(scale);
  for_blocks(n, [&](size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; ++i) out[i] = dequantize_value(q[i], is_signed, scale, zero_point);
  });
}

}  // namespace lowbit
