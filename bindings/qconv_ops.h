// qconv_ops.h: N-API entry points of the integer convolution and dense layers.
#pragma once
#include <napi.h>

namespace lowbit::js {
void init_qconv_ops(Napi::Env env, Napi::Object exports);
}
