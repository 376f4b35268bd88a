// integer_ops.h: registers the dyadic integer entry points on the addon's exports.
#pragma once
#include <napi.h>

namespace lowbit::js {
void init_integer_ops(Napi::Env env, Napi::Object exports);
}
