// model_ops.cc: N-API entry points of whole models. A handle owns a shared pointer to the
// immutable native Model; disposing it drops that pointer while async runs keep their own.
// Sync runs read the caller's Float32Arrays in place; async runs copy them on the main thread,
// run on the libuv pool, and wrap the outputs (allocated up front, like every async operator's)
// as Float32Arrays when the Promise settles.
#include "model_ops.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "handle.h"
#include "lowbit/model.h"
#include "napi_args.h"

namespace lowbit::js {
namespace {

using ModelHandle = Handle<const Model>;

// A model handle (TypeError for anything else).
ModelHandle& handle_arg(Napi::Value value) {
  Napi::Env env = value.Env();
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(instance_data(env).models.Value()))
    throw_error(env, ErrorKind::Type, "model: expected a model (from loadModel)");
  return *ModelHandle::Unwrap(value.As<Napi::Object>());
}

// Tells V8 what the model keeps in native memory now (its arenas grow with the batch); a disposed
// handle has reported 0 already.
void report_memory(Napi::Env env, ModelHandle& handle) {
  if (handle.value) handle.report(env, handle.value->memory_bytes());
}

// The model behind a handle; TypeError once disposed.
std::shared_ptr<const Model> model_arg(Napi::Value value) {
  ModelHandle& handle = handle_arg(value);
  if (!handle.value) throw_error(value.Env(), ErrorKind::Type, "model: disposed");
  return handle.value;
}

Napi::Array io_value(Napi::Env env, const std::vector<ModelIo>& list) {
  Napi::Array out = Napi::Array::New(env, list.size());
  for (uint32_t i = 0; i < list.size(); ++i) {
    Napi::Object io = Napi::Object::New(env);
    io.Set("name", Napi::String::New(env, list[i].name));
    io.Set("dtype", Napi::String::New(env, list[i].dtype));
    Napi::Array shape = Napi::Array::New(env, list[i].shape.size());
    for (uint32_t d = 0; d < list[i].shape.size(); ++d)
      shape.Set(d, Napi::Number::New(env, static_cast<double>(list[i].shape[d])));
    io.Set("shape", shape);
    out.Set(i, io);
  }
  return out;
}

// loadModel(bytes: Uint8Array, fuse: boolean, maxActivationBytes, maxPooledBytes) -> handle
Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    auto bytes = typed_array<uint8_t>(info[0], napi_uint8_array, "bytes");
    LoadOptions options;
    options.fuse_residual_adds = info[1].ToBoolean().Value();
    options.max_activation_bytes = uint_arg(info[2], "maxActivationBytes");
    options.max_pooled_bytes = uint_arg(info[3], "maxPooledBytes");
    auto model = load_model(bytes.data, bytes.length, options);
    return wrap_handle(env, instance_data(env).models, model, model->memory_bytes());
  });
}

// modelInfo(handle) -> {json, inputs: {name, dtype, shape}[], outputs: [...], nodes: {name, op}[]}
Napi::Value ModelInfo(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    auto model = model_arg(info[0]);
    Napi::Object out = Napi::Object::New(env);
    out.Set("json", Napi::String::New(env, model->json()));
    out.Set("inputs", io_value(env, model->inputs()));
    out.Set("outputs", io_value(env, model->outputs()));
    const auto nodes = model->nodes();
    Napi::Array list = Napi::Array::New(env, nodes.size());
    for (uint32_t i = 0; i < nodes.size(); ++i) {
      Napi::Object n = Napi::Object::New(env);
      n.Set("name", Napi::String::New(env, nodes[i].name));
      n.Set("op", Napi::String::New(env, nodes[i].op));
      list.Set(i, n);
    }
    out.Set("nodes", list);
    return out;
  });
}

