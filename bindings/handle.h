// handle.h: opaque JS handles that own native objects (packed weights, models) through a shared pointer,
// so async jobs can keep the object alive after JS drops the handle. Each handle reports the native
// bytes it keeps alive to V8 (napi_adjust_external_memory): without that, V8 sees a few small
// objects, never feels pressure to collect them, and dropped models pile up in native memory.
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "napi_args.h"

namespace lowbit::js {

// The classes of the handles, per addon instance (set once in addon.cc).
struct InstanceData {
  Napi::FunctionReference binary_weights;
  Napi::FunctionReference qconv_weights;
  Napi::FunctionReference mst_schedules;
  Napi::FunctionReference models;
};

// Constructed only natively, with the object passed as an External; a script calling
// `new handle.constructor()` gets a TypeError, never an empty handle.
template <typename T>
class Handle : public Napi::ObjectWrap<Handle<T>> {
 public:
  static Napi::FunctionReference define(Napi::Env env, const char* name) {
    return Napi::Persistent(Handle::DefineClass(env, name, {}));
  }
  explicit Handle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Handle<T>>(info) {
    if (info.Length() != 1 || !info[0].IsExternal())
      throw_error(info.Env(), ErrorKind::Type,
                  "lowbit handles (packed weights, MST schedules, models) are created by the lowbit functions "
                  "(packBinaryConv2dWeights, packQConv2dWeights, loadModel, ...), not directly");
    value = *info[0].As<Napi::External<std::shared_ptr<T>>>().Data();
  }
  // The finalizer (or env teardown) undoes what is still reported. The raw call, whose status is
  // ignored: nothing may throw from a destructor.
  ~Handle() {
    int64_t total;
    if (reported_ != 0) napi_adjust_external_memory(this->Env(), -reported_, &total);
  }

  // Reports that the handle now keeps `bytes` native bytes alive (0 on dispose): adjusts V8's
  // external memory by the change since the last report, so each byte is counted exactly once.
  void report(Napi::Env env, size_t bytes) {
    const int64_t now = static_cast<int64_t>(bytes);
    if (now == reported_) return;
    int64_t total;
    if (napi_adjust_external_memory(env, now - reported_, &total) == napi_ok) reported_ = now;
  }

  std::shared_ptr<T> value;

 private:
  int64_t reported_ = 0;
};

// A new handle of class cls owning `value`, which keeps `bytes` native bytes alive.
template <typename T>
Napi::Object wrap_handle(Napi::Env env, Napi::FunctionReference& cls, std::shared_ptr<T> value, size_t bytes = 0) {
  Napi::Object object = cls.New({Napi::External<std::shared_ptr<T>>::New(env, &value)});
  Handle<T>::Unwrap(object)->report(env, bytes);
  return object;
}

// The object behind a handle of class cls, or a TypeError with `message`.
template <typename T>
std::shared_ptr<T> unwrap_handle(Napi::Value value, Napi::FunctionReference& cls, const std::string& message) {
  Handle<T>* handle = value.IsObject() && value.As<Napi::Object>().InstanceOf(cls.Value())
                          ? Handle<T>::Unwrap(value.As<Napi::Object>())
                          : nullptr;
  if (handle == nullptr || !handle->value) throw_error(value.Env(), ErrorKind::Type, message);
  return handle->value;
}

inline InstanceData& instance_data(Napi::Env env) { return *env.GetInstanceData<InstanceData>(); }

}  // namespace lowbit::js
