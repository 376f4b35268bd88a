// binary_ops.h: registers the binary operators (bitpack, packed weights, bconv2d, bdense,
// bmaxpool2d; sync and async) on the addon's exports.
#pragma once
#include <napi.h>

namespace lowbit::js {
void init_binary_ops(Napi::Env env, Napi::Object exports);
}
