// ptq_ops.cc: N-API entry points of the converter's weight rounding (lowbit/ptq.h). Synchronous:
// the converter calls them on its worker thread.
#include "ptq_ops.h"

#include <string>

#include "lowbit/ptq.h"
#include "napi_args.h"

namespace lowbit::js {
namespace {

// A Float32Array argument of exactly `count` values.
ArrayArg<float> floats(const Napi::CallbackInfo& info, size_t index, const char* name, size_t count) {
  auto a = typed_array<float>(info[index], napi_float32_array, name);
  if (a.length != count)
    throw_error(info.Env(), ErrorKind::Shape,
                std::string(name) + ": expected " + std::to_string(count) + " values, got " + std::to_string(a.length));
  return a;
}

// gramAccumulate(h: Float32Array k*k, x: Float32Array rows*k, rows, k): h += x^T x
Napi::Value GramAccumulate(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const size_t rows = uint_arg(info[2], "rows"), k = uint_arg(info[3], "k");
    auto h = floats(info, 0, "h", size_product(info.Env(), {k, k}, "k x k overflows"));
    auto x = floats(info, 1, "x", size_product(info.Env(), {rows, k}, "rows x k overflows"));
    gram_accumulate(x.data, rows, k, h.data);
    return info.Env().Undefined();
  });
}

// cholesky(a: Float32Array k*k, k) -> whether it is positive definite; a becomes L (lower triangle)
Napi::Value Cholesky(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const size_t k = uint_arg(info[1], "k");
    auto a = floats(info, 0, "a", size_product(info.Env(), {k, k}, "k x k overflows"));
    return Napi::Boolean::New(info.Env(), cholesky_lower(a.data, k));
  });
}

size_t qmax_arg(const Napi::CallbackInfo& info, size_t index) {
  const size_t qmax = uint_arg(info[index], "qmax");
  if (qmax < 1 || qmax > 127) throw_error(info.Env(), ErrorKind::Range, "qmax: expected an integer in [1, 127]");
  return qmax;
}

double damp_arg(const Napi::CallbackInfo& info, size_t index) {
  if (!info[index].IsNumber()) throw_error(info.Env(), ErrorKind::Type, "damp: expected a number");
  const double damp = info[index].As<Napi::Number>().DoubleValue();
  if (!(damp >= 0 && damp < 1e6)) throw_error(info.Env(), ErrorKind::Range, "damp: expected a number >= 0");
  return damp;
}

// compensatedRound(w: Float32Array rows*k, rows, k, scales: Float32Array rows, qmax, l: Float32Array k*k) -> Int8Array
Napi::Value CompensatedRound(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const size_t rows = uint_arg(info[1], "rows"), k = uint_arg(info[2], "k"), qmax = qmax_arg(info, 4);
    const size_t count = size_product(info.Env(), {rows, k}, "rows x k overflows");
    auto w = floats(info, 0, "w", count);
    auto scales = floats(info, 3, "scales", rows);
    auto l = floats(info, 5, "l", size_product(info.Env(), {k, k}, "k x k overflows"));
    auto out = Napi::Int8Array::New(info.Env(), count);
    compensated_round(w.data, rows, k, scales.data, static_cast<int>(qmax), l.data, out.Data());
    return out;
  });
}

// gptqRound(h: Float32Array k*k, k, w: Float32Array rows*k, rows, scales, qmax, damp, actOrder) -> Int8Array | null
Napi::Value GptqRound(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const size_t k = uint_arg(info[1], "k"), rows = uint_arg(info[3], "rows"), qmax = qmax_arg(info, 5);
    auto h = floats(info, 0, "h", size_product(info.Env(), {k, k}, "k x k overflows"));
    const size_t count = size_product(info.Env(), {rows, k}, "rows x k overflows");
    auto w = floats(info, 2, "w", count);
    auto scales = floats(info, 4, "scales", rows);
    const double damp = damp_arg(info, 6);
    auto out = Napi::Int8Array::New(info.Env(), count);
    const bool ok = gptq_round(h.data, k, w.data, rows, scales.data, static_cast<int>(qmax), static_cast<float>(damp),
                               info[7].IsBoolean() && info[7].As<Napi::Boolean>().Value(), out.Data());
    return ok ? Napi::Value(out) : info.Env().Null();
  });
}

