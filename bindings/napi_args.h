// napi_args.h: JS value -> native value conversion with validation, error mapping, and the
// async job that runs native work on the libuv pool. Nothing here loops over tensor data.
#pragma once
#include <napi.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/conv.h"
#include "lowbit/error.h"

namespace lowbit::js {

// Throws a JS error of the class that matches `kind`, with a `code` the TypeScript layer maps to
// its named error classes (ShapeError, ...).
[[noreturn]] void throw_error(Napi::Env env, ErrorKind kind, const std::string& message);

// Runs `body`, turning every C++ exception into a JS exception: none crosses the N-API boundary.
Napi::Value guarded(const Napi::CallbackInfo& info, const std::function<Napi::Value()>& body);

// A typed array argument checked for kind and attachment; length in elements.
template <typename T>
struct ArrayArg {
  T* data;
  size_t length;
};
template <typename T>
ArrayArg<T> typed_array(Napi::Value value, napi_typedarray_type type, const char* name);
template <typename T>
std::vector<T> optional_vector(Napi::Object obj, const char* key, napi_typedarray_type type, size_t expected);

size_t uint_arg(Napi::Value value, const char* name);
// The product of sizes (an element count, a buffer size); throws Error(Range, overflow_message) when
// it overflows size_t.
size_t size_product(Napi::Env env, const std::vector<size_t>& factors, const std::string& overflow_message);
std::vector<size_t> uint_array(Napi::Value value, const char* name, size_t expected_length);
double number_prop(Napi::Object obj, const char* key, double fallback);
int32_t int_prop(Napi::Object obj, const char* key, double fallback);  // an integer in int32's range
// obj[key] as exactly `length` non-negative integers, like uint_array; errors name "<name>.<key>".
std::vector<size_t> uint_array_prop(Napi::Object obj, const std::string& name, const char* key, size_t length);

// The named geometry of a conv, { strides: [h, w], dilations: [h, w], pads: [top, left, bottom, right],
// padValue: 'one' | 'zero' }, read from `value` (errors name `name`). padValue is read only when
// `with_pad_value` (binary convs); integer convs pad with the input zero point and ignore it.
// Type, length and integer range are checked here; strides >= 1, pads < kernel etc. by the core.
Conv2dParams conv_geometry(Napi::Value value, const char* name, bool with_pad_value);
// The named window of a pool, { kernel: [h, w], strides: [h, w], pads: [top, left, bottom, right] }.
Pool2dParams pool_geometry(Napi::Value value, const char* name);
bool async_flag(const Napi::CallbackInfo& info, size_t index);  // info[index] === true

// The named options that end a conv / dense call, { async?, out?, mst?, mstPolicy? }: info[index],
// or an empty object when it is undefined. Throws Error(Type) for anything else.
Napi::Object call_options(const Napi::CallbackInfo& info, size_t index);
bool bool_prop(Napi::Object obj, const char* key);            // obj[key] === true
float scale_arg(Napi::Value value);                           // a number, as float32
int32_t byte_value_arg(Napi::Value value, const char* name);  // an integer in [-128, 255]

// Owned native output, handed to JS without a copy as an external ArrayBuffer (copied only if the
// runtime refuses external buffers, as Electron does).
// Output memory is a plain JS ArrayBuffer allocated up front on the main thread: V8 owns and
// recycles it (no page faults from fresh native blocks, no finalizer lag in tight sync loops),
// and nobody else can reach it before the call returns or its Promise settles.
struct Output {
  Napi::ArrayBuffer buffer;
  uint8_t* data;
};
Output new_output(Napi::Env env, size_t bytes);

// Native work that runs on the libuv thread pool and settles a Promise. `work` must own (or hold
// shared pointers to) everything it reads: it runs after the JS call has returned.
Napi::Promise queue_async(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> result);

Napi::Array shape_value(Napi::Env env, std::initializer_list<size_t> dims);

// An int8 or uint8 tensor's bytes: borrowed (sync) or owned (async, so JS may mutate or detach it).
struct ByteInput {
  const uint8_t* data = nullptr;
  size_t length = 0;
  bool is_signed = true;
  std::vector<uint8_t> copy;
};
std::shared_ptr<ByteInput> byte_input(Napi::Value value, const std::string& name, bool async);
// Throws a ShapeError "<name>: <what> needs <expected> values, got <length>" on a mismatch.
void expect_length(Napi::Env env, const ByteInput& in, size_t expected, const std::string& name,
                   const std::string& what);

// Throws a RangeError if a preallocated output [out, out + out_bytes) shares any byte with the
// input [in, in + in_bytes): the kernels would read inputs they have already overwritten.
// Compares addresses, so views of one buffer and aliases of one SharedArrayBuffer are both caught.
void expect_disjoint(Napi::Env env, const void* out, size_t out_bytes, const void* in, size_t in_bytes);

// Runs `work` now (sync) or on the libuv pool (async); both give {data: out's buffer, shape}.
Napi::Value finish(Napi::Env env, bool async, const Output& out, std::function<void()> work,
                   std::function<Napi::Array(Napi::Env)> shape);

}  // namespace lowbit::js
