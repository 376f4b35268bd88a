// napi_args.cc: argument validation, error mapping, external output buffers and the async job.
#include "napi_args.h"

#include <algorithm>
#include <cmath>
#include <new>

namespace lowbit::js {

void throw_error(Napi::Env env, ErrorKind kind, const std::string& message) {
  Napi::Error error;
  const char* code = "LOWBIT_INTERNAL";
  switch (kind) {
    case ErrorKind::Type:
      error = Napi::TypeError::New(env, message);
      code = "LOWBIT_TYPE";
      break;
    case ErrorKind::Range:
      error = Napi::RangeError::New(env, message);
      code = "LOWBIT_RANGE";
      break;
    case ErrorKind::Shape:
      error = Napi::Error::New(env, message);
      code = "LOWBIT_SHAPE";
      break;
    case ErrorKind::Unsupported:
      error = Napi::Error::New(env, message);
      code = "LOWBIT_UNSUPPORTED";
      break;
    case ErrorKind::Quantization:
      error = Napi::RangeError::New(env, message);
      code = "LOWBIT_QUANTIZATION";
      break;
    case ErrorKind::Format:
      error = Napi::Error::New(env, message);
      code = "LOWBIT_FORMAT";
      break;
    case ErrorKind::Internal:
      error = Napi::Error::New(env, message);
      break;
  }
  error.Set("code", Napi::String::New(env, code));
  throw error;
}

namespace {
Napi::Error to_js(Napi::Env env, ErrorKind kind, const std::string& message) {
  try {
    throw_error(env, kind, message);
  } catch (const Napi::Error& e) {
    return e;
  }
}

// Throws `e` in JS with the raw call, whose failure is ignored: in an environment that is shutting
// down (a terminated worker) N-API refuses to throw, and node-addon-api would answer with a C++
// exception that escapes to N-API and aborts the process.
void throw_js(napi_env env, const Napi::Error& e) {
  if (!e.IsEmpty()) napi_throw(env, e.Value());
}
}  // namespace

Napi::Value guarded(const Napi::CallbackInfo& info, const std::function<Napi::Value()>& body) {
  Napi::Env env = info.Env();
  // Two levels: building the JS error can itself fail (every N-API call does once the environment
  // is terminating), so the outer level catches whatever the inner one throws.
  try {
    try {
      return body();
    } catch (const Napi::Error&) {
      throw;
    } catch (const Error& e) {
      throw to_js(env, e.kind(), e.what());
    } catch (const std::bad_alloc&) {
      throw to_js(env, ErrorKind::Range, "out of memory: the requested tensors are too large");
    } catch (const std::exception& e) {
      throw to_js(env, ErrorKind::Internal, std::string("internal error: ") + e.what());
    }
  } catch (const Napi::Error& e) {
    throw_js(env, e);
  } catch (...) {
    // Nothing can be reported: the environment is going away or memory is exhausted.
  }
  return Napi::Value();
}

namespace {
const char* type_name(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array:
      return "Int8Array";
    case napi_uint8_array:
      return "Uint8Array";
    case napi_uint8_clamped_array:
      return "Uint8ClampedArray";
    case napi_int16_array:
      return "Int16Array";
    case napi_uint16_array:
      return "Uint16Array";
    case napi_int32_array:
      return "Int32Array";
    case napi_uint32_array:
      return "Uint32Array";
    case napi_float32_array:
      return "Float32Array";
    case napi_float64_array:
      return "Float64Array";
    case napi_bigint64_array:
      return "BigInt64Array";
    case napi_biguint64_array:
      return "BigUint64Array";
    default:
      return "typed array";
  }
}
}  // namespace

template <typename T>
ArrayArg<T> typed_array(Napi::Value value, napi_typedarray_type type, const char* name) {
  Napi::Env env = value.Env();
  if (!value.IsTypedArray()) throw_error(env, ErrorKind::Type, std::string(name) + ": expected a " + type_name(type));
  napi_typedarray_type actual;
  size_t length;
  void* data;
  napi_value buffer;
  if (napi_get_typedarray_info(env, value, &actual, &length, &data, &buffer, nullptr) != napi_ok)
    throw_error(env, ErrorKind::Type, std::string(name) + ": cannot read the typed array");
  if (actual != type)
    throw_error(env, ErrorKind::Type,
                std::string(name) + ": expected a " + type_name(type) + ", got a " + type_name(actual));
  // Fails (not ok) for a SharedArrayBuffer, which cannot be detached: that case is accepted.
  bool detached = false;
  if (napi_is_detached_arraybuffer(env, buffer, &detached) == napi_ok && detached)
    throw_error(env, ErrorKind::Type, std::string(name) + ": its ArrayBuffer is detached");
  return {static_cast<T*>(data), length};
}

