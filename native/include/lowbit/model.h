// model.h: whole networks from `.lowbit` files (docs/model-format.md). load_model checks the
// container, the JSON graph and every operator's attributes and data before it allocates anything
// large, packs the weights once, and returns an immutable Model; Model::run executes the nodes in
// order on activation buffers from a pooled, lifetime-planned arena. One Model may run on many
// threads at once; each run takes its own arena.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/error.h"

namespace lowbit {

// A graph input or output as the file declares it: the shape is one sample's, in the tensor's
// layout (rank-3 f32 tensors are [C, H, W]).
struct ModelIo {
  std::string name;
  std::string dtype;  // "f32"
  std::vector<size_t> shape;
  size_t elements = 0;  // per sample: the product of shape
};

struct ModelNodeInfo {
  std::string name, op;
};

// The activation memory of one run with a given batch (graph inputs and outputs are the caller's).
struct MemoryPlanInfo {
  size_t arena_bytes = 0;   // one arena: tensors whose lifetimes do not overlap share bytes
  size_t tensor_bytes = 0;  // the sum of the same tensors' sizes (what no sharing would take)
};

// How a file is turned into a runnable graph; the defaults are what users get.
struct LoadOptions {
  // Fold each residual qadd into the qconv2d that writes its input (graph/fusion.h); false keeps
  // the graph as stored (the tests' unfused twin).
  bool fuse_residual_adds = true;
  // The largest activation arena one run takes: a batch whose arena would be larger runs in
  // chunks of the batch, each within the cap if it can be: a chunk holds at least one sample, and
  // in graphs with float convolutions a multiple of 6 (their GEMM's row block; other splits would
  // change float sums). Outputs are the same bit for bit: operators compute samples on their own.
  size_t max_activation_bytes = size_t{256} << 20;
  // The most bytes of idle arenas the pool keeps: an arena given back that would take the pool
  // above it is freed, so one huge batch does not hold its memory for good.
  size_t max_pooled_bytes = size_t{64} << 20;
};

// What Model::run throws when its cancel flag is set: before the first node, or between nodes.
class RunCancelled : public Error {
 public:
  RunCancelled() : Error(ErrorKind::Range, "run: cancelled") {}
};

class Model {
 public:
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const std::string& json() const;  // the graph section as stored
  const std::vector<ModelIo>& inputs() const;
  const std::vector<ModelIo>& outputs() const;
  std::vector<ModelNodeInfo> nodes() const;

  // Plans (or recalls) the arena of `batch` samples at once (before any chunking). Throws Error(Range) for batch 0
  // or sizes that overflow.
  MemoryPlanInfo memory_plan(size_t batch) const;

  // Runs `batch` samples: inputs[i] holds batch x inputs()[i].elements floats, outputs[i] receives
  // batch x outputs()[i].elements (in the order of the file's inputs / outputs). Throws Error(Range)
  // for batch 0, a null buffer or sizes that overflow; operator errors propagate as lowbit::Error.
  // A batch whose arena exceeds LoadOptions::max_activation_bytes runs in chunks. `cancel`, when
  // given, is read before the run and between nodes: once true the run stops there and throws
  // RunCancelled (outputs then hold partial results); the arena goes back to the pool either way.
  void run(size_t batch, const float* const* inputs, float* const* outputs,
           const std::atomic<bool>* cancel = nullptr) const;

  // run() that also times each node (steady_clock around its run): node_seconds[i] receives node
  // i's wall time in seconds (nodes() order, summed over chunks). Returns the whole call's seconds (plan, arena and
  // nodes), the total that the nodes' times are shares of. run() itself times nothing.
  double run_profiled(size_t batch, const float* const* inputs, float* const* outputs, double* node_seconds) const;

  // How many arenas runs have allocated (or grown) so far: a steady stream of runs with one
  // batch size allocates one per concurrent run, then none.
  size_t arena_allocations() const;

  // Native bytes the model keeps: its file's size (about what the graph and packed weights take)
  // plus every pooled arena, which grows with the largest batches run at once. For the bindings,
  // which report it to the JS engine's garbage collector.
  size_t memory_bytes() const;

  struct Impl;

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  friend std::shared_ptr<const Model> load_model(const uint8_t* data, size_t size, const LoadOptions& options);
  std::unique_ptr<Impl> impl_;
};

// Parses and validates a whole `.lowbit` file; copies what it keeps (the caller's buffer may go
// away). Throws Error(Format) naming the section, JSON path or node and field.
std::shared_ptr<const Model> load_model(const uint8_t* data, size_t size, const LoadOptions& options = {});

}  // namespace lowbit
