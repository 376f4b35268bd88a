// qops.h: registers the integer element-wise and pooling entry points (qadd, qclamp, qmaxpool2d,
// qavgpool2d, qglobalavgpool, qconcat) on the addon's exports.
#pragma once
#include <napi.h>

namespace lowbit::js {
void init_qops(Napi::Env env, Napi::Object exports);
}