template ArrayArg<float> typed_array(Napi::Value, napi_typedarray_type, const char*);
template ArrayArg<int8_t> typed_array(Napi::Value, napi_typedarray_type, const char*);
template ArrayArg<uint8_t> typed_array(Napi::Value, napi_typedarray_type, const char*);
template ArrayArg<int32_t> typed_array(Napi::Value, napi_typedarray_type, const char*);
template ArrayArg<uint32_t> typed_array(Napi::Value, napi_typedarray_type, const char*);
template ArrayArg<uint64_t> typed_array(Napi::Value, napi_typedarray_type, const char*);

template <typename T>
std::vector<T> optional_vector(Napi::Object obj, const char* key, napi_typedarray_type type, size_t expected) {
  Napi::Value value = obj.Get(key);
  if (value.IsUndefined()) return {};
  ArrayArg<T> arg = typed_array<T>(value, type, key);
  if (arg.length != expected)
    throw_error(obj.Env(), ErrorKind::Shape,
                std::string(key) + ": expected " + std::to_string(expected) + " values (one per output channel), got " +
                    std::to_string(arg.length));
  return std::vector<T>(arg.data, arg.data + arg.length);
}

template std::vector<float> optional_vector(Napi::Object, const char*, napi_typedarray_type, size_t);
template std::vector<int32_t> optional_vector(Napi::Object, const char*, napi_typedarray_type, size_t);
template std::vector<uint8_t> optional_vector(Napi::Object, const char*, napi_typedarray_type, size_t);

size_t uint_arg(Napi::Value value, const char* name) {
  if (!value.IsNumber()) throw_error(value.Env(), ErrorKind::Type, std::string(name) + ": expected a number");
  const double v = value.As<Napi::Number>().DoubleValue();
  if (!(v >= 0) || v != std::floor(v) || v > 9007199254740991.0)
    throw_error(value.Env(), ErrorKind::Range,
                std::string(name) + ": expected a non-negative integer, got " + std::to_string(v));
  return static_cast<size_t>(v);
}

std::vector<size_t> uint_array(Napi::Value value, const char* name, size_t expected_length) {
  if (!value.IsArray()) throw_error(value.Env(), ErrorKind::Type, std::string(name) + ": expected an array");
  auto array = value.As<Napi::Array>();
  if (array.Length() != expected_length)
    throw_error(value.Env(), ErrorKind::Shape,
                std::string(name) + ": expected " + std::to_string(expected_length) + " entries, got " +
                    std::to_string(array.Length()));
  std::vector<size_t> out(expected_length);
  for (uint32_t i = 0; i < expected_length; ++i) out[i] = uint_arg(array.Get(i), name);
  return out;
}

bool async_flag(const Napi::CallbackInfo& info, size_t index) {
  return info.Length() > index && info[index].IsBoolean() && info[index].As<Napi::Boolean>().Value();
}

Napi::Object call_options(const Napi::CallbackInfo& info, size_t index) {
  if (info.Length() <= index || info[index].IsUndefined()) return Napi::Object::New(info.Env());
  if (!info[index].IsObject())
    throw_error(info.Env(), ErrorKind::Type, "call options: expected an object { async, out?, mst?, mstPolicy? }");
  return info[index].As<Napi::Object>();
}

bool bool_prop(Napi::Object obj, const char* key) {
  const Napi::Value value = obj.Get(key);
  return value.IsBoolean() && value.As<Napi::Boolean>().Value();
}

float scale_arg(Napi::Value value) {
  if (!value.IsNumber()) throw_error(value.Env(), ErrorKind::Type, "scale: expected a number");
  return value.As<Napi::Number>().FloatValue();
}

int32_t byte_value_arg(Napi::Value value, const char* name) {
  const double v = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : NAN;
  if (!(v >= -128 && v <= 255) || v != std::floor(v))
    throw_error(value.Env(), ErrorKind::Range, std::string(name) + ": expected an integer in [-128, 255]");
  return static_cast<int32_t>(v);
}

size_t size_product(Napi::Env env, const std::vector<size_t>& factors, const std::string& overflow_message) {
  size_t product = 1;
  for (size_t f : factors)
    if (__builtin_mul_overflow(product, f, &product)) throw_error(env, ErrorKind::Range, overflow_message);
  return product;
}

