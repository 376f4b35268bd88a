// binary_ops.cc: N-API entry points of the binary operators (the MST schedules are mst_ops.cc).
// Converts and copies arguments, then runs the native operator inline (sync) or on the libuv pool
// (async). Async jobs own copies of their inputs and a shared pointer to the weights, so JS may
// drop, mutate or detach anything once the call returns.
#include "binary_ops.h"

#include <cmath>
#include <cstring>

#include "handle.h"
#include "lowbit/binary.h"
#include "lowbit/mst.h"
#include "mst_ops.h"
#include "napi_args.h"

namespace lowbit::js {

std::shared_ptr<BinaryConv2dWeights> binary_weights_arg(Napi::Value value) {
  return unwrap_handle<BinaryConv2dWeights>(value, instance_data(value.Env()).binary_weights,
                                            "weights: expected packed binary weights (from packBinaryConv2dWeights)");
}

Napi::Object binary_weights_value(Napi::Env env, std::shared_ptr<BinaryConv2dWeights> weights) {
  // What packed weights keep alive, for V8's external memory.
  const size_t native_bytes = weights->bits.size() * 8 + weights->tap_sums.size() * 4;
  const double bytes = static_cast<double>(weights->bits.size() * 8);
  Napi::Object handle = wrap_handle(env, instance_data(env).binary_weights, std::move(weights), native_bytes);
  handle.Set("bytes", Napi::Number::New(env, bytes));
  return handle;
}

namespace {

// ---- packed weights: an opaque handle -----------------------------------------------------------

// packBinaryConv2dWeights(data: Float32Array | Int8Array, [O, H, W, I], groups)
Napi::Value PackWeights(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const auto dims = uint_array(info[1], "shape", 4);
    const size_t groups = uint_arg(info[2], "groups");
    const size_t count = size_product(env, dims, "shape: element count overflows");
    std::shared_ptr<BinaryConv2dWeights> packed;
    auto check_length = [&](size_t length) {
      if (length != count)
        throw_error(
            env, ErrorKind::Shape,
            "weights: shape [O, H, W, I] needs " + std::to_string(count) + " values, got " + std::to_string(length));
    };
    if (info[0].IsTypedArray() && info[0].As<Napi::TypedArray>().TypedArrayType() == napi_int8_array) {
      auto data = typed_array<int8_t>(info[0], napi_int8_array, "weights");
      check_length(data.length);
      packed = pack_binary_conv2d_weights_s8(data.data, dims[0], dims[1], dims[2], dims[3], groups);
    } else {
      auto data = typed_array<float>(info[0], napi_float32_array, "weights");
      check_length(data.length);
      packed = pack_binary_conv2d_weights_f32(data.data, dims[0], dims[1], dims[2], dims[3], groups);
    }
    return binary_weights_value(env, packed);
  });
}

// ---- epilogue ------------------------------------------------------------------------------------