// modelPlan(handle, batch) -> {arenaBytes, tensorBytes}
Napi::Value ModelPlan(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    auto model = model_arg(info[0]);
    const MemoryPlanInfo plan = model->memory_plan(uint_arg(info[1], "batch"));
    Napi::Object out = Napi::Object::New(env);
    out.Set("arenaBytes", Napi::Number::New(env, static_cast<double>(plan.arena_bytes)));
    out.Set("tensorBytes", Napi::Number::New(env, static_cast<double>(plan.tensor_bytes)));
    return out;
  });
}

// The checked arguments of a run: the model, the batch, and per model input its arrays (borrowed):
// one, or the parts that stack along the batch (a list in JS, e.g. the requests of a dynamic batch).
struct RunArgs {
  std::shared_ptr<const Model> model;
  size_t batch = 0;
  std::vector<std::vector<ArrayArg<float>>> inputs;
  std::vector<bool> listed;              // per input: given as a list of parts
  std::vector<Napi::Object> part_views;  // the listed parts' Float32Arrays (async runs keep them alive)
};

RunArgs run_args(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RunArgs a;
  a.model = model_arg(info[0]);
  a.batch = uint_arg(info[1], "batch");
  a.model->memory_plan(a.batch);  // RangeError for batch 0 or sizes that overflow
  if (!info[2].IsArray()) throw_error(env, ErrorKind::Type, "inputs: expected an array of Float32Array");
  const Napi::Array list = info[2].As<Napi::Array>();
  const auto& ios = a.model->inputs();
  if (list.Length() != ios.size())
    throw_error(env, ErrorKind::Shape,
                "inputs: the model has " + std::to_string(ios.size()) + " inputs, got " +
                    std::to_string(list.Length()) + " arrays");
  for (uint32_t i = 0; i < ios.size(); ++i) {
    const std::string name = "inputs[" + std::to_string(i) + "] ('" + ios[i].name + "')";
    const Napi::Value value = list.Get(i);
    const bool listed = value.IsArray();
    std::vector<Napi::Value> views;
    if (listed)
      for (uint32_t j = 0; j < value.As<Napi::Array>().Length(); ++j) views.push_back(value.As<Napi::Array>().Get(j));
    else
      views.push_back(value);
    std::vector<ArrayArg<float>> parts;
    size_t length = 0;  // no overflow: each part is an allocation, far below SIZE_MAX / parts
    for (size_t j = 0; j < views.size(); ++j) {
      const std::string part = listed ? name + "[" + std::to_string(j) + "]" : name;
      parts.push_back(typed_array<float>(views[j], napi_float32_array, part.c_str()));
      length += parts.back().length;
      if (listed) a.part_views.push_back(views[j].As<Napi::Object>());
    }
    if (length != a.batch * ios[i].elements)  // no overflow: memory_plan checked it
      throw_error(env, ErrorKind::Shape,
                  name + ": expected batch " + std::to_string(a.batch) + " x " + std::to_string(ios[i].elements) +
                      " values, got " + std::to_string(length));
    a.inputs.push_back(std::move(parts));
    a.listed.push_back(listed);
  }
  return a;
}

// The input pointers of a run: a lone array in place, parts stacked into `stacked` (kept alive by it).
std::vector<const float*> input_pointers(const std::vector<std::vector<ArrayArg<float>>>& inputs,
                                         std::vector<std::vector<float>>& stacked) {
  std::vector<const float*> in;
  for (const auto& parts : inputs) {
    if (parts.size() == 1) {
      in.push_back(parts[0].data);
      continue;
    }
    size_t length = 0;
    for (const auto& p : parts) length += p.length;
    stacked.emplace_back();
    stacked.back().reserve(length);
    for (const auto& p : parts) stacked.back().insert(stacked.back().end(), p.data, p.data + p.length);
    in.push_back(stacked.back().data());
  }
  return in;
}

// One Float32Array-to-be per model output, allocated now on the main thread.
std::vector<Output> new_outputs(Napi::Env env, const RunArgs& a) {
  std::vector<Output> out;
  for (const ModelIo& io : a.model->outputs()) out.push_back(new_output(env, a.batch * io.elements * 4));
  return out;
}