// gptqFactor(h: Float32Array k*k, k, damp, actOrder) -> { l: Float32Array k*k, perm: Uint32Array k } | null
Napi::Value GptqFactor(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const size_t k = uint_arg(info[1], "k");
    const size_t kk = size_product(env, {k, k}, "k x k overflows");
    auto h = floats(info, 0, "h", kk);
    const double damp = damp_arg(info, 2);
    auto l = Napi::Float32Array::New(env, kk);
    auto perm = Napi::Uint32Array::New(env, k);
    if (k > UINT32_MAX ||
        !gptq_factor(h.data, k, static_cast<float>(damp), info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value(),
                     l.Data(), perm.Data()))
      return env.Null();
    auto out = Napi::Object::New(env);
    out.Set("l", l);
    out.Set("perm", perm);
    return out;
  });
}

// gptqRoundFactored(l: Float32Array k*k, perm: Uint32Array k, k, w: Float32Array rows*k, rows, scales, qmax) ->
// Int8Array
Napi::Value GptqRoundFactored(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const size_t k = uint_arg(info[2], "k"), rows = uint_arg(info[4], "rows"), qmax = qmax_arg(info, 6);
    auto l = floats(info, 0, "l", size_product(env, {k, k}, "k x k overflows"));
    auto perm = typed_array<uint32_t>(info[1], napi_uint32_array, "perm");
    if (perm.length != k) throw_error(env, ErrorKind::Shape, "perm: expected " + std::to_string(k) + " values");
    std::vector<bool> seen(k, false);
    for (size_t a = 0; a < k; ++a) {
      if (perm.data[a] >= k || seen[perm.data[a]])
        throw_error(env, ErrorKind::Range, "perm: expected a permutation of 0 .. k - 1");
      seen[perm.data[a]] = true;
    }
    const size_t count = size_product(env, {rows, k}, "rows x k overflows");
    auto w = floats(info, 3, "w", count);
    auto scales = floats(info, 5, "scales", rows);
    auto out = Napi::Int8Array::New(env, count);
    gptq_round_factored(l.data, perm.data, k, w.data, rows, scales.data, static_cast<int>(qmax), out.Data());
    return out;
  });
}

// referenceConv(x: Float32Array, [n, c, h, w], weight: Float32Array, [oc, c / groups, kh, kw],
//   bias: Float32Array | null, [stride h, w], [dilation h, w], [pads top, left, bottom, right], groups)
//   -> Float32Array [n, oc, oh, ow]: the converter's float64-accumulating reference conv
Napi::Value ReferenceConv(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const auto xd = uint_array(info[1], "xDims", 4), wd = uint_array(info[3], "weightDims", 4);
    const auto stride = uint_array(info[5], "stride", 2), dil = uint_array(info[6], "dilation", 2);
    const auto pads = uint_array(info[7], "pads", 4);
    RefConvShape s{xd[0],     xd[1],     xd[2],  xd[3],  wd[0],   wd[2],   wd[3],   uint_arg(info[8], "groups"),
                   stride[0], stride[1], dil[0], dil[1], pads[0], pads[1], pads[2], pads[3]};
    if (s.groups == 0 || wd[1] == 0 ||
        size_product(env, {wd[1], s.groups}, "weight channels x groups overflows") != s.c)
      throw_error(env, ErrorKind::Shape,
                  "weightDims: " + std::to_string(wd[1]) + " input channels per group x " + std::to_string(s.groups) +
                      " groups do not make the input's " + std::to_string(s.c));
    const auto [oh, ow] = reference_conv_output(s);
    auto x = floats(info, 0, "x", size_product(env, {xd[0], xd[1], xd[2], xd[3]}, "xDims overflow"));
    auto w = floats(info, 2, "weight", size_product(env, {wd[0], wd[1], wd[2], wd[3]}, "weightDims overflow"));
    const float* bias = nullptr;
    if (!info[4].IsNull() && !info[4].IsUndefined()) bias = floats(info, 4, "bias", s.oc).data;
    auto out = Napi::Float32Array::New(env, size_product(env, {s.n, s.oc, oh, ow}, "output overflows"));
    reference_conv(s, x.data, w.data, bias, out.Data());
    return out;
  });
}

}  // namespace

void init_ptq_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("gramAccumulate", Napi::Function::New(env, GramAccumulate, "gramAccumulate"));
  exports.Set("cholesky", Napi::Function::New(env, Cholesky, "cholesky"));
  exports.Set("compensatedRound", Napi::Function::New(env, CompensatedRound, "compensatedRound"));
  exports.Set("gptqFactor", Napi::Function::New(env, GptqFactor, "gptqFactor"));
  exports.Set("gptqRoundFactored", Napi::Function::New(env, GptqRoundFactored, "gptqRoundFactored"));
  exports.Set("referenceConv", Napi::Function::New(env, ReferenceConv, "referenceConv"));
  exports.Set("gptqRound", Napi::Function::New(env, GptqRound, "gptqRound"));
}

}  // namespace lowbit::js
