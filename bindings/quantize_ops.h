// quantize_ops.h: registers the quantization entry points (lowbit/quantize.h) on the addon's exports.
#pragma once
#include <napi.h>

namespace lowbit::js {
void init_quantize_ops(Napi::Env env, Napi::Object exports);
}
