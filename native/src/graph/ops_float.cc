// ops_float.cc: the float layers of the format (fconv2d, fdense): f32 hwc activations, OHWI f32
// weights checked and packed once at load, bias and clamp fused, and optionally the next binary
// layer's sign (a b1 output with sign_threshold); runs call lowbit/fconv.h.
#include <cmath>

#include "common/checked_math.h"
#include "graph/node_builder.h"
#include "lowbit/fconv.h"

namespace lowbit {
namespace {

constexpr int64_t kMaxGroups = int64_t{1} << 24;

class FConvNode : public Node {
 public:
  bool dense = false;
  size_t in_h = 1, in_w = 1, in_c = 0;
  Conv2dParams params;
  std::shared_ptr<FConv2dWeights> weights;
  std::vector<float> bias;  // empty: none
  float lo = -INFINITY, hi = INFINITY;
  std::vector<float> sign_threshold;  // a b1 output: the sign bits of the clamped values

  void run(const RunBuffers& b) const override {
    const float* x = reinterpret_cast<const float*>(in(b));
    const FEpilogue e{bias.empty() ? nullptr : bias.data(), lo, hi};
    // A dense layer is a 1x1 convolution over the batch's rows.
    const Conv2dShape s = dense ? fconv2d_shape(b.batch, 1, 1, in_c, *weights, params)
                                : fconv2d_shape(b.batch, in_h, in_w, in_c, *weights, params);
    if (!sign_threshold.empty())
      return fconv2d_sign(x, s, *weights, params, e, sign_threshold.data(), reinterpret_cast<uint64_t*>(out(b)));
    fconv2d(x, s, *weights, params, e, reinterpret_cast<float*>(out(b)));
  }
};

// A rank-3 f32 activation of a float layer must be [H, W, C].
void expect_hwc(const NodeBuilder& b, const TensorDesc& t, const std::string& role) {
  if (!t.hwc) b.fail(role + ": expected layout hwc ([H, W, C]), got chw");
}

std::unique_ptr<Node> build_fconv(const NodeBuilder& b, bool dense) {
  const TensorDesc &x = b.input(), &y = b.output();
  b.expect_dtype(x, b.input_name(), {DType::F32});
  b.expect_dtype(y, b.output_name(), {DType::F32, DType::B1});
  b.expect_rank(x, b.input_name(), dense ? 1 : 3);
  b.expect_rank(y, b.output_name(), dense ? 1 : 3);
  if (!dense) {
    expect_hwc(b, x, b.input_name());
    if (y.dtype == DType::F32) expect_hwc(b, y, b.output_name());
  }
  auto node = std::make_unique<FConvNode>();
  node->dense = dense;
  node->in_c = x.last();
  const size_t c = y.last();
  size_t kh = 1, kw = 1, groups = 1;
  if (!dense) {
    std::tie(kh, kw) = b.kernel();
    node->params = b.conv_params(false);
    groups = static_cast<size_t>(b.integer("groups", 1, kMaxGroups));
    node->in_h = x.shape[0], node->in_w = x.shape[1];
    if (node->in_c % groups != 0)
      b.fail(b.input_name() + ": " + num(node->in_c) + " channels do not divide into " + num(groups) + " groups");
    if (c % groups != 0)
      b.fail(b.output_name() + ": " + num(c) + " channels do not divide into " + num(groups) + " groups");
  }
  const size_t icg = node->in_c / groups;
  const size_t count = checked_mul(checked_mul(checked_mul(c, kh, "weights"), kw, "weights"), icg, "weights");
  // The section's length first: it bounds every allocation below by the file's size.
  const std::vector<float> w = b.data<float>("weights", count, "f32");
  node->weights = pack_fconv2d_weights(w.data(), c, kh, kw, icg, groups);
  if (!dense) {
    const Conv2dShape s = fconv2d_shape(1, node->in_h, node->in_w, node->in_c, *node->weights, node->params);
    b.expect_shape(y, b.output_name(), {s.out_h, s.out_w, c});
  }
  node->bias = b.optional_data<float>("bias", c, "f32");
  std::tie(node->lo, node->hi) = b.float_clamp();
  if (y.dtype == DType::B1) {
    node->sign_threshold = b.data<float>("sign_threshold", c, "f32");
    for (size_t i = 0; i < c; ++i)
      if (std::isnan(node->sign_threshold[i]))
        b.json.get("sign_threshold").fail("value " + std::to_string(i) + " is NaN");
  } else if (b.json.find("sign_threshold")) {
    b.json.get("sign_threshold").fail("given with an f32 output (the sign needs a b1 output)");
  }
  return node;
}

const OpInfo kOps[] = {
    {"fconv2d", 1, [](const NodeBuilder& b) { return build_fconv(b, false); }},
    {"fdense", 1, [](const NodeBuilder& b) { return build_fconv(b, true); }},
};

}  // namespace

OpTable float_ops() { return {kOps, sizeof kOps / sizeof kOps[0]}; }

}  // namespace lowbit