double number_prop(Napi::Object obj, const char* key, double fallback) {
  Napi::Value value = obj.Get(key);
  if (value.IsUndefined()) return fallback;
  if (!value.IsNumber()) throw_error(obj.Env(), ErrorKind::Type, std::string(key) + ": expected a number");
  return value.As<Napi::Number>().DoubleValue();
}

int32_t int_prop(Napi::Object obj, const char* key, double fallback) {
  const double v = number_prop(obj, key, fallback);
  if (v != std::floor(v) || v < INT32_MIN || v > INT32_MAX)
    throw_error(obj.Env(), ErrorKind::Range, std::string(key) + ": expected an integer");
  return static_cast<int32_t>(v);
}

std::vector<size_t> uint_array_prop(Napi::Object obj, const std::string& name, const char* key, size_t length) {
  const std::string full = name + "." + key;
  return uint_array(obj.Get(key), full.c_str(), length);
}

namespace {
Napi::Object geometry_object(Napi::Value value, const char* name, const char* expected) {
  if (!value.IsObject() || value.IsArray())
    throw_error(value.Env(), ErrorKind::Type, std::string(name) + ": expected " + expected);
  return value.As<Napi::Object>();
}
}  // namespace

Conv2dParams conv_geometry(Napi::Value value, const char* name, bool with_pad_value) {
  const Napi::Object obj = geometry_object(
      value, name,
      with_pad_value
          ? "{ strides: [h, w], dilations: [h, w], pads: [top, left, bottom, right], padValue: 'one' | 'zero' }"
          : "{ strides: [h, w], dilations: [h, w], pads: [top, left, bottom, right] }");
  const auto strides = uint_array_prop(obj, name, "strides", 2);
  const auto dilations = uint_array_prop(obj, name, "dilations", 2);
  const auto pads = uint_array_prop(obj, name, "pads", 4);
  Conv2dParams p{strides[0], strides[1], dilations[0], dilations[1], pads[0], pads[1], pads[2], pads[3], PadValue::One};
  if (with_pad_value) {
    const Napi::Value v = obj.Get("padValue");
    const std::string message = std::string(name) + ".padValue: expected 'one' or 'zero'";
    if (!v.IsString()) throw_error(value.Env(), ErrorKind::Type, message);
    const std::string pad = v.As<Napi::String>().Utf8Value();
    if (pad != "one" && pad != "zero") throw_error(value.Env(), ErrorKind::Range, message + ", got '" + pad + "'");
    p.pad_value = pad == "zero" ? PadValue::Zero : PadValue::One;
  }
  return p;
}

Pool2dParams pool_geometry(Napi::Value value, const char* name) {
  const Napi::Object obj =
      geometry_object(value, name, "{ kernel: [h, w], strides: [h, w], pads: [top, left, bottom, right] }");
  const auto kernel = uint_array_prop(obj, name, "kernel", 2);
  const auto strides = uint_array_prop(obj, name, "strides", 2);
  const auto pads = uint_array_prop(obj, name, "pads", 4);
  return Pool2dParams{kernel[0], kernel[1], strides[0], strides[1], pads[0], pads[1], pads[2], pads[3]};
}

Output new_output(Napi::Env env, size_t bytes) {
  // V8 aborts the process when an ArrayBuffer allocation fails, so refuse absurd sizes first.
  constexpr uint64_t kMaxOutputBytes = uint64_t{4} << 30;  // not size_t: 2^32 wraps to 0 on armv7
  if (uint64_t{bytes} > kMaxOutputBytes)
    throw_error(env, ErrorKind::Range,
                "output: " + std::to_string(bytes) + " bytes exceeds the per-call limit of 4 GiB");
  // A Node Buffer's memory is not zero-filled (the operator writes every byte); its
  // ArrayBuffer is handed out whole, so it must not be a slice of a larger pool.
  Napi::Buffer<uint8_t> node_buffer = Napi::Buffer<uint8_t>::New(env, bytes);
  Napi::ArrayBuffer buffer = node_buffer.ArrayBuffer();
  if (node_buffer.ByteOffset() != 0 || buffer.ByteLength() != bytes) buffer = Napi::ArrayBuffer::New(env, bytes);
  return {buffer, static_cast<uint8_t*>(buffer.Data())};
}