Napi::Array output_arrays(Napi::Env env, std::vector<Napi::ArrayBuffer> buffers) {
  Napi::Array out = Napi::Array::New(env, buffers.size());
  for (uint32_t i = 0; i < buffers.size(); ++i)
    out.Set(i, Napi::Float32Array::New(env, buffers[i].ByteLength() / 4, buffers[i], 0));
  return out;
}

// The buffers of a sync run: the caller's inputs in place (parts stacked), and new outputs.
struct SyncRun {
  std::vector<std::vector<float>> stacked;
  std::vector<const float*> in;
  std::vector<float*> out;
  std::vector<Napi::ArrayBuffer> buffers;
};

SyncRun sync_run(Napi::Env env, const RunArgs& a) {
  SyncRun r;
  r.in = input_pointers(a.inputs, r.stacked);
  for (const Output& o : new_outputs(env, a))
    r.out.push_back(reinterpret_cast<float*>(o.data)), r.buffers.push_back(o.buffer);
  return r;
}

// runModel(handle, batch, inputs: Float32Array[]) -> Float32Array[]
Napi::Value RunModel(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const RunArgs a = run_args(info);
    SyncRun r = sync_run(env, a);
    a.model->run(a.batch, r.in.data(), r.out.data());
    report_memory(env, handle_arg(info[0]));
    return output_arrays(env, r.buffers);
  });
}

// profileModel(handle, batch, inputs: Float32Array[], runs, warmup)
//   -> {outputs: Float32Array[] (the last run's), nodeMs: Float64Array (runs x nodes), totalMs: Float64Array (runs)}
// Runs on the calling thread: `warmup` untimed runs, then `runs` timed ones.
Napi::Value ProfileModel(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const RunArgs a = run_args(info);
    const size_t runs = uint_arg(info[3], "runs"), warmup = uint_arg(info[4], "warmup");
    if (runs == 0) throw_error(env, ErrorKind::Range, "runs: expected at least 1");
    const size_t nodes = a.model->nodes().size();
    const size_t cells = size_product(env, {runs, nodes}, "runs x nodes: too many");
    SyncRun r = sync_run(env, a);
    std::vector<double> seconds(nodes);
    for (size_t i = 0; i < warmup; ++i) a.model->run(a.batch, r.in.data(), r.out.data());
    Napi::Float64Array node_ms = Napi::Float64Array::New(env, cells), total_ms = Napi::Float64Array::New(env, runs);
    for (size_t run = 0; run < runs; ++run) {
      total_ms[run] = 1e3 * a.model->run_profiled(a.batch, r.in.data(), r.out.data(), seconds.data());
      for (size_t i = 0; i < nodes; ++i) node_ms[run * nodes + i] = 1e3 * seconds[i];
    }
    report_memory(env, handle_arg(info[0]));
    Napi::Object out = Napi::Object::New(env);
    out.Set("outputs", output_arrays(env, r.buffers));
    out.Set("nodeMs", node_ms);
    out.Set("totalMs", total_ms);
    return out;
  });
}

// A run's cancel flag, shared by the JS token and the queued run (which may outlive the token).
using CancelFlag = std::shared_ptr<std::atomic<bool>>;

// runToken() -> token: a cancel flag for one runModelAsync.
Napi::Value RunToken(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    return Napi::External<CancelFlag>::New(info.Env(), new CancelFlag(std::make_shared<std::atomic<bool>>(false)),
                                           [](Napi::Env, CancelFlag* flag) { delete flag; });
  });
}

CancelFlag token_arg(Napi::Value value) {
  if (!value.IsExternal()) throw_error(value.Env(), ErrorKind::Type, "token: expected a run token (from runToken)");
  return *value.As<Napi::External<CancelFlag>>().Data();
}

