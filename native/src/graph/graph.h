// graph.h: the validated, immutable graph behind a Model: tensor descriptions and nodes that
// know how to run themselves on the buffers of one run.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lowbit {

enum class DType { F32, U8, S8, S32, B1 };

const char* dtype_name(DType t);

// One tensor of the graph, per sample (the batch N comes with each run).
struct TensorDesc {
  std::string name;
  DType dtype = DType::F32;
  std::vector<size_t> shape;  // rank 1 to 3; rank-3 f32 is [C, H, W] unless hwc, every other rank-3 [H, W, C]
  bool hwc = false;           // rank-3 f32 only: [H, W, C], a float activation inside the graph
  double scale = 1;           // u8 / s8 only
  int32_t zero_point = 0;     // u8 / s8 only
  size_t elements = 0;        // product of shape, <= 2^31 - 1
  size_t bytes = 0;           // storage of one sample (b1: ceil(C / 64) words per row)

  bool is_8bit() const { return dtype == DType::U8 || dtype == DType::S8; }
  bool is_signed() const { return dtype == DType::S8; }
  bool is_chw() const { return dtype == DType::F32 && shape.size() == 3 && !hwc; }
  size_t last() const { return shape.back(); }
  size_t rows() const { return elements / shape.back(); }  // per sample: the product of the leading dims
};

// The buffers of one run: every tensor's data (graph inputs and outputs are the caller's), the
// running node's scratch (scratch_bytes x batch, or null) and the batch size.
struct RunBuffers {
  size_t batch = 0;
  uint8_t* const* tensor = nullptr;
  uint8_t* scratch = nullptr;
};

class Node {
 public:
  virtual ~Node() = default;
  virtual void run(const RunBuffers& b) const = 0;

  std::string name, op;
  std::vector<uint32_t> inputs, outputs;  // tensor indices
  size_t scratch_bytes = 0;               // per sample

 protected:
  const uint8_t* in(const RunBuffers& b, size_t i = 0) const { return b.tensor[inputs[i]]; }
  uint8_t* out(const RunBuffers& b) const { return b.tensor[outputs[0]]; }
};

struct GraphIo {
  std::string name;
  uint32_t tensor = 0;
};

struct Graph {
  std::vector<TensorDesc> tensors;
  std::vector<GraphIo> inputs, outputs;
  std::vector<std::unique_ptr<Node>> nodes;
};

}  // namespace lowbit
