// mst_ops.cc: N-API entry points of the MST schedules (lowbit/mst.h): building, serializing and
// loading them, their positions and cost model, and the schedule argument of bconv2d / bdense.
// A schedule handle keeps the weights it was built from alive.
#include "mst_ops.h"

#include <algorithm>

#include "binary_ops.h"
#include "handle.h"
#include "lowbit/runtime.h"
#include "napi_args.h"

namespace lowbit::js {
namespace {

std::shared_ptr<BoundMst> bind_mst(std::shared_ptr<MstSchedule> schedule,
                                   std::shared_ptr<BinaryConv2dWeights> weights) {
  auto plan = compile_mst(*schedule, *weights);
  return std::make_shared<BoundMst>(BoundMst{std::move(schedule), std::move(weights), std::move(plan)});
}

std::shared_ptr<BoundMst> schedule_arg(Napi::Value value) {
  return unwrap_handle<BoundMst>(value, instance_data(value.Env()).mst_schedules,
                                 "schedule: expected an MST schedule (from buildMst)");
}

template <typename T>
Napi::Value typed_copy(Napi::Env env, const std::vector<T>& v) {
  auto out = Napi::TypedArrayOf<T>::New(env, v.size());
  std::copy(v.begin(), v.end(), out.Data());
  return out;
}

// The JS view of a schedule: {handle, order, parent, negate, depth, cost, stats}.
Napi::Object schedule_value(Napi::Env env, std::shared_ptr<BoundMst> bound) {
  const MstSchedule& s = *bound->schedule;
  Napi::Object out = Napi::Object::New(env);
  out.Set("handle", wrap_handle(env, instance_data(env).mst_schedules, bound));
  out.Set("order", typed_copy(env, s.order));
  out.Set("parent", typed_copy(env, s.parent));
  out.Set("negate", typed_copy(env, s.negate));
  out.Set("depth", typed_copy(env, s.depth));
  out.Set("cost", typed_copy(env, s.cost));
  out.Set("totalDistance", Napi::Number::New(env, static_cast<double>(s.total_distance)));
  out.Set("maxDepth", Napi::Number::New(env, static_cast<double>(s.max_depth)));
  out.Set("opRatio", Napi::Number::New(env, s.op_ratio));
  out.Set("storageRatio", Napi::Number::New(env, s.storage_ratio));
  return out;
}

// buildMst(weights, maxDepth (-1: none), allowNegation) -> schedule_value
Napi::Value BuildMst(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    auto weights = binary_weights_arg(info[0]);
    MstOptions options;
    if (!info[1].IsNumber()) throw_error(env, ErrorKind::Type, "maxDepth: expected a number");
    const double depth = info[1].As<Napi::Number>().DoubleValue();
    if (depth != -1) options.max_depth = uint_arg(info[1], "maxDepth");
    options.allow_negation = info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
    return schedule_value(env, bind_mst(build_mst(*weights, options), weights));
  });
}

// serializeMst(handle) -> Uint8Array: the schedule with its compressed weights
Napi::Value SerializeMst(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto bound = schedule_arg(info[0]);
    return typed_copy(info.Env(), serialize_mst(*bound->schedule, *bound->weights));
  });
}

// loadMst(bytes: Uint8Array) -> {weights: handle, shape, groups, schedule: schedule_value}
Napi::Value LoadMst(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    auto bytes = typed_array<uint8_t>(info[0], napi_uint8_array, "bytes");
    MstLayer layer = deserialize_mst(bytes.data, bytes.length);
    const BinaryConv2dWeights& w = *layer.weights;
    Napi::Object out = Napi::Object::New(env);
    out.Set("weights", binary_weights_value(env, layer.weights));
    out.Set("shape", shape_value(env, {w.out_channels, w.kernel_h, w.kernel_w, w.in_channels_per_group}));
    out.Set("groups", Napi::Number::New(env, static_cast<double>(w.groups)));
    out.Set("schedule", schedule_value(env, bind_mst(layer.schedule, layer.weights)));
    return out;
  });
}

// mstPositions(handle, channel) -> Uint32Array: the bit positions the channel evaluates
Napi::Value MstPositions(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto bound = schedule_arg(info[0]);
    const size_t c = uint_arg(info[1], "channel");
    if (c >= bound->schedule->channels)
      throw_error(info.Env(), ErrorKind::Range,
                  "channel: expected an integer below " + std::to_string(bound->schedule->channels));
    return typed_copy(info.Env(), mst_positions(*bound->schedule, *bound->weights, c));
  });
}

// mstCost(handle, pixels) -> {dense, mst, useMst, runnable}: the cost model for a call over
// `pixels` output pixels with the current threads and ISA (runnable: false where no plan exists).
Napi::Value EstimateMstCost(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    auto bound = schedule_arg(info[0]);
    const size_t pixels = uint_arg(info[1], "pixels");
    Napi::Object out = Napi::Object::New(env);
    const MstCost cost = bound->plan ? mst_cost(*bound->plan, pixels, num_threads(), active_isa()) : MstCost{};
    out.Set("dense", Napi::Number::New(env, cost.dense));
    out.Set("mst", Napi::Number::New(env, cost.mst));
    out.Set("useMst", Napi::Boolean::New(env, cost.use_mst));
    out.Set("runnable", Napi::Boolean::New(env, bound->plan != nullptr));
    return out;
  });
}

}  // namespace

// The optional schedule of a bconv2d / bdense call: call.mst (a schedule handle or undefined) and
// call.mstPolicy ('auto', the default, or 'always'). Returns null for none, or where the cost model
// may pick dense anyway and no plan exists.
std::shared_ptr<BoundMst> call_schedule(Napi::Env env, Napi::Object call,
                                        const std::shared_ptr<BinaryConv2dWeights>& weights, MstPolicy& policy) {
  const Napi::Value handle = call.Get("mst");
  if (handle.IsUndefined() || handle.IsNull()) return nullptr;
  auto bound = schedule_arg(handle);
  if (bound->weights != weights)
    throw_error(env, ErrorKind::Shape, "mst: the schedule was built for other weights (use the weights it came with)");
  const Napi::Value name = call.Get("mstPolicy");
  const std::string value = name.IsString() ? name.As<Napi::String>().Utf8Value() : name.IsUndefined() ? "auto" : "";
  if (value != "auto" && value != "always")
    throw_error(env, ErrorKind::Range, "mstPolicy: expected 'auto' or 'always'");
  policy = value == "always" ? MstPolicy::Always : MstPolicy::Auto;
  if (!bound->plan) {
    if (policy == MstPolicy::Always)
      throw_error(env, ErrorKind::Range,
                  "mst: this layer is too large for the MST path (more than " + std::to_string(kMstMaxRows) +
                      " weight positions x groups, or a plan over " + std::to_string(kMstMaxEntries) + " entries)");
    return nullptr;
  }
  return bound;
}

void init_mst_ops(Napi::Env env, Napi::Object exports) {
  instance_data(env).mst_schedules = Handle<BoundMst>::define(env, "MstScheduleHandle");
  exports.Set("buildMst", Napi::Function::New(env, BuildMst, "buildMst"));
  exports.Set("serializeMst", Napi::Function::New(env, SerializeMst, "serializeMst"));
  exports.Set("loadMst", Napi::Function::New(env, LoadMst, "loadMst"));
  exports.Set("mstPositions", Napi::Function::New(env, MstPositions, "mstPositions"));
  exports.Set("mstCost", Napi::Function::New(env, EstimateMstCost, "mstCost"));
}

}  // namespace lowbit::js
