// dyadic.cc: real multiplier -> dyadic pair (m, e), the one C++ definition (lib/ops/quantize.ts holds
// the TypeScript twin; a test checks they agree bit for bit).
#include <cmath>
#include <string>

#include "lowbit/error.h"
#include "lowbit/quantize.h"

namespace lowbit {

Dyadic to_dyadic(double multiplier) {
  if (!std::isfinite(multiplier) || !(multiplier > 0))
    fail(ErrorKind::Quantization, "multiplier must be a finite number > 0, got " + std::to_string(multiplier));
  int p;
  const double f = std::frexp(multiplier, &p);  // multiplier = f * 2^p, f in [0.5, 1)
  // f * 2^31 is exact and below 2^31, so adding 0.5 is exact too: this rounds half up.
  int64_t m = static_cast<int64_t>(std::floor(std::ldexp(f, 31) + 0.5));
  int e = 31 - p;
  if (m == (int64_t{1} << 31)) {
    m >>= 1;
    --e;
  }
  if (e < 0 || e > 62)
    fail(ErrorKind::Quantization, "multiplier " + std::to_string(multiplier) +
                                      " is outside the dyadic range [2^-32, 2^31) (shift would be " +
                                      std::to_string(e) + ")");
  return {static_cast<int32_t>(m), e};
}

}  // namespace lowbit
