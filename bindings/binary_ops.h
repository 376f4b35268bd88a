// binary_ops.h: registers the binary operators (bitpack, packed weights, bconv2d, bdense,
// bmaxpool2d; sync and async) on the addon's exports.
#pragma once
#include <napi.h>

#include <memory>

#include "lowbit/binary.h"

namespace lowbit::js {
void init_binary_ops(Napi::Env env, Napi::Object exports);

// Packed binary weights as JS holds them, an opaque handle (also taken and made by mst_ops.cc).
std::shared_ptr<BinaryConv2dWeights> binary_weights_arg(Napi::Value value);
// The handle of packed weights, with their size in bytes as its `bytes` property.
Napi::Object binary_weights_value(Napi::Env env, std::shared_ptr<BinaryConv2dWeights> weights);
}  // namespace lowbit::js
