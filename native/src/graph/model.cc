// model.cc: load_model (container -> JSON graph -> tensors, inputs, outputs, nodes, each checked
// against docs/model-format.md) and the executor (per-batch memory plans, pooled arenas, nodes in order).
#include "lowbit/model.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <set>

#include "common/checked_math.h"
#include "graph/container.h"
#include "graph/fusion.h"
#include "graph/graph.h"
#include "graph/json.h"
#include "graph/memory_plan.h"
#include "graph/node_builder.h"
#include "lowbit/aligned_buffer.h"
#include "lowbit/error.h"

namespace lowbit {

namespace {

constexpr int64_t kMaxDim = int64_t{1} << 24;
constexpr size_t kMaxElements = 2147483647;  // 2^31 - 1 per sample
constexpr size_t kMaxCachedPlans = 16;

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// An arena and the tensor pointer table of one run.
struct Arena {
  AlignedBuffer<uint8_t> bytes;
  size_t capacity = 0;
  std::vector<uint8_t*> tensor;
};

// A buffer of the arena: a tensor that is neither a graph input nor output, or a node's scratch.
struct ArenaBuffer {
  size_t first, last;  // node steps, inclusive
  size_t bytes;        // per sample
};

}  // namespace

struct Model::Impl {
  std::string json;
  Graph graph;
  std::vector<ModelIo> inputs, outputs;
  std::vector<ArenaBuffer> buffers;
  std::vector<int64_t> tensor_buffer;  // per tensor: its buffer, or -1 (the caller's, or never used)
  std::vector<int64_t> node_scratch;   // per node: its scratch buffer, or -1

  mutable std::mutex mutex;  // guards plans and arenas
  mutable std::map<size_t, std::shared_ptr<const Placement>> plans;
  mutable std::vector<std::unique_ptr<Arena>> arenas;  // free ones
  mutable std::atomic<size_t> allocations{0};
  size_t file_bytes = 0;
  size_t max_activation_bytes = 0, max_pooled_bytes = 0;  // LoadOptions
  mutable std::atomic<size_t> arena_bytes{0};             // the capacities of all arenas, leased or free
  mutable size_t pooled_bytes = 0;                        // the capacities of the free ones (under mutex)

  std::shared_ptr<const Placement> plan(size_t batch) const;
  std::unique_ptr<Arena> take_arena(size_t bytes) const;
  void give_back(std::unique_ptr<Arena> arena) const;
  // The most samples per chunk whose arena fits max_activation_bytes (at least 1, at most batch).
  size_t chunk_size(size_t batch) const;
  // Model::run, and with node_seconds (one per node) Model::run_profiled's per-node times.
  void run(size_t batch, const float* const* inputs, float* const* outputs, double* node_seconds,
           const std::atomic<bool>* cancel) const;
};

// ---- executor ------------------------------------------------------------------------------------------

std::shared_ptr<const Placement> Model::Impl::plan(size_t batch) const {
  if (batch == 0) fail(ErrorKind::Range, "batch: expected at least 1 sample");
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = plans.find(batch);
    if (it != plans.end()) return it->second;
  }
  // Every buffer of the run must be representable: the caller's (f32) and the arena's.
  for (const auto* list : {&inputs, &outputs})
    for (const ModelIo& io : *list) checked_mul(checked_mul(batch, io.elements, "batch x sample"), 4, "batch x sample");
  std::vector<PlanBuffer> sized(buffers.size());
  for (size_t i = 0; i < buffers.size(); ++i)
    sized[i] =
        PlanBuffer{buffers[i].first, buffers[i].last, checked_mul(batch, buffers[i].bytes, "batch x tensor size")};
  auto placement = std::make_shared<const Placement>(place_buffers(sized));
  std::lock_guard<std::mutex> lock(mutex);
  if (plans.size() >= kMaxCachedPlans) plans.erase(plans.begin());
  plans.emplace(batch, placement);
  return placement;
}

