// qconv_ops.cc: N-API entry points of the integer conv / dense layers. Validates and copies the
// arguments, then runs the native operator inline (sync) or on the libuv pool (async); async jobs
// own copies of their inputs and a shared pointer to the weights.
#include "qconv_ops.h"

#include <string>

#include "handle.h"
#include "lowbit/qconv.h"
#include "napi_args.h"

namespace lowbit::js {
namespace {

std::shared_ptr<QConv2dWeights> weights_arg(Napi::Value value) {
  return unwrap_handle<QConv2dWeights>(
      value, instance_data(value.Env()).qconv_weights,
      "weights: expected packed integer weights (from packQConv2dWeights or packQDenseWeights)");
}

// packQConv2dWeights(data: Int8Array, [O, H, W, I], groups, bits) -> handle
Napi::Value PackWeights(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const auto dims = uint_array(info[1], "shape", 4);
    const size_t groups = uint_arg(info[2], "groups"), bits = uint_arg(info[3], "bits");
    const size_t count = size_product(env, dims, "shape: element count overflows");
    auto data = typed_array<int8_t>(info[0], napi_int8_array, "weights");
    if (data.length != count)
      throw_error(
          env, ErrorKind::Shape,
          "weights: shape [O, H, W, I] needs " + std::to_string(count) + " values, got " + std::to_string(data.length));
    auto packed = pack_qconv2d_weights(data.data, dims[0], dims[1], dims[2], dims[3], groups, static_cast<int>(bits));
    // What the packed weights keep alive, for V8's external memory.
    const size_t native_bytes =
        packed->bytes() + packed->wsum.size() * 4 + packed->l1.size() * 8 + packed->small_k.size() * 2;
    Napi::Object handle = wrap_handle(env, instance_data(env).qconv_weights, packed, native_bytes);
    handle.Set("bytes", Napi::Number::New(env, static_cast<double>(packed->bytes())));
    return handle;
  });
}

enum class OutType { S8, U8, S32 };

// The output type an epilogue writes: s32 (no requantization), s8 or u8.
OutType out_type(const OwnedQEpilogue& e) {
  return !e.requantize ? OutType::S32 : e.out_signed ? OutType::S8 : OutType::U8;
}

// The input's quantization: its signedness (from the typed array) and options.inputZeroPoint.
QInput input_quant_arg(Napi::Value value, bool input_signed) {
  if (!value.IsObject()) throw_error(value.Env(), ErrorKind::Type, "options: expected an object");
  return QInput{input_signed, int_prop(value.As<Napi::Object>(), "inputZeroPoint", 0)};
}

// {inputZeroPoint, bias?, multiplier?, shift?, dtype: 's8' | 'u8' | 's32', zeroPoint, lo, hi}: the
// values converted (typed-array types and lengths, integers); validate_qepilogue owns every rule.
std::shared_ptr<const OwnedQEpilogue> epilogue_arg(Napi::Value value, const QInput& input, const QConv2dWeights& w) {
  Napi::Env env = value.Env();
  auto obj = value.As<Napi::Object>();
  auto e = std::make_shared<OwnedQEpilogue>();
  const size_t oc = w.out_channels;
  const std::string dtype = obj.Get("dtype").IsString() ? obj.Get("dtype").As<Napi::String>().Utf8Value() : "";
  if (dtype != "s8" && dtype != "u8" && dtype != "s32")
    throw_error(env, ErrorKind::Range, "dtype: expected 's8', 'u8' or 's32', got '" + dtype + "'");
  e->bias = optional_vector<int32_t>(obj, "bias", napi_int32_array, oc);
  e->requantize = dtype != "s32";
  if (e->requantize) {
    e->mult = optional_vector<int32_t>(obj, "multiplier", napi_int32_array, oc);
    e->shift = optional_vector<uint8_t>(obj, "shift", napi_uint8_array, oc);
    if (e->mult.empty() || e->shift.empty())
      throw_error(env, ErrorKind::Type,
                  "options: an 8-bit output needs multiplier (Int32Array) and shift (Uint8Array)");
    e->out_signed = dtype == "s8";
    e->zero_point = int_prop(obj, "zeroPoint", 0);
    e->lo = int_prop(obj, "lo", e->out_signed ? -128 : 0);
    e->hi = int_prop(obj, "hi", e->out_signed ? 127 : 255);
  }
  validate_qepilogue(e->view(), w, input);
  return e;
}