Napi::Array shape_value(Napi::Env env, std::initializer_list<size_t> dims) {
  Napi::Array a = Napi::Array::New(env, dims.size());
  uint32_t i = 0;
  for (size_t d : dims) a.Set(i++, Napi::Number::New(env, static_cast<double>(d)));
  return a;
}

// Runs `work` now (sync) or on the libuv pool (async); both give {data, shape}. The async job
// keeps the output buffer referenced; only `work` runs off the main thread.
Napi::Value finish(Napi::Env env, bool async, const Output& out, std::function<void()> work,
                   std::function<Napi::Array(Napi::Env)> shape) {
  auto result = [shape](Napi::Env e, Napi::ArrayBuffer data) -> Napi::Value {
    Napi::Object r = Napi::Object::New(e);
    r.Set("data", data);
    r.Set("shape", shape(e));
    return r;
  };
  if (!async) {
    work();
    return result(env, out.buffer);
  }
  auto ref = std::make_shared<Napi::Reference<Napi::ArrayBuffer>>(Napi::Persistent(out.buffer));
  return queue_async(env, std::move(work), [ref, result](Napi::Env e) { return result(e, ref->Value()); });
}

namespace {
class Job : public Napi::AsyncWorker {
 public:
  Job(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> result)
      : Napi::AsyncWorker(env, "lowbit"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        result_(std::move(result)) {}

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      work_();
    } catch (const Error& e) {
      kind_ = e.kind();
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      kind_ = ErrorKind::Range;
      SetError("out of memory: the requested tensors are too large");
    } catch (const std::exception& e) {
      kind_ = ErrorKind::Internal;
      SetError(std::string("internal error: ") + e.what());
    }
  }

  // Both settle the Promise and throw nothing: they also run while a terminated worker's
  // environment drains its thread-pool jobs, when every N-API call that touches JS fails (the
  // Promise then dies with the environment; the job's references are released with it).
  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(result_(env));
    } catch (const Napi::Error& e) {
      reject(e);
    } catch (...) {
    }
  }

  void OnError(const Napi::Error& e) override {
    try {
      reject(to_js(Env(), kind_, e.Message()));
    } catch (...) {
    }
  }

 private:
  void reject(const Napi::Error& e) {
    try {
      deferred_.Reject(e.Value());
    } catch (...) {
    }
  }

  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> result_;
  ErrorKind kind_ = ErrorKind::Internal;
};
}  // namespace

Napi::Promise queue_async(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> result) {
  auto* job = new Job(env, std::move(work), std::move(result));
  Napi::Promise promise = job->promise();
  job->Queue();  // the worker deletes itself after OnOK/OnError
  return promise;
}

std::shared_ptr<ByteInput> byte_input(Napi::Value value, const std::string& name, bool async) {
  Napi::Env env = value.Env();
  const napi_typedarray_type type =
      value.IsTypedArray() ? value.As<Napi::TypedArray>().TypedArrayType() : napi_float64_array;
  if (type != napi_int8_array && type != napi_uint8_array)
    throw_error(env, ErrorKind::Type, name + ": expected an Int8Array (s8) or a Uint8Array (u8)");
  auto arg = typed_array<uint8_t>(value, type, name.c_str());
  auto in = std::make_shared<ByteInput>();
  in->is_signed = type == napi_int8_array;
  in->length = arg.length;
  if (async) {
    in->copy.assign(arg.data, arg.data + arg.length);
    in->data = in->copy.data();
  } else {
    in->data = arg.data;
  }
  return in;
}

void expect_length(Napi::Env env, const ByteInput& in, size_t expected, const std::string& name,
                   const std::string& what) {
  if (in.length != expected)
    throw_error(
        env, ErrorKind::Shape,
        name + ": " + what + " needs " + std::to_string(expected) + " values, got " + std::to_string(in.length));
}

void expect_disjoint(Napi::Env env, const void* out, size_t out_bytes, const void* in, size_t in_bytes) {
  const auto o = reinterpret_cast<uintptr_t>(out), i = reinterpret_cast<uintptr_t>(in);
  if (out_bytes == 0 || in_bytes == 0 || o >= i + in_bytes || i >= o + out_bytes) return;
  const uintptr_t shared = std::min(o + out_bytes, i + in_bytes) - std::max(o, i);
  throw_error(env, ErrorKind::Range,
              "out: shares " + std::to_string(shared) +
                  " bytes of memory with input; this operator cannot write in place, " +
                  "pass an out tensor over a separate buffer");
}

}  // namespace lowbit::js
