// node_builder.h: what an operator's loader sees of its node: the JSON object, its tensors and the
// file's data sections, with checks that name the field (the loader prefixes the node's name).
#pragma once
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "graph/container.h"
#include "graph/graph.h"
#include "graph/json.h"
#include "lowbit/binary.h"
#include "lowbit/conv.h"
#include "lowbit/error.h"

namespace lowbit {

class NodeBuilder {
 public:
  NodeBuilder(const json::Value& node, const Graph& graph, const std::vector<Section>& sections,
              const std::vector<uint32_t>& inputs, const std::vector<uint32_t>& outputs)
      : json(node), graph_(graph), sections_(sections), inputs_(inputs), outputs_(outputs) {}

  const json::Value json;

  size_t input_count() const { return inputs_.size(); }
  size_t output_count() const { return outputs_.size(); }
  const TensorDesc& input(size_t i = 0) const { return graph_.tensors[inputs_[i]]; }
  const TensorDesc& output(size_t i = 0) const { return graph_.tensors[outputs_[i]]; }

  // Throws Error(Format) with `message` (the loader adds the node's name).
  [[noreturn]] void fail(const std::string& message) const { lowbit::fail(ErrorKind::Format, message); }

  // "inputs[1] (tensor 4 'x')", "outputs[0] (tensor 5 'y')": how messages name a node's tensors.
  std::string input_name(size_t i = 0) const;
  std::string output_name(size_t i = 0) const;

  void expect_dtype(const TensorDesc& t, const std::string& role, std::initializer_list<DType> allowed) const;
  void expect_rank(const TensorDesc& t, const std::string& role, size_t rank) const;
  void expect_shape(const TensorDesc& t, const std::string& role, const std::vector<size_t>& shape) const;
  // Rank-3 f32 layouts: `t` must be hwc (true) or chw (false); other tensors pass.
  void expect_layout(const TensorDesc& t, const std::string& role, bool hwc) const;
  // An f32 operand of an operator on activations inside the graph: hwc or rank 1-2, not chw.
  void expect_not_chw(const TensorDesc& t, const std::string& role) const { expect_layout(t, role, true); }
  // Same dtype and, for 8-bit tensors, the same scale and zero point.
  void expect_same_parameters(const TensorDesc& a, const std::string& role_a, const TensorDesc& b,
                              const std::string& role_b) const;

  // Attributes.
  int64_t integer(const char* key, int64_t lo, int64_t hi) const { return json.get(key).integer(lo, hi); }
  std::vector<size_t> integers(const char* key, size_t count, int64_t lo, int64_t hi) const;
  bool boolean(const char* key) const { return json.get(key).boolean(); }
  // The index of the string value of `key` in `allowed`; `fallback` when optional and absent (-1: required).
  size_t choice(const char* key, std::initializer_list<const char*> allowed, int fallback = -1) const;
  Conv2dParams conv_params(bool with_pad_value) const;  // stride, dilation, pads (+ pad_value)
  Pool2dParams pool_params() const;                     // kernel, stride, pads
  std::pair<size_t, size_t> kernel() const;
  // `clamp` [lo, hi]: integers inside the range of `out`'s 8-bit dtype, lo <= hi.
  std::pair<int32_t, int32_t> clamp(const TensorDesc& out) const;
  // Optional `clamp` [lo, hi] of an f32 output: finite float32 values, lo <= hi; absent: +-infinity.
  std::pair<float, float> float_clamp() const;
  // A data field of `count` finite f32 values; optional: `fallback` repeated when the field is absent.
  std::vector<float> finite_floats(const char* key, size_t count) const;
  std::vector<float> optional_finite_floats(const char* key, size_t count, float fallback) const;

  // A data field { "section": k }: its bytes, exactly `count` values of T (what names T in messages).
  template <typename T>
  std::vector<T> data(const char* key, size_t count, const char* what) const {
    const std::pair<const uint8_t*, size_t> bytes = section_bytes(key, count, sizeof(T), what);
    std::vector<T> out(count);
    if (bytes.second != 0) std::memcpy(out.data(), bytes.first, bytes.second);  // little-endian host
    return out;
  }
  template <typename T>
  std::vector<T> optional_data(const char* key, size_t count, const char* what) const {
    return json.find(key) ? data<T>(key, count, what) : std::vector<T>();
  }
  // The bytes of a data field of any length (an MST schedule).
  std::pair<const uint8_t*, size_t> section_bytes(const char* key) const;

 private:
  std::pair<const uint8_t*, size_t> section_bytes(const char* key, size_t count, size_t size, const char* what) const;
  std::string tensor_name(uint32_t index) const;

  const Graph& graph_;
  const std::vector<Section>& sections_;
  const std::vector<uint32_t>& inputs_;
  const std::vector<uint32_t>& outputs_;
};

// An operator of the format: its name, how many inputs it takes, and its loader, which checks
// everything the format says about the node (dtypes, shapes, attributes, data) and packs its weights.
struct OpInfo {
  const char* name;
  size_t inputs;  // 0: one or more
  std::unique_ptr<Node> (*build)(const NodeBuilder& b);
  size_t max_inputs = 0;   // > inputs: the inputs after `inputs` are optional (bconv2d's residual)
  size_t max_outputs = 1;  // > 1: the outputs after the first are optional (bconv2d's sign bits)
};
struct OpTable {
  const OpInfo* ops;
  size_t count;
};
OpTable conv_ops();   // ops_conv.cc: qconv2d, qdense, bconv2d, bdense
OpTable small_ops();  // ops_small.cc: everything else
OpTable float_ops();  // ops_float.cc: fconv2d, fdense

// The operator called `name`, or null.
const OpInfo* find_op(std::string_view name);

}  // namespace lowbit