// cancelRun(token): a queued run it was given never starts; a running one stops at the next node.
Napi::Value CancelRun(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    token_arg(info[0])->store(true);
    return info.Env().Undefined();
  });
}

// runModelAsync(handle, batch, inputs: (Float32Array | Float32Array[])[], token?) -> Promise<Float32Array[]>
// A lone array is copied now (JS may reuse it at once); a list of parts is read on the pool thread,
// stacked there, so the caller must leave the parts unchanged until the promise settles (as fs.write
// asks of its buffers). A cancelled run rejects with RangeError 'run: cancelled' (the caller has
// settled its own promise).
Napi::Value RunModelAsync(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    RunArgs a = run_args(info);
    const CancelFlag cancel = info[3].IsUndefined() ? nullptr : token_arg(info[3]);
    auto copies = std::make_shared<std::vector<std::vector<float>>>();
    for (size_t i = 0; i < a.inputs.size(); ++i)
      if (!a.listed[i]) {
        const ArrayArg<float>& arg = a.inputs[i][0];
        copies->emplace_back(arg.data, arg.data + arg.length);
        a.inputs[i] = {{copies->back().data(), arg.length}};
      }
    auto parts = std::make_shared<std::vector<Napi::ObjectReference>>();
    for (const Napi::Object& view : a.part_views) parts->push_back(Napi::Persistent(view));
    const std::vector<Output> outs = new_outputs(env, a);
    std::vector<float*> out;
    auto refs = std::make_shared<std::vector<Napi::Reference<Napi::ArrayBuffer>>>();
    for (const Output& o : outs)
      out.push_back(reinterpret_cast<float*>(o.data)), refs->push_back(Napi::Persistent(o.buffer));
    auto work = [model = a.model, batch = a.batch, inputs = std::move(a.inputs), copies, out, cancel] {
      std::vector<std::vector<float>> stacked;
      const std::vector<const float*> in = input_pointers(inputs, stacked);
      model->run(batch, in.data(), out.data(), cancel.get());
    };
    auto handle = std::make_shared<Napi::ObjectReference>(Napi::Persistent(info[0].As<Napi::Object>()));
    // `parts` is released here, on the main thread, once the run is over.
    auto result = [refs, handle, parts](Napi::Env e) -> Napi::Value {
      report_memory(e, *ModelHandle::Unwrap(handle->Value()));
      std::vector<Napi::ArrayBuffer> buffers;
      for (auto& r : *refs) buffers.push_back(r.Value());
      return output_arrays(e, buffers);
    };
    return queue_async(env, std::move(work), std::move(result));
  });
}

// disposeModel(handle): drops the handle's model (in-flight async runs hold their own) and its
// report to V8; a no-op the second time.
Napi::Value DisposeModel(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    ModelHandle& handle = handle_arg(info[0]);
    handle.value.reset();
    handle.report(env, 0);
    return env.Undefined();
  });
}

}  // namespace

void init_model_ops(Napi::Env env, Napi::Object exports) {
  instance_data(env).models = ModelHandle::define(env, "ModelHandle");
  exports.Set("loadModel", Napi::Function::New(env, LoadModel, "loadModel"));
  exports.Set("modelInfo", Napi::Function::New(env, ModelInfo, "modelInfo"));
  exports.Set("modelPlan", Napi::Function::New(env, ModelPlan, "modelPlan"));
  exports.Set("runModel", Napi::Function::New(env, RunModel, "runModel"));
  exports.Set("profileModel", Napi::Function::New(env, ProfileModel, "profileModel"));
  exports.Set("runModelAsync", Napi::Function::New(env, RunModelAsync, "runModelAsync"));
  exports.Set("runToken", Napi::Function::New(env, RunToken, "runToken"));
  exports.Set("cancelRun", Napi::Function::New(env, CancelRun, "cancelRun"));
  exports.Set("disposeModel", Napi::Function::New(env, DisposeModel, "disposeModel"));
}

}  // namespace lowbit::js
