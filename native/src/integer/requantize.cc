// requantize.cc: int32 accumulators -> 8-bit values by per-channel dyadic rescale. The vector
// kernel is the one the binary s8 epilogue uses (same formula, bit-identical on every ISA).
#include <algorithm>
#include <string>

#include "common/checked_math.h"
#include "cpu/dispatch.h"
#include "integer/checks.h"
#include "lowbit/error.h"
#include "lowbit/quantize.h"
#include "runtime/thread_pool.h"

namespace lowbit {

void requantize(const int32_t* acc, size_t rows, size_t channels, const int32_t* mult, const uint8_t* shift,
                const int32_t* bias, int32_t lo, int32_t hi, uint8_t* out) {
  check_8bit_clamp(lo, hi);
  for (size_t c = 0; c < channels; ++c) {
    if (mult[c] == INT32_MIN)
      fail(ErrorKind::Range, "multiplier[" + std::to_string(c) + "] must be in [-(2^31 - 1), 2^31 - 1], got -2^31");
    if (shift[c] > 62)
      fail(ErrorKind::Range, "shift[" + std::to_string(c) + "] must be in [0, 62], got " + std::to_string(shift[c]));
  }
  checked_mul(rows, channels, "requantize size");
  const OutputS8Fn rescale = output_kernels().output_s8;
  const RequantizeParams p{mult, shift, bias, lo, hi};
  // Memory bound: blocks of about 64 Ki values per task.
  const size_t block = std::max<size_t>(1, (size_t{1} << 16) / std::max<size_t>(channels, 1));
  parallel_for((rows + block - 1) / block, [&](size_t b) {
    const size_t r0 = b * block, r1 = std::min(rows, r0 + block);
    rescale(r1 - r0, channels, acc + r0 * channels, channels, p, reinterpret_cast<int8_t*>(out + r0 * channels),
            channels);
  });
}

}  // namespace lowbit
