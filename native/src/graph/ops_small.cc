// ops_small.cc: the format's boundary, element-wise, pooling and shape operators. On 8-bit
// tensors, pools, add, clamp and concat run the library's integer operators (lowbit/qops.h),
// validated at load by the same code (their validate_* forms, or a call with no elements); on f32
// activations they are elementwise_f32.h; the rest are elementwise.h.
#include <cmath>
#include <cstring>

#include "graph/elementwise.h"
#include "graph/elementwise_f32.h"
#include "graph/fusion.h"
#include "graph/node_builder.h"
#include "lowbit/qops.h"
#include "lowbit/quantize.h"

namespace lowbit {
namespace {

QuantParams quant(const TensorDesc& t) { return QuantParams{t.scale, t.zero_point}; }
int32_t dtype_min(const TensorDesc& t) { return t.is_signed() ? -128 : 0; }
int32_t dtype_max(const TensorDesc& t) { return t.is_signed() ? 127 : 255; }

// f32 rank-3 tensors are [C, H, W] (unless hwc), every other dtype's [H, W, C]: the shape an HWC
// tensor has as CHW and back. Lower ranks keep their dims (no layout change).
std::vector<size_t> to_chw(const std::vector<size_t>& s) {
  return s.size() == 3 ? std::vector<size_t>{s[2], s[0], s[1]} : s;
}
std::vector<size_t> to_hwc(const std::vector<size_t>& s) {
  return s.size() == 3 ? std::vector<size_t>{s[1], s[2], s[0]} : s;
}

// The layout change [hw][c] <-> [c][hw] of each of `images` per sample. Rank <= 2 and f32 hwc keep
// their order: each row is an "image" of one pixel.
struct Layout {
  size_t images, hw, c;
};
Layout layout_of(const TensorDesc& hwc, bool transposed) {
  return transposed ? Layout{1, hwc.shape[0] * hwc.shape[1], hwc.shape[2]} : Layout{hwc.rows(), 1, hwc.last()};
}

// The shape an f32 tensor must have to hold the 8-bit or s32 tensor `q` (CHW, or in order).
std::vector<size_t> f32_shape_of(const TensorDesc& f, const TensorDesc& q) {
  return f.is_chw() ? to_chw(q.shape) : q.shape;
}

inline const float* as_f32(const uint8_t* p) { return reinterpret_cast<const float*>(p); }
inline float* as_f32(uint8_t* p) { return reinterpret_cast<float*>(p); }

// ---- quantize / dequantize ---------------------------------------------------------------------

class QuantizeNode : public Node {
 public:
  Layout layout{};
  float scale = 1;
  int32_t zero_point = 0, lo = 0, hi = 0;
  void run(const RunBuffers& b) const override {
    quantize_chw_to_hwc(reinterpret_cast<const float*>(in(b)), b.batch * layout.images, layout.c, layout.hw, scale,
                        zero_point, lo, hi, out(b));
  }
};

std::unique_ptr<Node> build_quantize(const NodeBuilder& b) {
  const TensorDesc &x = b.input(), &y = b.output();
  b.expect_dtype(x, b.input_name(), {DType::F32});
  b.expect_dtype(y, b.output_name(), {DType::U8, DType::S8});
  b.expect_shape(y, b.output_name(), x.is_chw() ? to_hwc(x.shape) : x.shape);
  auto node = std::make_unique<QuantizeNode>();
  node->layout = layout_of(y, x.is_chw());
  node->scale = static_cast<float>(y.scale), node->zero_point = y.zero_point;
  node->lo = dtype_min(y), node->hi = dtype_max(y);
  quantize_f32(nullptr, 0, node->scale, node->zero_point, node->lo, node->hi, nullptr);  // checks the float32 scale
  return node;
}

class DequantizeNode : public Node {
 public:
  Layout layout{};
  bool is_signed = false;
  float scale = 1;
  int32_t zero_point = 0;
  void run(const RunBuffers& b) const override {
    dequantize_hwc_to_chw(in(b), is_signed, b.batch * layout.images, layout.hw, layout.c, scale, zero_point,
                          reinterpret_cast<float*>(out(b)));
  }
};

std::unique_ptr<Node> build_dequantize(const NodeBuilder& b) {
  const TensorDesc &x = b.input(), &y = b.output();
  b.expect_dtype(x, b.input_name(), {DType::U8, DType::S8});
  b.expect_dtype(y, b.output_name(), {DType::F32});
  b.expect_shape(y, b.output_name(), f32_shape_of(y, x));
  auto node = std::make_unique<DequantizeNode>();
  node->layout = layout_of(x, y.is_chw());
  node->is_signed = x.is_signed();
  node->scale = static_cast<float>(x.scale), node->zero_point = x.zero_point;
  dequantize_8bit(nullptr, 0, node->is_signed, node->scale, node->zero_point, nullptr);  // checks the float32 scale
  return node;
}

// ---- threshold / affine / sign / unpack ----------------------------------------------------------

class ThresholdNode : public Node {
 public:
  size_t rows = 0, c = 0;
  std::vector<int32_t> threshold;
  std::vector<uint8_t> flip;
  void run(const RunBuffers& b) const override {
    threshold_s32(reinterpret_cast<const int32_t*>(in(b)), b.batch * rows, c, threshold.data(), flip.data(),
                  reinterpret_cast<uint64_t*>(out(b)));
  }
};

std::unique_ptr<Node> build_threshold(const NodeBuilder& b) {
  const TensorDesc &x = b.input(), &y = b.output();
  b.expect_dtype(x, b.input_name(), {DType::S32});
  b.expect_dtype(y, b.output_name(), {DType::B1});
  b.expect_shape(y, b.output_name(), x.shape);
  auto node = std::make_unique<ThresholdNode>();
  node->rows = x.rows(), node->c = x.last();
  node->threshold = b.data<int32_t>("threshold", node->c, "s32");
  node->flip = b.data<uint8_t>("flip", node->c, "u8");
  for (size_t i = 0; i < node->c; ++i)
    if (node->flip[i] > 1)
      b.json.get("flip").fail("flip[" + std::to_string(i) + "] must be 0 or 1, got " + std::to_string(node->flip[i]));
  return node;
}

class AffineNode : public Node {
 public:
  Layout layout{};
  std::vector<float> scale, bias;
  float lo = -INFINITY, hi = INFINITY;
  void run(const RunBuffers& b) const override {
    affine_s32_to_chw(reinterpret_cast<const int32_t*>(in(b)), b.batch * layout.images, layout.hw, layout.c,
                      scale.data(), bias.data(), lo, hi, reinterpret_cast<float*>(out(b)));
  }
};

// A per-channel scale and shift on float activations (one that did not fold into a layer).
class AffineF32Node : public Node {
 public:
  size_t rows = 0, c = 0;
  std::vector<float> scale, bias;
  float lo = -INFINITY, hi = INFINITY;
  void run(const RunBuffers& b) const override {
    affine_f32(as_f32(in(b)), b.batch * rows, c, scale.data(), bias.data(), lo, hi, as_f32(out(b)));
  }
};

std::unique_ptr<Node> build_affine(const NodeBuilder& b) {
  const TensorDesc &x = b.input(), &y = b.output();
  if (x.dtype == DType::F32) {
    b.expect_not_chw(x, b.input_name());
    b.expect_dtype(y, b.output_name(), {DType::F32});
    b.expect_shape(y, b.output_name(), x.shape);
    b.expect_not_chw(y, b.output_name());
    auto node = std::make_unique<AffineF32Node>();
    node->rows = x.rows(), node->c = x.last();
    node->scale = b.finite_floats("scale", node->c);
    node->bias = b.finite_floats("bias", node->c);
    std::tie(node->lo, node->hi) = b.float_clamp();
    return node;
  }
  b.expect_dtype(x, b.input_name(), {DType::S32});
  b.expect_dtype(y, b.output_name(), {DType::F32});
  b.expect_shape(y, b.output_name(), f32_shape_of(y, x));
  auto node = std::make_unique<AffineNode>();
  node->layout = layout_of(x, y.is_chw());
  node->scale = b.finite_floats("scale", x.last());
  node->bias = b.finite_floats("bias", x.last());
  std::tie(node->lo, node->hi) = b.float_clamp();
  return node;
}

class SignNode : public Node {
 public:
  size_t rows = 0, c = 0;
  bool is_signed = false;
  int32_t zero_point = 0;
  std::vector<float> threshold;  // f32 input; empty for 8-bit
  void run(const RunBuffers& b) const override {
    uint64_t* bits = reinterpret_cast<uint64_t*>(out(b));
    if (threshold.empty())
      sign_8bit(in(b), is_signed, b.batch * rows, c, zero_point, bits);
    else
      sign_f32(as_f32(in(b)), b.batch * rows, c, threshold.data(), bits);
  }
};

std::unique_ptr<Node> build_sign(const NodeBuilder& b) {
  const TensorDesc &x = b.input(), &y = b.output();
  b.expect_dtype(x, b.input_name(), {DType::U8, DType::S8, DType::F32});
  b.expect_not_chw(x, b.input_name());
  b.expect_dtype(y, b.output_name(), {DType::B1});
  b.expect_shape(y, b.output_name(), x.shape);
  auto node = std::make_unique<SignNode>();
  node->rows = x.rows(), node->c = x.last(), node->is_signed = x.is_signed(), node->zero_point = x.zero_point;
  if (x.dtype == DType::F32) {
    // A ReActNet RSign sign(x + b) has threshold -b; +-infinity is allowed (a constant channel), NaN not.
    node->threshold =
        b.json.find("threshold") ? b.data<float>("threshold", node->c, "f32") : std::vector<float>(node->c, 0.0f);
    for (size_t i = 0; i < node->c; ++i)
      if (std::isnan(node->threshold[i])) b.json.get("threshold").fail("value " + std::to_string(i) + " is NaN");
  }
  return node;
}

class UnpackNode : public Node {
 public:
  size_t rows = 0, c = 0;
  bool to_f32 = false;
  void run(const RunBuffers& b) const override {
    const auto* bits = reinterpret_cast<const uint64_t*>(in(b));
    if (to_f32)
      unpack_b1_f32(bits, b.batch * rows, c, reinterpret_cast<float*>(out(b)));
    else
      unpack_b1(bits, b.batch * rows, c, reinterpret_cast<int8_t*>(out(b)));
  }
};

std::unique_ptr<Node> build_unpack(const NodeBuilder& b) {
  const TensorDesc &x = b.input(), &y = b.output();
  b.expect_dtype(x, b.input_name(), {DType::B1});
  b.expect_dtype(y, b.output_name(), {DType::S8, DType::F32});
  b.expect_shape(y, b.output_name(), x.shape);
  auto node = std::make_unique<UnpackNode>();
  node->to_f32 = y.dtype == DType::F32;
  if (node->to_f32)
    b.expect_not_chw(y, b.output_name());
  else if (y.scale != 1 || y.zero_point != 0)
    b.fail(b.output_name() + ": +-1 values need scale 1 and zero point 0");
  node->rows = x.rows(), node->c = x.last();
  return node;
}

// ---- pools -------------------------------------------------------------------------------------

// An 8-bit or b1 [H, W, C] input of a pool; the output shape must be the pool's.
struct PoolGeometry {
  size_t h, w, c;
  Pool2dParams p;
};

PoolGeometry pool_geometry(const NodeBuilder& b, bool b1) {
  const TensorDesc &x = b.input(), &y = b.output();
  b.expect_rank(x, b.input_name(), 3);
  b.expect_not_chw(x, b.input_name());
  b.expect_not_chw(y, b.output_name());
  PoolGeometry g{x.shape[0], x.shape[1], x.shape[2], b.pool_params()};
  const Conv2dShape s = b1 ? bmaxpool2d_shape(1, g.h, g.w, g.c, g.p) : qpool2d_shape(1, g.h, g.w, g.c, g.p);
  b.expect_shape(y, b.output_name(), {s.out_h, s.out_w, g.c});
  return g;
}

class MaxPoolNode : public Node {
 public:
  PoolGeometry g{};
  bool b1 = false, is_signed = false, f32 = false;
  void run(const RunBuffers& b) const override {
    if (f32) {
      maxpool_f32(as_f32(in(b)), qpool2d_shape(b.batch, g.h, g.w, g.c, g.p), g.p, as_f32(out(b)));
    } else if (b1) {
      const Conv2dShape s = bmaxpool2d_shape(b.batch, g.h, g.w, g.c, g.p);
      bmaxpool2d(reinterpret_cast<const uint64_t*>(in(b)), s, g.p, reinterpret_cast<uint64_t*>(out(b)));
    } else {
      qmaxpool2d(in(b), is_signed, qpool2d_shape(b.batch, g.h, g.w, g.c, g.p), g.p, out(b));
    }
  }
};

std::unique_ptr<Node> build_maxpool(const NodeBuilder& b) {
  const TensorDesc &x = b.input(), &y = b.output();
  b.expect_dtype(x, b.input_name(), {DType::U8, DType::S8, DType::B1, DType::F32});
  b.expect_same_parameters(x, b.input_name(), y, b.output_name());
  auto node = std::make_unique<MaxPoolNode>();
  node->b1 = x.dtype == DType::B1, node->is_signed = x.is_signed(), node->f32 = x.dtype == DType::F32;
  node->g = pool_geometry(b, node->b1);
  return node;
}

class AvgPoolNode : public Node {
 public:
  PoolGeometry g{};
  bool is_signed = false, count_include_pad = false, f32 = false;
  QuantParams in_q;
  QuantOutput out_q;
  void run(const RunBuffers& b) const override {
    if (f32)
      return avgpool_f32(as_f32(in(b)), qpool2d_shape(b.batch, g.h, g.w, g.c, g.p), g.p, count_include_pad,
                         as_f32(out(b)));
    qavgpool2d(in(b), is_signed, qpool2d_shape(b.batch, g.h, g.w, g.c, g.p), g.p, count_include_pad, in_q, out_q,
               out(b));
  }
};

std::unique_ptr<Node> build_avgpool(const NodeBuilder& b) {
  const TensorDesc &x = b.input(), &y = b.output();
  b.expect_dtype(x, b.input_name(), {DType::U8, DType::S8, DType::F32});
  auto node = std::make_unique<AvgPoolNode>();
  if (x.dtype == DType::F32) {
    b.expect_dtype(y, b.output_name(), {DType::F32});
    node->g = pool_geometry(b, false);
    node->f32 = true;
    node->count_include_pad = b.boolean("count_include_pad");
    return node;
  }
  b.expect_dtype(y, b.output_name(), {DType::U8, DType::S8});
  node->g = pool_geometry(b, false);
  node->is_signed = x.is_signed();
  node->count_include_pad = b.boolean("count_include_pad");
  node->in_q = quant(x);
  node->out_q.q = quant(y);
  std::tie(node->out_q.lo, node->out_q.hi) = b.clamp(y);
  validate_qavgpool2d(node->is_signed, qpool2d_shape(1, node->g.h, node->g.w, node->g.c, node->g.p), node->g.p,
                      node->count_include_pad, node->in_q, node->out_q);
  return node;
}

class GlobalAvgPoolNode : public Node {
 public:
  size_t h = 0, w = 0, c = 0;
  bool is_signed = false, f32 = false;
  QuantParams in_q;
  QuantOutput out_q;
  void run(const RunBuffers& b) const override {
    if (f32) return global_avgpool_f32(as_f32(in(b)), b.batch, h * w, c, as_f32(out(b)));
    qglobalavgpool(in(b), is_signed, b.batch, h, w, c, in_q, out_q, out(b));
  }
};

std::unique_ptr<Node> build_global_avgpool(const NodeBuilder& b) {
  const TensorDesc &x = b.input(), &y = b.output();
  b.expect_dtype(x, b.input_name(), {DType::U8, DType::S8, DType::F32});
  b.expect_dtype(y, b.output_name(),
                 x.dtype == DType::F32 ? std::initializer_list<DType>{DType::F32}
                                       : std::initializer_list<DType>{DType::U8, DType::S8});
  b.expect_rank(x, b.input_name(), 3);
  b.expect_not_chw(x, b.input_name());
  b.expect_not_chw(y, b.output_name());
  b.expect_shape(y, b.output_name(), {1, 1, x.shape[2]});
  auto node = std::make_unique<GlobalAvgPoolNode>();
  node->h = x.shape[0], node->w = x.shape[1], node->c = x.shape[2];
  if (x.dtype == DType::F32) {
    node->f32 = true;
    return node;
  }
  node->is_signed = x.is_signed();
  node->in_q = quant(x);
  node->out_q.q = quant(y);
  std::tie(node->out_q.lo, node->out_q.hi) = b.clamp(y);
  validate_qglobalavgpool(node->is_signed, node->h, node->w, node->c, node->in_q, node->out_q);
  return node;
}

// ---- add / clamp / prelu / concat -------------------------------------------------------------------

class AddNode : public Node {
 public:
  size_t elements = 0;
  bool a_signed = false, b_signed = false;
  QuantParams a_q, b_q;
  QuantOutput out_q;
  void run(const RunBuffers& b) const override {
    qadd(in(b, 0), a_signed, a_q, in(b, 1), b_signed, b_q, b.batch * elements, out_q, out(b));
  }
};

// f32 add and clamp: y = clamp(a + b) or clamp(x) elementwise, any layout (the same on every operand).
class AddF32Node : public Node {
 public:
  size_t elements = 0;
  float lo = -INFINITY, hi = INFINITY;
  void run(const RunBuffers& b) const override {
    if (inputs.size() == 2)
      add_f32(as_f32(in(b, 0)), as_f32(in(b, 1)), b.batch * elements, lo, hi, as_f32(out(b)));
    else
      clamp_f32(as_f32(in(b)), b.batch * elements, lo, hi, as_f32(out(b)));
  }
};

}  // namespace

bool qadd_node_info(const Node& node, QAddNodeInfo* info) {
  const auto* add = dynamic_cast<const AddNode*>(&node);
  if (!add) return false;
  *info = QAddNodeInfo{add->a_signed, add->b_signed, add->a_q, add->b_q, add->out_q};
  return true;
}

namespace {

// The f32 form of add (two inputs) and clamp (one, `clamp` required).
std::unique_ptr<Node> build_f32_add_or_clamp(const NodeBuilder& b) {
  const TensorDesc &x = b.input(0), &y = b.output();
  for (size_t i = 0; i < b.input_count(); ++i) {
    const TensorDesc& xi = b.input(i);
    b.expect_dtype(xi, b.input_name(i), {DType::F32});
    b.expect_shape(xi, b.input_name(i), x.shape);
    b.expect_layout(xi, b.input_name(i), x.hwc);
  }
  b.expect_dtype(y, b.output_name(), {DType::F32});
  b.expect_shape(y, b.output_name(), x.shape);
  b.expect_layout(y, b.output_name(), x.hwc);
  if (b.input_count() == 1) b.json.get("clamp");  // throws: missing field
  auto node = std::make_unique<AddF32Node>();
  node->elements = x.elements;
  std::tie(node->lo, node->hi) = b.float_clamp();
  return node;
}

std::unique_ptr<Node> build_add(const NodeBuilder& b) {
  const TensorDesc &x = b.input(0), &x2 = b.input(1), &y = b.output();
  if (x.dtype == DType::F32) return build_f32_add_or_clamp(b);
  b.expect_dtype(x, b.input_name(0), {DType::U8, DType::S8});
  b.expect_dtype(x2, b.input_name(1), {DType::U8, DType::S8});
  b.expect_dtype(y, b.output_name(), {DType::U8, DType::S8});
  b.expect_shape(x2, b.input_name(1), x.shape);
  b.expect_shape(y, b.output_name(), x.shape);
  auto node = std::make_unique<AddNode>();
  node->elements = x.elements;
  node->a_signed = x.is_signed(), node->b_signed = x2.is_signed();
  node->a_q = quant(x), node->b_q = quant(x2);
  node->out_q.q = quant(y);
  std::tie(node->out_q.lo, node->out_q.hi) = b.clamp(y);
  qadd(nullptr, node->a_signed, node->a_q, nullptr, node->b_signed, node->b_q, 0, node->out_q, nullptr);  // checks only
  return node;
}

class ClampNode : public Node {
 public:
  size_t elements = 0;
  bool is_signed = false;
  int32_t lo = 0, hi = 0;
  void run(const RunBuffers& b) const override { qclamp(in(b), is_signed, b.batch * elements, lo, hi, out(b)); }
};

std::unique_ptr<Node> build_clamp(const NodeBuilder& b) {
  const TensorDesc &x = b.input(), &y = b.output();
  if (x.dtype == DType::F32) return build_f32_add_or_clamp(b);
  b.expect_dtype(x, b.input_name(), {DType::U8, DType::S8});
  b.expect_same_parameters(x, b.input_name(), y, b.output_name());
  b.expect_shape(y, b.output_name(), x.shape);
  auto node = std::make_unique<ClampNode>();
  node->elements = x.elements, node->is_signed = x.is_signed();
  std::tie(node->lo, node->hi) = b.clamp(y);
  return node;
}

class PreluNode : public Node {
 public:
  size_t rows = 0, c = 0;
  std::vector<int32_t> mult_pos, mult_neg;
  std::vector<uint8_t> shift_pos, shift_neg;
  PreluParams params{};  // points into the vectors above
  void run(const RunBuffers& b) const override { prelu_8bit(in(b), b.batch * rows, c, params, out(b)); }
};

// ReActNet's RPReLU on float activations.
class PreluF32Node : public Node {
 public:
  size_t rows = 0, c = 0;
  std::vector<float> slope, input_bias, output_bias;
  void run(const RunBuffers& b) const override {
    prelu_f32(as_f32(in(b)), b.batch * rows, c, slope.data(), input_bias.data(), output_bias.data(), as_f32(out(b)));
  }
};

std::unique_ptr<Node> build_prelu_f32(const NodeBuilder& b) {
  const TensorDesc &x = b.input(), &y = b.output();
  b.expect_not_chw(x, b.input_name());
  b.expect_dtype(y, b.output_name(), {DType::F32});
  b.expect_shape(y, b.output_name(), x.shape);
  b.expect_not_chw(y, b.output_name());
  auto node = std::make_unique<PreluF32Node>();
  node->rows = x.rows(), node->c = x.last();
  node->slope = b.finite_floats("slope", node->c);
  // Absent biases are zeros, subtracted and added all the same: with or without, one rule.
  node->input_bias = b.optional_finite_floats("input_bias", node->c, 0.0f);
  node->output_bias = b.optional_finite_floats("output_bias", node->c, 0.0f);
  return node;
}

std::unique_ptr<Node> build_prelu(const NodeBuilder& b) {
  const TensorDesc &x = b.input(), &y = b.output();
  if (x.dtype == DType::F32) return build_prelu_f32(b);
  b.expect_dtype(x, b.input_name(), {DType::U8, DType::S8});
  b.expect_dtype(y, b.output_name(), {DType::U8, DType::S8});
  b.expect_shape(y, b.output_name(), x.shape);
  auto node = std::make_unique<PreluNode>();
  node->rows = x.rows(), node->c = x.last();
  const size_t c = node->c;
  node->mult_pos = b.data<int32_t>("multiplier_pos", c, "s32");
  node->mult_neg = b.data<int32_t>("multiplier_neg", c, "s32");
  node->shift_pos = b.data<uint8_t>("shift_pos", c, "u8");
  node->shift_neg = b.data<uint8_t>("shift_neg", c, "u8");
  // The dyadic rules of lowbit/quantize.h: multiplier != -2^31, shift in [0, 62].
  for (size_t i = 0; i < c; ++i) {
    for (const auto& [key, m] :
         {std::pair{"multiplier_pos", node->mult_pos[i]}, std::pair{"multiplier_neg", node->mult_neg[i]}})
      if (m == INT32_MIN)
        b.json.get(key).fail("value " + std::to_string(i) +
                             " is -2^31 (the multiplier must be in [-(2^31 - 1), 2^31 - 1])");
    for (const auto& [key, e] :
         {std::pair{"shift_pos", node->shift_pos[i]}, std::pair{"shift_neg", node->shift_neg[i]}})
      if (e > 62)
        b.json.get(key).fail("value " + std::to_string(i) + " is " + std::to_string(e) +
                             " (the shift must be in [0, 62])");
  }
  PreluParams& p = node->params;
  p.mult_pos = node->mult_pos.data(), p.shift_pos = node->shift_pos.data();
  p.mult_neg = node->mult_neg.data(), p.shift_neg = node->shift_neg.data();
  p.in_signed = x.is_signed(), p.in_zero_point = x.zero_point, p.out_zero_point = y.zero_point;
  std::tie(p.lo, p.hi) = b.clamp(y);
  return node;
}

class ConcatNode : public Node {
 public:
  size_t rows = 0;
  std::vector<QConcatInput> parts;  // data filled in per run
  QuantOutput out_q;
  void run(const RunBuffers& b) const override {
    std::vector<QConcatInput> inputs = parts;
    for (size_t i = 0; i < inputs.size(); ++i) inputs[i].data = in(b, i);
    qconcat(inputs.data(), inputs.size(), b.batch * rows, 1, out_q, out(b));
  }
};

class ConcatF32Node : public Node {
 public:
  size_t rows = 0;
  std::vector<size_t> widths;
  void run(const RunBuffers& b) const override {
    std::vector<const float*> parts(inputs.size());
    for (size_t i = 0; i < parts.size(); ++i) parts[i] = as_f32(in(b, i));
    concat_f32(parts.data(), widths.data(), parts.size(), b.batch * rows, as_f32(out(b)));
  }
};

// The checks shared by both forms: every input has the output's dims but the last, which add up.
// Returns the inputs' last dimensions.
std::vector<size_t> concat_widths(const NodeBuilder& b, std::initializer_list<DType> dtypes) {
  const TensorDesc& y = b.output();
  std::vector<size_t> widths;
  size_t last = 0;
  for (size_t i = 0; i < b.input_count(); ++i) {
    const TensorDesc& x = b.input(i);
    b.expect_dtype(x, b.input_name(i), dtypes);
    b.expect_not_chw(x, b.input_name(i));
    std::vector<size_t> shape = y.shape;
    shape.back() = x.last();  // every dimension but the last is the output's
    b.expect_shape(x, b.input_name(i), shape);
    last += x.last();  // < 2^24 x 65536 inputs: no overflow
    widths.push_back(x.last());
  }
  if (last != y.last())
    b.fail(b.output_name() + ": the last dimension must be the inputs' sum, " + std::to_string(last) + ", got " +
           std::to_string(y.last()));
  return widths;
}

std::unique_ptr<Node> build_concat(const NodeBuilder& b) {
  const TensorDesc& y = b.output();
  if (y.dtype == DType::F32) {
    b.expect_not_chw(y, b.output_name());
    auto node = std::make_unique<ConcatF32Node>();
    node->widths = concat_widths(b, {DType::F32});
    node->rows = y.rows();
    return node;
  }
  b.expect_dtype(y, b.output_name(), {DType::U8, DType::S8});
  auto node = std::make_unique<ConcatNode>();
  concat_widths(b, {DType::U8, DType::S8});
  for (size_t i = 0; i < b.input_count(); ++i) {
    const TensorDesc& x = b.input(i);
    node->parts.push_back(QConcatInput{nullptr, x.is_signed(), x.last(), quant(x)});
  }
  node->rows = y.rows();
  node->out_q.q = quant(y);
  std::tie(node->out_q.lo, node->out_q.hi) = b.clamp(y);
  qconcat(node->parts.data(), node->parts.size(), 0, 1, node->out_q, nullptr);  // checks only
  return node;
}

// ---- transpose / reshape / softmax ------------------------------------------------------------------------------

class CopyNode : public Node {
 public:
  size_t bytes = 0;
  void run(const RunBuffers& b) const override { std::memcpy(out(b), in(b), b.batch * bytes); }
};

std::unique_ptr<Node> build_reshape(const NodeBuilder& b) {
  const TensorDesc &x = b.input(), &y = b.output();
  b.expect_same_parameters(x, b.input_name(), y, b.output_name());
  if (x.elements != y.elements)
    b.fail(b.output_name() + ": " + std::to_string(y.elements) + " elements, expected the input's " +
           std::to_string(x.elements));
  // b1 rows are padded to whole words: the packed bytes must read the same under both shapes.
  if (x.dtype == DType::B1 && x.last() != y.last() && (x.last() % 64 != 0 || y.last() % 64 != 0))
    b.fail(b.output_name() + ": a b1 reshape must keep the last dimension, or have it a multiple of 64 on both sides");
  auto node = std::make_unique<CopyNode>();
  node->bytes = x.bytes;
  return node;
}

// f32 [C, H, W] (chw) <-> [H, W, C] (hwc): the boundary of the float activations inside a graph.
// ---- pad -------------------------------------------------------------------------------------------

class PadNode : public Node {
 public:
  size_t h = 0, w = 0, pixel_bytes = 0, pads[4] = {};
  std::vector<uint8_t> fill;  // one padding pixel
  void run(const RunBuffers& b) const override {
    pad_pixels(in(b), b.batch, h, w, pixel_bytes, pads, fill.data(), out(b));
  }
};

std::unique_ptr<Node> build_pad(const NodeBuilder& b) {
  const TensorDesc &x = b.input(), &y = b.output();
  b.expect_dtype(x, b.input_name(), {DType::U8, DType::S8, DType::B1, DType::F32});
  b.expect_rank(x, b.input_name(), 3);
  b.expect_not_chw(x, b.input_name());
  b.expect_same_parameters(x, b.input_name(), y, b.output_name());
  b.expect_layout(y, b.output_name(), x.hwc);
  auto node = std::make_unique<PadNode>();
  const std::vector<size_t> p = b.integers("pads", 4, 0, int64_t{1} << 24);
  std::copy(p.begin(), p.end(), node->pads);
  node->h = x.shape[0], node->w = x.shape[1];
  b.expect_shape(y, b.output_name(), {node->h + p[0] + p[2], node->w + p[1] + p[3], x.shape[2]});
  node->pixel_bytes = x.bytes / (node->h * node->w);
  node->fill.resize(node->pixel_bytes);
  const size_t c = x.shape[2];
  switch (x.dtype) {
    case DType::F32: {
      const json::Value v = b.json.get("value");
      const float value = static_cast<float>(v.number());
      if (!std::isfinite(value)) v.fail("expected a finite float32 value, got " + v.describe());
      for (size_t i = 0; i < c; ++i) std::memcpy(node->fill.data() + 4 * i, &value, 4);
      break;
    }
    case DType::B1:
      // Bits 1 (-1) or 0 (+1) on the channels, tail bits zero.
      if (b.integer("value", 0, 1))
        for (size_t i = 0; i < c; ++i) node->fill[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
      break;
    default:
      std::fill(node->fill.begin(), node->fill.end(),
                static_cast<uint8_t>(b.integer("value", dtype_min(x), dtype_max(x))));
  }
  return node;
}

class TransposeNode : public Node {
 public:
  size_t c = 0, hw = 0;
  bool to_hwc = false;
  void run(const RunBuffers& b) const override {
    if (to_hwc)
      transpose_chw_to_hwc(as_f32(in(b)), b.batch, c, hw, as_f32(out(b)));
    else
      transpose_hwc_to_chw(as_f32(in(b)), b.batch, hw, c, as_f32(out(b)));
  }
};

std::unique_ptr<Node> build_transpose(const NodeBuilder& b) {
  const TensorDesc &x = b.input(), &y = b.output();
  b.expect_dtype(x, b.input_name(), {DType::F32});
  b.expect_dtype(y, b.output_name(), {DType::F32});
  b.expect_rank(x, b.input_name(), 3);
  b.expect_layout(y, b.output_name(), !x.hwc);
  b.expect_shape(y, b.output_name(), x.hwc ? to_chw(x.shape) : to_hwc(x.shape));
  auto node = std::make_unique<TransposeNode>();
  node->to_hwc = !x.hwc;
  node->c = x.hwc ? x.shape[2] : x.shape[0];
  node->hw = x.elements / node->c;
  return node;
}

class SoftmaxNode : public Node {
 public:
  size_t c = 0;
  void run(const RunBuffers& b) const override {
    softmax_f32(reinterpret_cast<const float*>(in(b)), b.batch, c, reinterpret_cast<float*>(out(b)));
  }
};

std::unique_ptr<Node> build_softmax(const NodeBuilder& b) {
  const TensorDesc &x = b.input(), &y = b.output();
  b.expect_dtype(x, b.input_name(), {DType::F32});
  b.expect_dtype(y, b.output_name(), {DType::F32});
  b.expect_rank(x, b.input_name(), 1);
  b.expect_shape(y, b.output_name(), x.shape);
  auto node = std::make_unique<SoftmaxNode>();
  node->c = x.last();
  return node;
}

const OpInfo kOps[] = {
    {"quantize", 1, build_quantize},
    {"dequantize", 1, build_dequantize},
    {"threshold", 1, build_threshold},
    {"affine", 1, build_affine},
    {"sign", 1, build_sign},
    {"unpack", 1, build_unpack},
    {"maxpool", 1, build_maxpool},
    {"avgpool", 1, build_avgpool},
    {"global_avgpool", 1, build_global_avgpool},
    {"add", 2, build_add},
    {"clamp", 1, build_clamp},
    {"prelu", 1, build_prelu},
    {"concat", 0, build_concat},
    {"reshape", 1, build_reshape},
    {"softmax", 1, build_softmax},
    {"transpose", 1, build_transpose},
    {"pad", 1, build_pad},
};

}  // namespace

OpTable small_ops() { return {kOps, sizeof kOps / sizeof kOps[0]}; }

}  // namespace lowbit
