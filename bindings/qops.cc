// qops.cc: N-API entry points of the integer element-wise and pooling operators (lowbit/qops.h).
// Validates and converts arguments, then runs the native operator inline (sync) or on the libuv
// pool (async); async jobs own copies of their inputs, so JS may mutate or detach them at once.
#include "qops.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/qops.h"
#include "napi_args.h"

namespace lowbit::js {
namespace {

Napi::Object object_arg(Napi::Value value, const std::string& name, const char* expected) {
  if (!value.IsObject()) throw_error(value.Env(), ErrorKind::Type, name + ": expected " + expected);
  return value.As<Napi::Object>();
}

double number_value(Napi::Value v, const std::string& name) {
  if (!v.IsNumber()) throw_error(v.Env(), ErrorKind::Type, name + ": expected a number");
  return v.As<Napi::Number>().DoubleValue();
}

int32_t int_value(Napi::Value value, const std::string& name, int min, int max) {
  const double v = number_value(value, name);
  if (!(v >= min && v <= max) || v != std::floor(v))
    throw_error(value.Env(), ErrorKind::Range,
                name + ": expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  return static_cast<int32_t>(v);
}

double number_of(Napi::Object obj, const std::string& name, const char* key) {
  return number_value(obj.Get(key), name + "." + key);
}

int32_t int_of(Napi::Object obj, const std::string& name, const char* key, int min, int max) {
  return int_value(obj.Get(key), name + "." + key, min, max);
}

// {scale, zeroPoint}: the zero point is checked against the tensor's dtype by the operator.
QuantParams quant_arg(Napi::Value value, const std::string& name) {
  auto obj = object_arg(value, name, "{ scale, zeroPoint }");
  return QuantParams{number_of(obj, name, "scale"), int_of(obj, name, "zeroPoint", -128, 255)};
}

// {scale, zeroPoint, lo, hi}
QuantOutput output_arg(Napi::Value value) {
  auto obj = object_arg(value, "output", "{ scale, zeroPoint, lo, hi }");
  QuantOutput o;
  o.q = QuantParams{number_of(obj, "output", "scale"), int_of(obj, "output", "zeroPoint", -128, 255)};
  o.lo = int_of(obj, "output", "lo", -128, 255);
  o.hi = int_of(obj, "output", "hi", -128, 255);
  return o;
}

// qadd(a, b, aParams, bParams, output, async) -> {data, shape: [n]}
Napi::Value QAdd(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const bool async = async_flag(info, 5);
    auto a = byte_input(info[0], "a", async);
    auto b = byte_input(info[1], "b", async);
    if (a->length != b->length)
      throw_error(env, ErrorKind::Shape,
                  "b: expected " + std::to_string(a->length) + " values like a, got " + std::to_string(b->length));
    const QuantParams qa = quant_arg(info[2], "a"), qb = quant_arg(info[3], "b");
    const QuantOutput o = output_arg(info[4]);
    const size_t n = a->length;
    const Output out = new_output(env, n);
    auto work = [=, dst = out.data] { qadd(a->data, a->is_signed, qa, b->data, b->is_signed, qb, n, o, dst); };
    return finish(env, async, out, work, [=](Napi::Env e) { return shape_value(e, {n}); });
  });
}

// qclamp(x, lo, hi, async) -> {data, shape: [n]}
Napi::Value QClamp(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const bool async = async_flag(info, 3);
    auto x = byte_input(info[0], "input", async);
    const int32_t lo = int_value(info[1], "clamp[0]", -128, 255), hi = int_value(info[2], "clamp[1]", -128, 255);
    const size_t n = x->length;
    const Output out = new_output(env, n);
    auto work = [=, dst = out.data] { qclamp(x->data, x->is_signed, n, lo, hi, dst); };
    return finish(env, async, out, work, [=](Napi::Env e) { return shape_value(e, {n}); });
  });
}

// qmaxpool2d(x, [N, H, W, C], geometry: { kernel, strides, pads }, async)
Napi::Value QMaxPool2d(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const auto dims = uint_array(info[1], "inputShape", 4);
    const Pool2dParams p = pool_geometry(info[2], "geometry");
    const bool async = async_flag(info, 3);
    const Conv2dShape s = qpool2d_shape(dims[0], dims[1], dims[2], dims[3], p);
    auto x = byte_input(info[0], "input", async);
    expect_length(env, *x, s.batch * s.in_h * s.in_w * s.in_c, "input", "[N, H, W, C]");
    const Output out = new_output(env, s.batch * s.out_h * s.out_w * s.out_c);
    auto work = [=, dst = out.data] { qmaxpool2d(x->data, x->is_signed, s, p, dst); };
    return finish(env, async, out, work, [=](Napi::Env e) {
      return shape_value(e, {s.batch, s.out_h, s.out_w, s.out_c});
    });
  });
}

