// weights.h: building packed binary weights, shared by packing from values and by loading an MST
// layer file (which rebuilds the bits from their compressed form).
#pragma once
#include <memory>

#include "lowbit/binary.h"

namespace lowbit {

// Validated, zeroed packed weights of the given geometry (bits and tap sums to be filled).
// Throws Error(Shape / Range) for empty dimensions, out_c not a multiple of groups, or K > 2^24.
std::shared_ptr<BinaryConv2dWeights> empty_binary_weights(size_t out_c, size_t kh, size_t kw, size_t icg,
                                                          size_t groups);

// tap_sums from the packed bits: per tap and output channel, the sum of that tap's +-1 weights.
void compute_tap_sums(BinaryConv2dWeights& w);

}  // namespace lowbit