std::unique_ptr<Arena> Model::Impl::take_arena(size_t bytes) const {
  std::unique_ptr<Arena> arena;
  {
    std::lock_guard<std::mutex> lock(mutex);
    // The smallest free arena that is large enough, else the largest (grown below).
    auto best = arenas.end();
    for (auto it = arenas.begin(); it != arenas.end(); ++it)
      if ((*it)->capacity >= bytes && (best == arenas.end() || (*it)->capacity < (*best)->capacity)) best = it;
    if (best == arenas.end())
      best = std::max_element(arenas.begin(), arenas.end(),
                              [](const auto& a, const auto& b) { return a->capacity < b->capacity; });
    if (best != arenas.end()) {
      pooled_bytes -= (*best)->capacity;
      arena = std::move(*best);
      arenas.erase(best);
    }
  }
  if (!arena) {
    arena = std::make_unique<Arena>();
    arena->tensor.resize(graph.tensors.size());
  }
  if (arena->capacity < bytes) {
    arena->bytes.resize(bytes);
    arena_bytes += bytes - arena->capacity;
    arena->capacity = bytes;
    ++allocations;
  }
  return arena;
}

// Pool policy: idle arenas total at most max_pooled_bytes; one that does not fit is freed (runs
// that need it again allocate it anew, a cost small next to a run that large).
void Model::Impl::give_back(std::unique_ptr<Arena> arena) const {
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (pooled_bytes + arena->capacity <= max_pooled_bytes) {
      pooled_bytes += arena->capacity;
      arenas.push_back(std::move(arena));
      return;
    }
  }
  arena_bytes -= arena->capacity;
  arena.reset();  // freed outside the lock
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

const std::string& Model::json() const { return impl_->json; }
const std::vector<ModelIo>& Model::inputs() const { return impl_->inputs; }
const std::vector<ModelIo>& Model::outputs() const { return impl_->outputs; }
size_t Model::arena_allocations() const { return impl_->allocations.load(); }
size_t Model::memory_bytes() const { return impl_->file_bytes + impl_->arena_bytes.load(); }

std::vector<ModelNodeInfo> Model::nodes() const {
  std::vector<ModelNodeInfo> out;
  for (const auto& n : impl_->graph.nodes) out.push_back({n->name, n->op});
  return out;
}

MemoryPlanInfo Model::memory_plan(size_t batch) const {
  const auto p = impl_->plan(batch);
  return {p->arena_bytes, p->total_bytes};
}

void Model::run(size_t batch, const float* const* inputs, float* const* outputs,
                const std::atomic<bool>* cancel) const {
  impl_->run(batch, inputs, outputs, nullptr, cancel);
}

double Model::run_profiled(size_t batch, const float* const* inputs, float* const* outputs,
                           double* node_seconds) const {
  if (node_seconds == nullptr) fail(ErrorKind::Range, "node_seconds: null buffer");
  const auto start = Clock::now();
  std::fill(node_seconds, node_seconds + impl_->graph.nodes.size(), 0.0);
  impl_->run(batch, inputs, outputs, node_seconds, nullptr);
  return seconds_since(start);
}

size_t Model::Impl::chunk_size(size_t batch) const {
  if (plan(batch)->arena_bytes <= max_activation_bytes || batch == 1) return batch;
  // Arenas grow about linearly with the batch: start from the per-sample estimate, then shrink
  // until the plan fits (alignment can make a plan a little larger than the estimate).
  const size_t one = std::max<size_t>(plan(1)->arena_bytes, 1);
  size_t chunk = std::min(batch - 1, std::max<size_t>(max_activation_bytes / one, 1));
  while (chunk > 1) {
    const size_t bytes = plan(chunk)->arena_bytes;
    if (bytes <= max_activation_bytes) break;
    chunk = std::min(chunk - 1, static_cast<size_t>(static_cast<double>(chunk) * max_activation_bytes / bytes));
    chunk = std::max<size_t>(chunk, 1);
  }
  return chunk;
}

