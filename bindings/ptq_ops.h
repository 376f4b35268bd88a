// ptq_ops.h: registers the post-training rounding entry points (lowbit/ptq.h) on the addon's exports.
#pragma once
#include <napi.h>

namespace lowbit::js {
void init_ptq_ops(Napi::Env env, Napi::Object exports);
}