// The epilogue object's values, converted (kind, typed-array types and lengths, integers); the core's
// validate_epilogue owns every rule on them.
std::shared_ptr<const OwnedBinaryEpilogue> epilogue_arg(Napi::Value value, size_t out_c) {
  Napi::Env env = value.Env();
  if (!value.IsObject()) throw_error(env, ErrorKind::Type, "output: expected an epilogue object");
  auto obj = value.As<Napi::Object>();
  auto e = std::make_shared<OwnedBinaryEpilogue>();
  const std::string kind = obj.Get("kind").IsString() ? obj.Get("kind").As<Napi::String>().Utf8Value() : "";
  if (kind == "f32") {
    e->kind = OutputKind::F32;
    e->scale = optional_vector<float>(obj, "scale", napi_float32_array, out_c);
    e->bias_f32 = optional_vector<float>(obj, "bias", napi_float32_array, out_c);
    if (e->scale.empty()) e->scale.assign(out_c, 1.f);
    if (e->bias_f32.empty()) e->bias_f32.assign(out_c, 0.f);
    e->lo = static_cast<float>(number_prop(obj, "lo", -INFINITY));
    e->hi = static_cast<float>(number_prop(obj, "hi", INFINITY));
  } else if (kind == "s8") {
    e->kind = OutputKind::S8;
    e->mult = optional_vector<int32_t>(obj, "multiplier", napi_int32_array, out_c);
    e->shift = optional_vector<uint8_t>(obj, "shift", napi_uint8_array, out_c);
    e->bias_s32 = optional_vector<int32_t>(obj, "bias", napi_int32_array, out_c);
    if (e->bias_s32.empty()) e->bias_s32.assign(out_c, 0);
    e->qmin = int_prop(obj, "lo", -128);
    e->qmax = int_prop(obj, "hi", 127);
  } else if (kind == "b1") {
    e->kind = OutputKind::B1;
    e->threshold = optional_vector<int32_t>(obj, "threshold", napi_int32_array, out_c);
    e->flip = optional_vector<uint8_t>(obj, "flip", napi_uint8_array, out_c);
    if (e->flip.empty()) e->flip.assign(out_c, 0);
  } else {
    throw_error(env, ErrorKind::Range, "output.kind: expected 'f32', 's8' or 'b1', got '" + kind + "'");
  }
  validate_epilogue(e->view(), out_c);
  return e;
}

size_t element_bytes(OutputKind kind) { return kind == OutputKind::F32 ? 4 : kind == OutputKind::S8 ? 1 : 8; }

// ---- sync / async plumbing -------------------------------------------------------------------------

// The packed input of a conv/dense/pool call: borrowed for sync calls, copied for async ones.
struct PackedInput {
  const uint64_t* data = nullptr;
  size_t bytes = 0;
  std::vector<uint64_t> copy;
};

// `rows` rows of `channels` packed bits. The unused tail bits of each row's last word must be 0:
// the kernels count every bit of a word (a 1x1 conv or dense layer would count a set tail bit as
// a -1 input) and a max pool would carry it along. Checked on the copy an async job reads.
PackedInput packed_input(Napi::Value value, size_t rows, size_t channels, bool async, const char* what) {
  auto arg = typed_array<uint64_t>(value, napi_biguint64_array, "input");
  const size_t words = b1_words(channels);
  if (arg.length != rows * words)  // no overflow: the caller's shape checks bound it
    throw_error(value.Env(), ErrorKind::Shape,
                std::string("input: ") + what + " needs " + std::to_string(rows * words) +
                    " packed 64-bit words, got " + std::to_string(arg.length));
  PackedInput in;
  in.bytes = arg.length * 8;
  if (async) {
    in.copy.assign(arg.data, arg.data + arg.length);
    in.data = in.copy.data();
  } else {
    in.data = arg.data;
  }
  if (channels % 64 != 0) {
    const uint64_t tail = ~uint64_t{0} << (channels % 64);
    for (size_t r = 0; r < rows; ++r)
      if (in.data[r * words + words - 1] & tail)
        throw_error(value.Env(), ErrorKind::Range,
                    "input: row " + std::to_string(r) + " (word " + std::to_string(r * words + words - 1) +
                        ") has bits set above its " + std::to_string(channels) +
                        " channels; the unused tail bits of a b1 tensor must be 0 (bitpack() clears them)");
  }
  return in;
}

