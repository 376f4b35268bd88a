// model_ops.h: N-API entry points of whole models (.lowbit files): load, describe, plan, run
// (sync and async), profile and dispose.
#pragma once
#include <napi.h>

namespace lowbit::js {
void init_model_ops(Napi::Env env, Napi::Object exports);
}
