// quantize_ops.cc: N-API entry points of the quantization API (lowbit/quantize.h): dyadic pairs,
// requantize, quantize / dequantize.
#include "quantize_ops.h"

#include "lowbit/quantize.h"
#include "napi_args.h"

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

// requantize(acc: Int32Array, rows, channels, {multiplier, shift, bias?, lo, hi}, async) -> {data, shape}
Napi::Value Requantize(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const size_t rows = uint_arg(info[1], "rows"), channels = uint_arg(info[2], "channels");
    if (!info[3].IsObject()) throw_error(env, ErrorKind::Type, "params: expected an object");
    const bool async = async_flag(info, 4);
    auto params = info[3].As<Napi::Object>();
    const size_t count = size_product(env, {rows, channels}, "rows x channels overflows");
    auto acc = typed_array<int32_t>(info[0], napi_int32_array, "acc");
    if (acc.length != count)
      throw_error(env, ErrorKind::Shape,
                  "acc: " + std::to_string(rows) + " x " + std::to_string(channels) + " needs " +
                      std::to_string(count) + " values, got " + std::to_string(acc.length));
    auto mult = optional_vector<int32_t>(params, "multiplier", napi_int32_array, channels);
    auto shift = optional_vector<uint8_t>(params, "shift", napi_uint8_array, channels);
    auto bias = optional_vector<int32_t>(params, "bias", napi_int32_array, channels);
    if (mult.empty() || shift.empty())
      throw_error(env, ErrorKind::Type, "params: needs multiplier (Int32Array) and shift (Uint8Array)");
    if (bias.empty()) bias.assign(channels, 0);
    const double lo = number_prop(params, "lo", -128), hi = number_prop(params, "hi", 127);
    if (lo != static_cast<int32_t>(lo) || hi != static_cast<int32_t>(hi))
      throw_error(env, ErrorKind::Range, "params: lo and hi must be integers");
    auto data = std::make_shared<std::vector<int32_t>>();
    const int32_t* src = acc.data;
    if (async) {
      data->assign(acc.data, acc.data + count);
      src = data->data();
    }
    const Output out = new_output(env, count);
    auto work = [=, m = std::move(mult), e = std::move(shift), b = std::move(bias), dst = out.data] {
      requantize(src, rows, channels, m.data(), e.data(), b.data(), static_cast<int32_t>(lo), static_cast<int32_t>(hi),
                 dst);
      (void)data;
    };
    return finish(env, async, out, work, [=](Napi::Env e) { return shape_value(e, {rows, channels}); });
  });
}

// quantize(x: Float32Array, scale, zeroPoint, lo, hi, async) -> {data: bytes, shape: [n]}
Napi::Value Quantize(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    auto x = typed_array<float>(info[0], napi_float32_array, "input");
    const float scale = scale_arg(info[1]);
    const int32_t zp = byte_value_arg(info[2], "zeroPoint"), lo = byte_value_arg(info[3], "lo"),
                  hi = byte_value_arg(info[4], "hi");
    const bool async = async_flag(info, 5);
    const size_t n = x.length;
    auto copy = async ? std::make_shared<std::vector<float>>(x.data, x.data + n) : nullptr;
    const float* src = async ? copy->data() : x.data;
    const Output out = new_output(env, n);
    auto work = [=, dst = out.data] {
      quantize_f32(src, n, scale, zp, lo, hi, dst);
      (void)copy;
    };
    return finish(env, async, out, work, [=](Napi::Env e) { return shape_value(e, {n}); });
  });
}

// dequantize(q: Int8Array | Uint8Array, scale, zeroPoint, async) -> {data: Float32 bytes, shape: [n]}
Napi::Value Dequantize(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const bool is_signed = info[0].IsTypedArray() && info[0].As<Napi::TypedArray>().TypedArrayType() == napi_int8_array;
    auto q = is_signed ? typed_array<uint8_t>(info[0], napi_int8_array, "input")
                       : typed_array<uint8_t>(info[0], napi_uint8_array, "input");
    const float scale = scale_arg(info[1]);
    const int32_t zp = byte_value_arg(info[2], "zeroPoint");
    const bool async = async_flag(info, 3);
    const size_t n = q.length;
    auto copy = async ? std::make_shared<std::vector<uint8_t>>(q.data, q.data + n) : nullptr;
    const uint8_t* src = async ? copy->data() : q.data;
    const Output out = new_output(env, n * 4);
    auto work = [=, dst = out.data] {
      dequantize_8bit(src, n, is_signed, scale, zp, reinterpret_cast<float*>(dst));
      (void)copy;
    };
    return finish(env, async, out, work, [=](Napi::Env e) { return shape_value(e, {n}); });
  });
}

}  // namespace

void init_quantize_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("toDyadic", Napi::Function::New(env, ToDyadic, "toDyadic"));
  exports.Set("requantize", Napi::Function::New(env, Requantize, "requantize"));
  exports.Set("quantize", Napi::Function::New(env, Quantize, "quantize"));
  exports.Set("dequantize", Napi::Function::New(env, Dequantize, "dequantize"));
}

}  // namespace lowbit::js
