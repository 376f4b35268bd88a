// quantize.cc: float <-> 8-bit at network boundaries (per tensor), through the element-wise kernels
// of the active ISA, which give the same bits on every ISA (eltwise/kernels.h).
#include "lowbit/quantize.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "cpu/dispatch.h"
#include "integer/checks.h"
#include "lowbit/error.h"
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
  const QuantizeF32Fn quantize = eltwise_kernels().quantize_f32;
  for_blocks(n, [&](size_t i0, size_t i1) { quantize(i1 - i0, x + i0, scale, zero_point, lo, hi, out + i0); });
}

void dequantize_8bit(const uint8_t* q, size_t n, bool is_signed, float scale, int32_t zero_point, float* out) {
  check_scale(scale);
  const Dequantize8Fn dequantize = eltwise_kernels().dequantize8;
  const UnsignedReading in = unsigned_reading(is_signed, zero_point);
  for_blocks(n, [&](size_t i0, size_t i1) { dequantize(i1 - i0, q + i0, in.mask, in.zero, scale, out + i0); });
}

}  // namespace lowbit