// The caller's preallocated output (sync calls only) or a new buffer. It may not overlap the input.
Output output_arg(Napi::Value value, bool async, OutType type, size_t count, const ByteInput& input) {
  Napi::Env env = value.Env();
  const size_t bytes = count * (type == OutType::S32 ? 4 : 1);
  if (value.IsUndefined() || value.IsNull()) return new_output(env, bytes);
  if (async) throw_error(env, ErrorKind::Type, "out: a preallocated output is only accepted by the sync form");
  uint8_t* data;
  size_t length;
  if (type == OutType::S32) {
    auto a = typed_array<int32_t>(value, napi_int32_array, "out");
    data = reinterpret_cast<uint8_t*>(a.data), length = a.length;
  } else if (type == OutType::S8) {
    auto a = typed_array<int8_t>(value, napi_int8_array, "out");
    data = reinterpret_cast<uint8_t*>(a.data), length = a.length;
  } else {
    auto a = typed_array<uint8_t>(value, napi_uint8_array, "out");
    data = a.data, length = a.length;
  }
  if (length != count)
    throw_error(env, ErrorKind::Shape,
                "out: expected " + std::to_string(count) + " elements, got " + std::to_string(length));
  expect_disjoint(env, data, bytes, input.data, input.length);
  return {value.As<Napi::TypedArray>().ArrayBuffer(), data};
}

// qconv2d(input: Uint8Array | Int8Array, [N, H, W, C], weights, geometry: { strides, dilations, pads }, options,
//         {async, out?})
Napi::Value QConv2d(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const auto dims = uint_array(info[1], "inputShape", 4);
    auto weights = weights_arg(info[2]);
    const Conv2dParams params = conv_geometry(info[3], "geometry", false);
    const Napi::Object call = call_options(info, 5);
    const bool async = bool_prop(call, "async");
    const Conv2dShape s = qconv2d_shape(dims[0], dims[1], dims[2], dims[3], *weights, params);
    auto input = byte_input(info[0], "input", async);
    expect_length(env, *input, s.batch * s.in_h * s.in_w * s.in_c, "input", "[N, H, W, C]");
    const QInput in = input_quant_arg(info[4], input->is_signed);
    auto epilogue = epilogue_arg(info[4], in, *weights);
    const Output out =
        output_arg(call.Get("out"), async, out_type(*epilogue), s.batch * s.out_h * s.out_w * s.out_c, *input);
    auto work = [=, dst = out.data] { qconv2d(input->data, s, *weights, params, in, epilogue->view(), dst); };
    return finish(env, async, out, work, [=](Napi::Env e) {
      return shape_value(e, {s.batch, s.out_h, s.out_w, s.out_c});
    });
  });
}

// qdense(input: Uint8Array | Int8Array, rows, inChannels, weights, options, {async, out?})
Napi::Value QDense(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const size_t rows = uint_arg(info[1], "rows"), in_c = uint_arg(info[2], "inChannels");
    auto weights = weights_arg(info[3]);
    const Napi::Object call = call_options(info, 5);
    const bool async = bool_prop(call, "async");
    qdense_shape(rows, in_c, *weights);  // 1x1 weights with one group, in_c against them
    auto input = byte_input(info[0], "input", async);
    expect_length(env, *input, rows * in_c, "input", "[rows, inChannels]");
    const QInput in = input_quant_arg(info[4], input->is_signed);
    auto epilogue = epilogue_arg(info[4], in, *weights);
    const size_t oc = weights->out_channels;
    const Output out = output_arg(call.Get("out"), async, out_type(*epilogue), rows * oc, *input);
    auto work = [=, dst = out.data] { qdense(input->data, rows, in_c, *weights, in, epilogue->view(), dst); };
    return finish(env, async, out, work, [=](Napi::Env e) { return shape_value(e, {rows, oc}); });
  });
}

}  // namespace

void init_qconv_ops(Napi::Env env, Napi::Object exports) {
  instance_data(env).qconv_weights = Handle<QConv2dWeights>::define(env, "QConv2dWeightsHandle");
  exports.Set("packQConv2dWeights", Napi::Function::New(env, PackWeights, "packQConv2dWeights"));
  exports.Set("qconv2d", Napi::Function::New(env, QConv2d, "qconv2d"));
  exports.Set("qdense", Napi::Function::New(env, QDense, "qdense"));
}

}  // namespace lowbit::js
