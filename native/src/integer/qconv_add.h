// qconv_add.h: qconv2d with the residual add that reads its output fused into the requantizer
// (epilogue/kernels.h output_s8_add): the graph's load-time fusion of a qconv2d and its qadd
// (graph/fusion.cc). Private: the terms are the element-wise kernels' 32-bit form.
#pragma once
#include "epilogue/kernels.h"
#include "lowbit/qconv.h"

namespace lowbit {

// Throws Error(Range) where `add` breaks output_s8_add's contract for a conv output of that type.
void validate_residual_add(const ResidualAddParams& add, bool out_signed);

// qconv2d (8-bit output) whose every output byte is then added to the residual byte at the same
// offset: add.residual holds N*OH*OW x out_c bytes (add.ldr is ignored), exactly qadd's operands.
void qconv2d_add(const uint8_t* input, const Conv2dShape& s, const QConv2dWeights& w, const Conv2dParams& p,
                 const QInput& in, const QEpilogue& e, const ResidualAddParams& add, void* output);

}  // namespace lowbit