// The caller's preallocated output (sync calls only: an async job must not write into memory the
// caller can detach or free meanwhile), or a new buffer. It may not overlap the input.
Output output_arg(Napi::Value value, bool async, OutputKind kind, size_t bytes, const PackedInput& input) {
  Napi::Env env = value.Env();
  if (value.IsUndefined() || value.IsNull()) return new_output(env, bytes);
  if (async) throw_error(env, ErrorKind::Type, "out: a preallocated output is only accepted by the sync form");
  uint8_t* data;
  size_t length;
  switch (kind) {
    case OutputKind::F32: {
      auto a = typed_array<float>(value, napi_float32_array, "out");
      data = reinterpret_cast<uint8_t*>(a.data), length = a.length * 4;
      break;
    }
    case OutputKind::S8: {
      auto a = typed_array<int8_t>(value, napi_int8_array, "out");
      data = reinterpret_cast<uint8_t*>(a.data), length = a.length;
      break;
    }
    default: {
      auto a = typed_array<uint64_t>(value, napi_biguint64_array, "out");
      data = reinterpret_cast<uint8_t*>(a.data), length = a.length * 8;
      break;
    }
  }
  if (length != bytes)
    throw_error(env, ErrorKind::Shape,
                "out: expected " + std::to_string(bytes) + " bytes for the output, got " + std::to_string(length));
  expect_disjoint(env, data, length, input.data, input.bytes);
  return {value.As<Napi::TypedArray>().ArrayBuffer(), data};
}

// ---- operators ---------------------------------------------------------------------------------------

// bitpack(data: Float32Array | Int8Array, rows, channels, async)
Napi::Value Bitpack(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const size_t rows = uint_arg(info[1], "rows"), channels = uint_arg(info[2], "channels");
    const bool async = async_flag(info, 3);
    const size_t count = size_product(env, {rows, channels}, "rows x channels overflows");
    const bool is_s8 = info[0].IsTypedArray() && info[0].As<Napi::TypedArray>().TypedArrayType() == napi_int8_array;
    auto check = [&](size_t length) {
      if (length != count)
        throw_error(env, ErrorKind::Shape,
                    "input: " + std::to_string(rows) + " x " + std::to_string(channels) + " needs " +
                        std::to_string(count) + " values, got " + std::to_string(length));
    };
    // Validate the input before allocating the output, whose size comes from rows x channels.
    auto s8 = is_s8 ? typed_array<int8_t>(info[0], napi_int8_array, "input") : ArrayArg<int8_t>{nullptr, 0};
    auto f32 = is_s8 ? ArrayArg<float>{nullptr, 0} : typed_array<float>(info[0], napi_float32_array, "input");
    check(is_s8 ? s8.length : f32.length);
    const Output out = new_output(env, rows * b1_words(channels) * 8);
    std::function<void()> work;
    if (is_s8) {
      auto data = async ? std::make_shared<std::vector<int8_t>>(s8.data, s8.data + count) : nullptr;
      const int8_t* p = async ? data->data() : s8.data;
      work = [=, dst = out.data] {
        bitpack_s8(p, rows, channels, reinterpret_cast<uint64_t*>(dst));
        (void)data;
      };
    } else {
      auto data = async ? std::make_shared<std::vector<float>>(f32.data, f32.data + count) : nullptr;
      const float* p = async ? data->data() : f32.data;
      work = [=, dst = out.data] {
        bitpack_f32(p, rows, channels, reinterpret_cast<uint64_t*>(dst));
        (void)data;
      };
    }
    return finish(env, async, out, std::move(work), [=](Napi::Env e) { return shape_value(e, {rows, channels}); });
  });
}

// bconv2d(input: BigUint64Array, [N, H, W, C], weights, geometry: { strides, dilations, pads, padValue }, output,
//         {async, out?, mst?, mstPolicy?})
Napi::Value BConv2d(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const auto dims = uint_array(info[1], "inputShape", 4);
    auto weights = binary_weights_arg(info[2]);
    const Conv2dParams params = conv_geometry(info[3], "geometry", true);
    const Napi::Object call = call_options(info, 5);
    const bool async = bool_prop(call, "async");
    const Conv2dShape s = bconv2d_shape(dims[0], dims[1], dims[2], dims[3], *weights, params);
    auto epilogue = epilogue_arg(info[4], s.out_c);
    auto input =
        std::make_shared<PackedInput>(packed_input(info[0], s.batch * s.in_h * s.in_w, s.in_c, async, "[N, H, W, C]"));
    const size_t pixels = s.batch * s.out_h * s.out_w;
    const Output out =
        output_arg(call.Get("out"), async, epilogue->kind,
                   binary_output_size(epilogue->kind, pixels, s.out_c) * element_bytes(epilogue->kind), *input);
    MstPolicy policy = MstPolicy::Auto;
    auto mst = call_schedule(info.Env(), call, weights, policy);
    auto work = [=, dst = out.data] {
      if (mst)
        bconv2d_mst(input->data, s, *weights, *mst->plan, params, epilogue->view(), dst, policy);
      else
        bconv2d(input->data, s, *weights, params, epilogue->view(), dst);
    };
    return finish(env, async, out, work, [=](Napi::Env e) {
      return shape_value(e, {s.batch, s.out_h, s.out_w, s.out_c});
    });
  });
}