void Model::Impl::run(size_t batch, const float* const* inputs, float* const* outputs, double* node_seconds,
                      const std::atomic<bool>* cancel) const {
  const Impl& m = *this;
  const size_t chunk = chunk_size(batch);
  for (size_t i = 0; i < m.inputs.size(); ++i)
    if (inputs == nullptr || inputs[i] == nullptr)
      fail(ErrorKind::Range, "inputs[" + std::to_string(i) + "]: null buffer");
  for (size_t i = 0; i < m.outputs.size(); ++i)
    if (outputs == nullptr || outputs[i] == nullptr)
      fail(ErrorKind::Range, "outputs[" + std::to_string(i) + "]: null buffer");
  const auto cancelled = [cancel] { return cancel && cancel->load(std::memory_order_relaxed); };
  if (cancelled()) throw RunCancelled();

  // One arena for every chunk; it goes back to the pool however the run ends.
  const auto plan = m.plan(chunk);
  struct Lease {
    const Impl& m;
    std::unique_ptr<Arena> arena;
    ~Lease() { m.give_back(std::move(arena)); }
  } lease{m, m.take_arena(plan->arena_bytes)};
  Arena& a = *lease.arena;
  for (size_t t = 0; t < a.tensor.size(); ++t)
    a.tensor[t] = m.tensor_buffer[t] >= 0 ? a.bytes.data() + plan->offsets[m.tensor_buffer[t]] : nullptr;

  for (size_t start = 0; start < batch; start += chunk) {
    const size_t n = std::min(chunk, batch - start);  // the last chunk may be smaller: same offsets fit
    // Nodes only read graph inputs: the const_cast never leads to a write.
    for (size_t i = 0; i < m.inputs.size(); ++i)
      a.tensor[m.graph.inputs[i].tensor] =
          reinterpret_cast<uint8_t*>(const_cast<float*>(inputs[i] + start * m.inputs[i].elements));
    for (size_t i = 0; i < m.outputs.size(); ++i)
      a.tensor[m.graph.outputs[i].tensor] = reinterpret_cast<uint8_t*>(outputs[i] + start * m.outputs[i].elements);
    for (size_t i = 0; i < m.graph.nodes.size(); ++i) {
      if (cancelled()) throw RunCancelled();
      const int64_t scratch = m.node_scratch[i];
      const RunBuffers b{n, a.tensor.data(), scratch >= 0 ? a.bytes.data() + plan->offsets[scratch] : nullptr};
      if (node_seconds) {
        const auto t0 = Clock::now();
        m.graph.nodes[i]->run(b);
        node_seconds[i] += seconds_since(t0);
      } else {
        m.graph.nodes[i]->run(b);
      }
    }
  }
}

// ---- loader ----------------------------------------------------------------------------------------------