// qavgpool2d(x, [N, H, W, C], geometry: { kernel, strides, pads }, countIncludePad, input, output, async)
Napi::Value QAvgPool2d(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const auto dims = uint_array(info[1], "inputShape", 4);
    const Pool2dParams p = pool_geometry(info[2], "geometry");
    if (!info[3].IsBoolean()) throw_error(env, ErrorKind::Type, "countIncludePad: expected a boolean");
    const bool include_pad = info[3].As<Napi::Boolean>().Value();
    const QuantParams qi = quant_arg(info[4], "input");
    const QuantOutput o = output_arg(info[5]);
    const bool async = async_flag(info, 6);
    const Conv2dShape s = qpool2d_shape(dims[0], dims[1], dims[2], dims[3], p);
    auto x = byte_input(info[0], "input", async);
    expect_length(env, *x, s.batch * s.in_h * s.in_w * s.in_c, "input", "[N, H, W, C]");
    const Output out = new_output(env, s.batch * s.out_h * s.out_w * s.out_c);
    auto work = [=, dst = out.data] { qavgpool2d(x->data, x->is_signed, s, p, include_pad, qi, o, dst); };
    auto shape = [=](Napi::Env e) { return shape_value(e, {s.batch, s.out_h, s.out_w, s.out_c}); };
    return finish(env, async, out, work, shape);
  });
}

// qglobalavgpool(x, [N, H, W, C], input, output, async) -> [N, 1, 1, C]
Napi::Value QGlobalAvgPool(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const auto d = uint_array(info[1], "inputShape", 4);
    const QuantParams qi = quant_arg(info[2], "input");
    const QuantOutput o = output_arg(info[3]);
    const bool async = async_flag(info, 4);
    if (d[0] == 0 || d[1] == 0 || d[2] == 0 || d[3] == 0)
      throw_error(env, ErrorKind::Shape, "input: every dimension of [N, H, W, C] must be at least 1");
    const size_t count = size_product(env, d, "input size overflows size_t");
    auto x = byte_input(info[0], "input", async);
    expect_length(env, *x, count, "input", "[N, H, W, C]");
    const size_t n = d[0], h = d[1], w = d[2], c = d[3];
    const Output out = new_output(env, n * c);
    auto work = [=, dst = out.data] { qglobalavgpool(x->data, x->is_signed, n, h, w, c, qi, o, dst); };
    auto shape = [=](Napi::Env e) { return shape_value(e, {n, 1, 1, c}); };
    return finish(env, async, out, work, shape);
  });
}

// qconcat(inputs: (Int8Array | Uint8Array)[], outer, inner, axisSizes: number[], params: {scale, zeroPoint}[],
//         output, async) -> {data, shape: [outer, sum(axisSizes), inner]}
Napi::Value QConcat(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    if (!info[0].IsArray()) throw_error(env, ErrorKind::Type, "inputs: expected an array of Int8Array / Uint8Array");
    auto list = info[0].As<Napi::Array>();
    const size_t count = list.Length();
    if (count == 0) throw_error(env, ErrorKind::Shape, "inputs: expected at least one tensor");
    const size_t outer = uint_arg(info[1], "outer"), inner = uint_arg(info[2], "inner");
    const auto axis = uint_array(info[3], "axisSizes", count);
    if (!info[4].IsArray() || info[4].As<Napi::Array>().Length() != count)
      throw_error(env, ErrorKind::Shape,
                  "inputs: expected " + std::to_string(count) + " quantization parameter objects");
    auto params = info[4].As<Napi::Array>();
    const QuantOutput o = output_arg(info[5]);
    const bool async = async_flag(info, 6);
    auto held = std::make_shared<std::vector<std::shared_ptr<ByteInput>>>();
    auto inputs = std::make_shared<std::vector<QConcatInput>>();
    size_t total_axis = 0;
    for (uint32_t i = 0; i < count; ++i) {
      const std::string name = "inputs[" + std::to_string(i) + "]";
      auto in = byte_input(list.Get(i), name, async);
      size_t len;
      if (__builtin_mul_overflow(outer, axis[i], &len) || __builtin_mul_overflow(len, inner, &len) ||
          __builtin_add_overflow(total_axis, axis[i], &total_axis))
        throw_error(env, ErrorKind::Range, name + ": size overflows size_t");
      expect_length(env, *in, len, name,
                    "[outer, axis, inner] = [" + std::to_string(outer) + ", " + std::to_string(axis[i]) + ", " +
                        std::to_string(inner) + "]");
      inputs->push_back(QConcatInput{in->data, in->is_signed, axis[i], quant_arg(params.Get(i), name)});
      held->push_back(std::move(in));
    }
    const size_t bytes = size_product(env, {outer, total_axis, inner}, "output: size overflows size_t");
    const Output out = new_output(env, bytes);
    auto work = [=, dst = out.data] {
      qconcat(inputs->data(), inputs->size(), outer, inner, o, dst);
      (void)held;
    };
    auto shape = [=](Napi::Env e) { return shape_value(e, {outer, total_axis, inner}); };
    return finish(env, async, out, work, shape);
  });
}

}  // namespace

void init_qops(Napi::Env env, Napi::Object exports) {
  exports.Set("qadd", Napi::Function::New(env, QAdd, "qadd"));
  exports.Set("qclamp", Napi::Function::New(env, QClamp, "qclamp"));
  exports.Set("qmaxpool2d", Napi::Function::New(env, QMaxPool2d, "qmaxpool2d"));
  exports.Set("qavgpool2d", Napi::Function::New(env, QAvgPool2d, "qavgpool2d"));
  exports.Set("qglobalavgpool", Napi::Function::New(env, QGlobalAvgPool, "qglobalavgpool"));
  exports.Set("qconcat", Napi::Function::New(env, QConcat, "qconcat"));
}

}  // namespace lowbit::js