// bdense(input: BigUint64Array, rows, inChannels, weights, output, {async, out?, mst?, mstPolicy?})
Napi::Value BDense(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const size_t rows = uint_arg(info[1], "rows"), in_c = uint_arg(info[2], "inChannels");
    auto weights = binary_weights_arg(info[3]);
    const Napi::Object call = call_options(info, 5);
    const bool async = bool_prop(call, "async");
    bdense_shape(rows, in_c, *weights);  // rows, 1x1 weights with one group, features
    auto epilogue = epilogue_arg(info[4], weights->out_channels);
    size_product(env, {rows, b1_words(in_c)}, "input size overflows");
    auto input = std::make_shared<PackedInput>(packed_input(info[0], rows, in_c, async, "[rows, inChannels]"));
    const size_t oc = weights->out_channels;
    const Output out = output_arg(call.Get("out"), async, epilogue->kind,
                                  binary_output_size(epilogue->kind, rows, oc) * element_bytes(epilogue->kind), *input);
    MstPolicy policy = MstPolicy::Auto;
    auto mst = call_schedule(info.Env(), call, weights, policy);
    auto work = [=, dst = out.data] {
      if (mst)
        bdense_mst(input->data, rows, in_c, *weights, *mst->plan, epilogue->view(), dst, policy);
      else
        bdense(input->data, rows, in_c, *weights, epilogue->view(), dst);
    };
    return finish(env, async, out, work, [=](Napi::Env e) { return shape_value(e, {rows, oc}); });
  });
}

// bmaxpool2d(input: BigUint64Array, [N, H, W, C], geometry: { kernel, strides, pads }, async)
Napi::Value BMaxPool2d(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const auto dims = uint_array(info[1], "inputShape", 4);
    const Pool2dParams p = pool_geometry(info[2], "geometry");
    const bool async = async_flag(info, 3);
    const Conv2dShape s = bmaxpool2d_shape(dims[0], dims[1], dims[2], dims[3], p);
    auto input =
        std::make_shared<PackedInput>(packed_input(info[0], s.batch * s.in_h * s.in_w, s.in_c, async, "[N, H, W, C]"));
    const Output out = new_output(env, s.batch * s.out_h * s.out_w * b1_words(s.in_c) * 8);
    auto work = [=, dst = out.data] { bmaxpool2d(input->data, s, p, reinterpret_cast<uint64_t*>(dst)); };
    return finish(env, async, out, work, [=](Napi::Env e) {
      return shape_value(e, {s.batch, s.out_h, s.out_w, s.in_c});
    });
  });
}

}  // namespace

void init_binary_ops(Napi::Env env, Napi::Object exports) {
  instance_data(env).binary_weights = Handle<BinaryConv2dWeights>::define(env, "BinaryConv2dWeightsHandle");
  exports.Set("packBinaryConv2dWeights", Napi::Function::New(env, PackWeights, "packBinaryConv2dWeights"));
  exports.Set("bitpack", Napi::Function::New(env, Bitpack, "bitpack"));
  exports.Set("bconv2d", Napi::Function::New(env, BConv2d, "bconv2d"));
  exports.Set("bdense", Napi::Function::New(env, BDense, "bdense"));
  exports.Set("bmaxpool2d", Napi::Function::New(env, BMaxPool2d, "bmaxpool2d"));
}

}  // namespace lowbit::js