namespace {

// A tensor's byte size (< 2^34) as size_t; only a 32-bit platform can fail here.
size_t checked_bytes(const json::Value& shape, uint64_t bytes) {
  if (bytes > SIZE_MAX) shape.fail("the tensor's " + std::to_string(bytes) + " bytes exceed this platform's size_t");
  return static_cast<size_t>(bytes);
}

TensorDesc read_tensor(const json::Value& t) {
  t.expect_object();
  TensorDesc d;
  d.name = std::string(t.get("name").string());
  d.dtype = static_cast<DType>(t.get("dtype").one_of({"f32", "u8", "s8", "s32", "b1"}));
  const json::Value shape = t.get("shape");
  if (shape.size() < 1 || shape.size() > 3)
    shape.fail("expected 1 to 3 dimensions (one sample), got " + std::to_string(shape.size()));
  uint64_t elements = 1;  // 64-bit even where size_t is 32-bit (armv7)
  for (size_t i = 0; i < shape.size(); ++i) {
    d.shape.push_back(static_cast<size_t>(shape[i].integer(1, kMaxDim)));
    elements *= d.shape.back();  // <= (2^31 - 1) * 2^24: no overflow before the check
    if (elements > kMaxElements)
      shape.fail("the dimensions' product exceeds 2^31 - 1 (at dimension " + std::to_string(i) + ")");
  }
  d.elements = static_cast<size_t>(elements);
  if (const auto layout = t.find("layout")) {
    if (d.dtype != DType::F32 || d.shape.size() != 3) layout->fail("only rank-3 f32 tensors have a layout");
    d.hwc = layout->one_of({"chw", "hwc"}) == 1;
  }
  switch (d.dtype) {
    case DType::F32:
    case DType::S32:
      d.bytes = checked_bytes(shape, uint64_t{d.elements} * 4);
      break;
    case DType::B1:
      d.bytes = checked_bytes(shape, uint64_t{d.rows()} * words_for_bits(d.last()) * 8);
      break;
    default: {
      d.bytes = d.elements;
      const json::Value scale = t.get("scale");
      d.scale = scale.number();
      if (!(d.scale > 0)) scale.fail("expected a finite number > 0, got " + scale.describe());
      d.zero_point =
          static_cast<int32_t>(t.get("zero_point").integer(d.is_signed() ? -128 : 0, d.is_signed() ? 127 : 255));
    }
  }
  return d;
}

// inputs / outputs: unique names, unique f32 tensors.
std::vector<GraphIo> read_io(const json::Value& list, const std::vector<TensorDesc>& tensors) {
  if (list.size() == 0) list.fail("expected at least one entry");
  std::vector<GraphIo> out;
  std::set<std::string> names;
  std::set<size_t> used;
  for (size_t i = 0; i < list.size(); ++i) {
    const json::Value v = list[i];
    v.expect_object();
    const json::Value name = v.get("name"), tensor = v.get("tensor");
    GraphIo io{std::string(name.string()),
               static_cast<uint32_t>(tensor.integer(0, static_cast<int64_t>(tensors.size()) - 1))};
    if (!names.insert(io.name).second) name.fail("the name \"" + io.name + "\" is used twice");
    if (!used.insert(io.tensor).second) tensor.fail("tensor " + std::to_string(io.tensor) + " is listed twice");
    if (tensors[io.tensor].dtype != DType::F32)
      tensor.fail("tensor " + std::to_string(io.tensor) + " '" + tensors[io.tensor].name + "' is " +
                  dtype_name(tensors[io.tensor].dtype) + ", but graph inputs and outputs are f32");
    out.push_back(io);
  }
  return out;
}

std::vector<uint32_t> read_indices(const json::Value& list, size_t tensors) {
  std::vector<uint32_t> out(list.size());
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<uint32_t>(list[i].integer(0, static_cast<int64_t>(tensors) - 1));
  return out;
}

std::string tensor_label(const Graph& g, uint32_t t) {
  return "tensor " + std::to_string(t) + " '" + g.tensors[t].name + "'";
}

// Reads, checks and builds the nodes in order; returns the writer of each tensor (-1: none).
std::vector<int64_t> read_nodes(const json::Value& list, const std::vector<Section>& sections, Graph& g) {
  const size_t tensors = g.tensors.size();
  std::vector<int64_t> writer(tensors, -1);
  std::vector<char> is_input(tensors, 0);
  for (const GraphIo& io : g.inputs) is_input[io.tensor] = 1;
  for (size_t i = 0; i < list.size(); ++i) {
    const json::Value v = list[i];
    v.expect_object();
    const std::string name(v.get("name").string()), op(v.get("op").string());
    std::unique_ptr<Node> node;
    try {
      const OpInfo* info = find_op(op);
      if (!info) v.get("op").fail("unknown op \"" + op + "\"");
      const json::Value ins = v.get("inputs"), outs = v.get("outputs");
      const std::vector<uint32_t> in = read_indices(ins, tensors), out = read_indices(outs, tensors);
      if (info->max_inputs > info->inputs) {
        if (in.size() < info->inputs || in.size() > info->max_inputs)
          ins.fail("expected " + std::to_string(info->inputs) + " to " + std::to_string(info->max_inputs) +
                   " inputs, got " + std::to_string(in.size()));
      } else if (info->inputs ? in.size() != info->inputs : in.empty()) {
        ins.fail("expected " + (info->inputs ? std::to_string(info->inputs) : std::string("at least 1")) + " input" +
                 (info->inputs == 1 ? "" : "s") + ", got " + std::to_string(in.size()));
      }
      if (out.empty() || out.size() > info->max_outputs)
        outs.fail("expected " +
                  (info->max_outputs > 1 ? "1 to " + std::to_string(info->max_outputs) + " outputs" : "1 output") +
                  ", got " + std::to_string(out.size()));
      for (size_t k = 0; k < in.size(); ++k)
        if (!is_input[in[k]] && writer[in[k]] < 0)
          ins[k].fail(tensor_label(g, in[k]) + " is neither a graph input nor written by an earlier node");
      for (size_t k = 0; k < out.size(); ++k) {
        if (is_input[out[k]]) outs[k].fail(tensor_label(g, out[k]) + " is a graph input (no node may write it)");
        if (writer[out[k]] >= 0)
          outs[k].fail(tensor_label(g, out[k]) + " is already written by node '" + g.nodes[writer[out[k]]]->name + "'");
        for (size_t j = 0; j < k; ++j)
          if (out[j] == out[k]) outs[k].fail(tensor_label(g, out[k]) + " is listed twice");
      }
      node = info->build(NodeBuilder(v, g, sections, in, out));
      node->inputs = in, node->outputs = out;
    } catch (const Error& e) {
      fail(ErrorKind::Format, "node '" + name + "' (" + op + "): " + e.what());
    }
    node->name = name, node->op = op;
    for (uint32_t t : node->outputs) writer[t] = static_cast<int64_t>(i);
    g.nodes.push_back(std::move(node));
  }
  return writer;
}

ModelIo io_info(const GraphIo& io, const Graph& g) {
  const TensorDesc& t = g.tensors[io.tensor];
  return ModelIo{io.name, dtype_name(t.dtype), t.shape, t.elements};
}

}  // namespace

