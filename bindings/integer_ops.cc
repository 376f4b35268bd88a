// integer_ops.cc: N-API entry points of the dyadic integer family.
#include "integer_ops.h"

#include "convert.h"
#include "lowbit/integer.h"

namespace lowbit::js {
namespace {

// toDyadic(multiplier) -> [m, e]: the C++ definition, for checking the TypeScript twin against it.
Napi::Value ToDyadic(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (!info[0].IsNumber()) throw_error(info.Env(), ErrorKind::Type, "multiplier: expected a number");
    const Dyadic d = to_dyadic(info[0].As<Napi::Number>().DoubleValue());
    Napi::Array out = Napi::Array::New(info.Env(), 2);
    out.Set(0u, Napi::Number::New(info.Env(), d.multiplier));
    out.Set(1u, Napi::Number::New(info.Env(), d.shift));
    return out;
  });
}

}  // namespace

void init_integer_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("toDyadic", Napi::Function::New(env, ToDyadic, "toDyadic"));
}

}  // namespace lowbit::js
