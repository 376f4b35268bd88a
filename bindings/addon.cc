// addon.cc: module init only: one exports.Set per entry point.
#include <napi.h>

#include "binary_ops.h"
#include "handle.h"
#include "lowbit/runtime.h"
#include "model_ops.h"
#include "mst_ops.h"
#include "napi_args.h"
#include "ptq_ops.h"
#include "qconv_ops.h"
#include "qops.h"
#include "quantize_ops.h"

namespace lowbit::js {
namespace {

Napi::Value Isa(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value { return Napi::String::New(info.Env(), isa_name(active_isa())); });
}

Napi::Value SupportedIsas(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto isas = supported_isas();
    Napi::Array out = Napi::Array::New(info.Env(), isas.size());
    for (uint32_t i = 0; i < isas.size(); ++i) out.Set(i, Napi::String::New(info.Env(), isa_name(isas[i])));
    return out;
  });
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (!info[0].IsString()) throw_error(info.Env(), ErrorKind::Type, "isa: expected a string");
    set_isa(info[0].As<Napi::String>().Utf8Value());
    return info.Env().Undefined();
  });
}

Napi::Value Threads(const Napi::CallbackInfo& info) {
  return guarded(info,
                 [&]() -> Napi::Value { return Napi::Number::New(info.Env(), static_cast<double>(num_threads())); });
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    set_num_threads(uint_arg(info[0], "threads"));
    return info.Env().Undefined();
  });
}

Napi::Value UsableCpus(const Napi::CallbackInfo& info) {
  return guarded(info,
                 [&]() -> Napi::Value { return Napi::Number::New(info.Env(), static_cast<double>(usable_cpus())); });
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  try {
    // Resolve LOWBIT_ISA and LOWBIT_THREADS now, so a bad value fails the require() with a clear error.
    active_isa();
    num_threads();
  } catch (const Error& e) {
    throw_error(env, e.kind(), e.what());
  }
  env.SetInstanceData<InstanceData>(new InstanceData{});
  exports.Set("isa", Napi::Function::New(env, Isa, "isa"));
  exports.Set("supportedIsas", Napi::Function::New(env, SupportedIsas, "supportedIsas"));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa, "setIsa"));
  exports.Set("threads", Napi::Function::New(env, Threads, "threads"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("usableCpus", Napi::Function::New(env, UsableCpus, "usableCpus"));
  init_binary_ops(env, exports);
  init_mst_ops(env, exports);
  init_quantize_ops(env, exports);
  init_qops(env, exports);
  init_qconv_ops(env, exports);
  init_model_ops(env, exports);
  init_ptq_ops(env, exports);
  return exports;
}

}  // namespace lowbit::js

static Napi::Object InitLowbit(Napi::Env env, Napi::Object exports) { return lowbit::js::Init(env, exports); }

NODE_API_MODULE(lowbit, InitLowbit)