std::shared_ptr<const Model> load_model(const uint8_t* data, size_t size, const LoadOptions& options) {
  const std::vector<Section> sections = parse_container(data, size);
  auto m = std::make_unique<Model::Impl>();
  m->file_bytes = size;
  m->max_activation_bytes = options.max_activation_bytes;
  m->max_pooled_bytes = options.max_pooled_bytes;
  m->json.assign(reinterpret_cast<const char*>(sections[0].data), sections[0].size);
  const json::Document doc(m->json);
  const json::Value root = json::Value::root(doc);
  root.expect_object();
  const json::Value version = root.get("lowbit");
  if (version.type() != json::Type::Number || version.number() != 1)
    version.fail("expected 1 (the graph format version), got " + version.describe());

  Graph& g = m->graph;
  const json::Value tensors = root.get("tensors");
  if (tensors.size() == 0) tensors.fail("expected at least one tensor");
  for (size_t i = 0; i < tensors.size(); ++i) g.tensors.push_back(read_tensor(tensors[i]));
  g.inputs = read_io(root.get("inputs"), g.tensors);
  g.outputs = read_io(root.get("outputs"), g.tensors);
  const json::Value nodes = root.get("nodes");
  std::vector<int64_t> writer = read_nodes(nodes, sections, g);
  for (size_t i = 0; i < g.outputs.size(); ++i)
    if (writer[g.outputs[i].tensor] < 0)
      root.get("outputs")[i].get("tensor").fail(tensor_label(g, g.outputs[i].tensor) + " is not written by any node");
  if (options.fuse_residual_adds) fuse_residual_adds(g, writer);

  // Arena buffers: each tensor from the node that writes it to the last node that reads it; the
  // caller's inputs and outputs stay out; a node's scratch lives during that node only.
  std::vector<char> external(g.tensors.size(), 0);
  for (const auto* list : {&g.inputs, &g.outputs})
    for (const GraphIo& io : *list) external[io.tensor] = 1;
  m->tensor_buffer.assign(g.tensors.size(), -1);
  for (size_t t = 0; t < g.tensors.size(); ++t)
    if (writer[t] >= 0 && !external[t]) {
      m->tensor_buffer[t] = static_cast<int64_t>(m->buffers.size());
      m->buffers.push_back({static_cast<size_t>(writer[t]), static_cast<size_t>(writer[t]), g.tensors[t].bytes});
    }
  m->node_scratch.assign(g.nodes.size(), -1);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (uint32_t t : g.nodes[i]->inputs)
      if (m->tensor_buffer[t] >= 0) m->buffers[m->tensor_buffer[t]].last = i;  // nodes run in order: i only grows
    if (g.nodes[i]->scratch_bytes) {
      m->node_scratch[i] = static_cast<int64_t>(m->buffers.size());
      m->buffers.push_back({i, i, g.nodes[i]->scratch_bytes});
    }
  }
  for (const GraphIo& io : g.inputs) m->inputs.push_back(io_info(io, g));
  for (const GraphIo& io : g.outputs) m->outputs.push_back(io_info(io, g));
  return std::shared_ptr<const Model>(new Model(std::move(m)));
}

}  // namespace lowbit
