// integer.h: the dyadic (integer-only) numeric conventions shared by the integer operators.
// Every real rescale M = S_in * S_w / S_out runs as an integer multiply and a rounding right shift:
//   M ~ m / 2^e, m a positive int32 in [2^30, 2^31 - 1], e in [0, 62].
#pragma once
#include <cstdint>

namespace lowbit {

struct Dyadic {
  int32_t multiplier;  // m
  int32_t shift;       // e
};

// The dyadic pair of a real multiplier M in [2^-32, 2^31): with M = f * 2^p, f in [0.5, 1),
// m = round_half_up(f * 2^31) (halved, with e - 1, when it reaches 2^31) and e = 31 - p.
// Relative error |m / 2^e - M| / M <= 2^-31. Throws Error(Quantization) for M <= 0, NaN, +-Inf
// or M outside that range (e would leave [0, 62]).
Dyadic to_dyadic(double multiplier);

}  // namespace lowbit
