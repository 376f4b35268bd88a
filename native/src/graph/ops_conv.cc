// ops_conv.cc: the weighted operators of the format (qconv2d, qdense, bconv2d, bdense): weights
// are unpacked from their sections, checked and packed once at load; runs call the library's
// drivers (lowbit/qconv.h, lowbit/binary.h, lowbit/mst.h), which parallelise themselves.
#include <cmath>

#include "common/checked_math.h"
#include "eltwise/kernels.h"
#include "graph/elementwise.h"
#include "graph/fusion.h"
#include "graph/node_builder.h"
#include "integer/qconv_add.h"
#include "lowbit/mst.h"
#include "lowbit/qconv.h"

namespace lowbit {
namespace {

constexpr int64_t kMaxGroups = int64_t{1} << 24;

// The input channels per group, checking that groups divide the input channels.
size_t channels_per_group(const NodeBuilder& b, size_t in_c, size_t groups) {
  if (in_c % groups != 0)
    b.fail(b.input_name() + ": " + std::to_string(in_c) + " channels do not divide into " + std::to_string(groups) +
           " groups");
  return in_c / groups;
}

// The geometry shared by the conv and dense nodes of both families: dense nodes are 1x1 convs with
// one group on rank-1 tensors; conv nodes read kernel, strides / dilations / pads and groups.
struct ConvNodeGeometry {
  bool dense = false;
  size_t in_h = 1, in_w = 1, in_c = 0;
  size_t kernel_h = 1, kernel_w = 1, groups = 1;
  Conv2dParams params;
};

ConvNodeGeometry conv_geometry(const NodeBuilder& b, const TensorDesc& x, bool dense, bool with_pad_value) {
  ConvNodeGeometry g;
  g.dense = dense;
  g.in_c = x.last();
  if (!dense) {
    std::tie(g.kernel_h, g.kernel_w) = b.kernel();
    g.params = b.conv_params(with_pad_value);
    g.groups = static_cast<size_t>(b.integer("groups", 1, kMaxGroups));
    g.in_h = x.shape[0], g.in_w = x.shape[1];
  }
  return g;
}

// ---- qconv2d / qdense -----------------------------------------------------------------------------

class QConvNode : public Node {
 public:
  ConvNodeGeometry geo;
  std::shared_ptr<QConv2dWeights> weights;
  QInput input;
  OwnedQEpilogue epilogue;
  bool fused_add = false;  // fuse_residual_add: inputs[1] the residual, the output the add's
  ResidualAddParams add{};

  void run(const RunBuffers& b) const override {
    if (geo.dense) return qdense(in(b), b.batch, geo.in_c, *weights, input, epilogue.view(), out(b));
    const Conv2dShape s = qconv2d_shape(b.batch, geo.in_h, geo.in_w, geo.in_c, *weights, geo.params);
    if (!fused_add) return qconv2d(in(b), s, *weights, geo.params, input, epilogue.view(), out(b));
    ResidualAddParams r = add;
    r.residual = in(b, 1);
    qconv2d_add(in(b), s, *weights, geo.params, input, epilogue.view(), r, out(b));
  }
};

// OHWI int8 values of the node's weights: one byte each (bits 8; bits 7: each in [-64, 64]), or
// (bits 4) two per byte, low nibble first.
std::vector<int8_t> qweights(const NodeBuilder& b, size_t count, int bits) {
  if (bits == 7) {
    std::vector<int8_t> values = b.data<int8_t>("weights", count, "int8");
    for (size_t i = 0; i < count; ++i)
      if (values[i] < -64 || values[i] > 64)
        b.json.get("weights").fail("bits 7 needs every value in [-64, 64], got " + std::to_string(values[i]) +
                                   " at index " + std::to_string(i));
    return values;
  }
  if (bits == 8) return b.data<int8_t>("weights", count, "int8");
  const std::vector<uint8_t> packed = b.data<uint8_t>("weights", (count + 1) / 2, "int4 pair bytes");
  if (count % 2 && packed.back() >> 4)
    b.json.get("weights").fail("the unused high nibble of the last byte must be zero");
  std::vector<int8_t> values(count);
  for (size_t i = 0; i < count; ++i) {
    const uint8_t nibble = (packed[i / 2] >> (i % 2 ? 4 : 0)) & 0xF;
    values[i] = static_cast<int8_t>(nibble >= 8 ? nibble - 16 : nibble);  // sign-extended: [-8, 7]
  }
  return values;
}

std::unique_ptr<Node> build_qconv(const NodeBuilder& b, bool dense) {
  const TensorDesc &x = b.input(), &y = b.output();
  b.expect_dtype(x, b.input_name(), {DType::U8, DType::S8});
  b.expect_dtype(y, b.output_name(), {DType::U8, DType::S8, DType::S32});
  b.expect_rank(x, b.input_name(), dense ? 1 : 3);
  b.expect_rank(y, b.output_name(), dense ? 1 : 3);
  auto node = std::make_unique<QConvNode>();
  const size_t c = y.last();
  const ConvNodeGeometry& g = node->geo = conv_geometry(b, x, dense, false);
  const int bits = static_cast<int>(b.integer("bits", 4, 8));
  if (bits != 4 && bits != 7 && bits != 8) b.json.get("bits").fail("expected 8, 7 or 4, got " + std::to_string(bits));
  const size_t icg = channels_per_group(b, g.in_c, g.groups);
  const size_t count =
      checked_mul(checked_mul(checked_mul(c, g.kernel_h, "weights"), g.kernel_w, "weights"), icg, "weights");
  const std::vector<int8_t> values = qweights(b, count, bits);
  node->weights = pack_qconv2d_weights(values.data(), c, g.kernel_h, g.kernel_w, icg, g.groups, bits);
  if (!dense) {
    const Conv2dShape s = qconv2d_shape(1, g.in_h, g.in_w, g.in_c, *node->weights, g.params);
    b.expect_shape(y, b.output_name(), {s.out_h, s.out_w, c});
  }

  node->input = QInput{x.is_signed(), x.zero_point};
  OwnedQEpilogue& e = node->epilogue;
  e.bias = b.optional_data<int32_t>("bias", c, "s32");
  e.requantize = y.is_8bit();
  if (e.requantize) {
    e.mult = b.data<int32_t>("multiplier", c, "s32");
    e.shift = b.data<uint8_t>("shift", c, "u8");
    e.out_signed = y.is_signed();
    e.zero_point = y.zero_point;
    std::tie(e.lo, e.hi) = b.clamp(y);
  }
  validate_qepilogue(e.view(), *node->weights, node->input);
  return node;
}

}  // namespace

bool fuse_residual_add(Node& node, const QAddNodeInfo& a, int self_side) {
  auto* conv = dynamic_cast<QConvNode*>(&node);
  if (!conv || conv->geo.dense || conv->fused_add || !conv->epilogue.requantize) return false;
  const OwnedQEpilogue& e = conv->epilogue;
  const bool self_signed = self_side == 0 ? a.a_signed : a.b_signed;
  const bool res_signed = self_side == 0 ? a.b_signed : a.a_signed;
  const QuantParams &qs = self_side == 0 ? a.a : a.b, &qr = self_side == 0 ? a.b : a.a;
  if (self_signed != e.out_signed || qs.zero_point != e.zero_point) return false;  // one tensor: always equal
  // The dyadic pairs exactly as qadd computes them (lowbit/qops.h); the add's load checked they exist.
  const Dyadic ds = to_dyadic(qs.scale / a.out.q.scale), dr = to_dyadic(qr.scale / a.out.q.scale);
  ResidualAddParams p{};
  if (!qadd_term_for(self_signed, qs.zero_point, ds.multiplier, ds.shift, &p.self) ||
      !qadd_term_for(res_signed, qr.zero_point, dr.multiplier, dr.shift, &p.res))
    return false;
  // The requantizer's value v is read as its own type: v - z_self = (byte ^ mask) - (z_self as read through mask).
  p.self.zero = qs.zero_point, p.self.mask = 0;
  p.out_zero = a.out.q.zero_point, p.lo = a.out.lo, p.hi = a.out.hi;
  validate_residual_add(p, e.out_signed);
  conv->add = p;
  conv->fused_add = true;
  return true;
}

namespace {

// ---- bconv2d / bdense ---------------------------------------------------------------------------

class BConvNode : public Node {
 public:
  ConvNodeGeometry geo;
  std::shared_ptr<BinaryConv2dWeights> weights;
  std::shared_ptr<const MstPlan> mst;  // null: dense
  MstPolicy policy = MstPolicy::Auto;
  OwnedBinaryEpilogue epilogue;
  size_t out_pixels = 0;  // per sample; with scratch_bytes: an f32 [C, OH, OW] output

  void run(const RunBuffers& b) const override {
    // An f32 chw output: the kernel writes HWC into the scratch, then it is transposed; hwc is direct.
    void* dst = scratch_bytes ? static_cast<void*>(b.scratch) : out(b);
    BinaryEpilogue e = epilogue.view();
    // The fused block epilogue: the residual stream in, the next layer's sign bits out.
    if (inputs.size() == 2) e.residual = reinterpret_cast<const float*>(in(b, 1));
    if (outputs.size() == 2) e.sign_output = reinterpret_cast<uint64_t*>(b.tensor[outputs[1]]);
    if (geo.dense) {
      if (mst)
        bdense_mst(words(b), b.batch, geo.in_c, *weights, *mst, e, dst, policy);
      else
        bdense(words(b), b.batch, geo.in_c, *weights, e, dst);
    } else {
      const Conv2dShape s = bconv2d_shape(b.batch, geo.in_h, geo.in_w, geo.in_c, *weights, geo.params);
      if (mst)
        bconv2d_mst(words(b), s, *weights, *mst, geo.params, e, dst, policy);
      else
        bconv2d(words(b), s, *weights, geo.params, e, dst);
    }
    if (scratch_bytes)
      transpose_hwc_to_chw(reinterpret_cast<const float*>(b.scratch), b.batch, out_pixels, weights->out_channels,
                           reinterpret_cast<float*>(out(b)));
  }

 private:
  const uint64_t* words(const RunBuffers& b) const { return reinterpret_cast<const uint64_t*>(in(b)); }
};

// Packed weights from the node's section: C rows of ceil(K / 64) words, tail bits zero.
std::shared_ptr<BinaryConv2dWeights> read_binary_weights(const NodeBuilder& b, size_t c, size_t kh, size_t kw,
                                                         size_t icg, size_t groups) {
  const size_t kbits = checked_mul(checked_mul(kh, kw, "weights"), icg, "weights");
  const size_t row_words = words_for_bits(kbits);
  // The section's length first: it bounds every allocation below by the file's size.
  std::vector<uint64_t> bits = b.data<uint64_t>("weights", checked_mul(c, row_words, "weights"), "u64 words");
  // The tail bits are checked here too, before the library does, so the error names the JSON field.
  const uint64_t tail = kbits % 64 ? ~((uint64_t{1} << (kbits % 64)) - 1) : 0;
  for (size_t o = 0; o < c; ++o)
    if (bits[o * row_words + row_words - 1] & tail)
      b.json.get("weights").fail("output channel " + std::to_string(o) +
                                 " has bits set beyond K = " + std::to_string(kbits) + " (tail bits must be zero)");
  return binary_weights_from_bits(std::move(bits), c, kh, kw, icg, groups);
}

// The optional fusion of an f32 output (a Bi-Real / ReActNet block): inputs[1] the residual,
// prelu_* the RPReLU, outputs[1] with sign_threshold the next layer's bits. The output must be
// written in place (hwc or rank 1), and every fused field must come with its tensor.
void read_fused_epilogue(const NodeBuilder& b, const TensorDesc& y, size_t c, OwnedBinaryEpilogue& e) {
  const bool residual = b.input_count() == 2, prelu = b.json.find("prelu_slope").has_value();
  const bool sign = b.output_count() == 2;
  for (const char* key : {"prelu_input_bias", "prelu_output_bias"})
    if (b.json.find(key) && !prelu) b.json.get(key).fail("given without prelu_slope");
  if (b.json.find("sign_threshold") && !sign)
    b.json.get("sign_threshold").fail("given without a second output (the sign bits)");
  if (!residual && !prelu && !sign) return;
  if (y.dtype != DType::F32)
    b.fail(b.output_name() + ": a residual input, RPReLU or sign output needs an f32 output, got " +
           dtype_name(y.dtype));
  if (y.is_chw()) b.fail(b.output_name() + ": a fused output must have layout hwc, got chw");
  if (residual) {
    const TensorDesc& r = b.input(1);
    b.expect_dtype(r, b.input_name(1), {DType::F32});
    b.expect_shape(r, b.input_name(1), y.shape);
    b.expect_layout(r, b.input_name(1), true);
  }
  if (prelu) {
    e.prelu_slope = b.finite_floats("prelu_slope", c);
    e.prelu_input_bias = b.optional_finite_floats("prelu_input_bias", c, 0.0f);
    e.prelu_output_bias = b.optional_finite_floats("prelu_output_bias", c, 0.0f);
  }
  if (sign) {
    const TensorDesc& bits = b.output(1);
    b.expect_dtype(bits, b.output_name(1), {DType::B1});
    b.expect_shape(bits, b.output_name(1), y.shape);
    e.sign_threshold = b.data<float>("sign_threshold", c, "f32");
    for (size_t i = 0; i < c; ++i)
      if (std::isnan(e.sign_threshold[i])) b.json.get("sign_threshold").fail("value " + std::to_string(i) + " is NaN");
  }
}

void read_binary_epilogue(const NodeBuilder& b, const TensorDesc& y, size_t c, BConvNode& node) {
  OwnedBinaryEpilogue& e = node.epilogue;
  read_fused_epilogue(b, y, c, e);
  switch (y.dtype) {
    case DType::F32: {
      e.kind = OutputKind::F32;
      e.scale = b.data<float>("scale", c, "f32");
      e.bias_f32 = b.data<float>("bias", c, "f32");
      std::tie(e.lo, e.hi) = b.float_clamp();
      break;
    }
    case DType::S8:
      e.kind = OutputKind::S8;
      e.mult = b.data<int32_t>("multiplier", c, "s32");
      e.shift = b.data<uint8_t>("shift", c, "u8");
      e.bias_s32 = b.data<int32_t>("bias", c, "s32");
      std::tie(e.qmin, e.qmax) = b.clamp(y);
      break;
    default:
      e.kind = OutputKind::B1;
      e.threshold = b.data<int32_t>("threshold", c, "s32");
      e.flip = b.data<uint8_t>("flip", c, "u8");
      break;
  }
  validate_epilogue(e.view(), c);
}

// The optional MST schedule: its weights must be the node's; it is compiled against them.
void read_mst_schedule(const NodeBuilder& b, BConvNode& node) {
  node.policy = b.choice("mst_policy", {"auto", "always"}, 0) == 1 ? MstPolicy::Always : MstPolicy::Auto;
  if (!b.json.find("mst")) return;
  const auto bytes = b.section_bytes("mst");
  const MstLayer layer = deserialize_mst(bytes.first, bytes.second);
  const BinaryConv2dWeights &a = *layer.weights, &w = *node.weights;
  if (a.out_channels != w.out_channels || a.kernel_h != w.kernel_h || a.kernel_w != w.kernel_w ||
      a.in_channels_per_group != w.in_channels_per_group || a.groups != w.groups || a.bits != w.bits)
    b.json.get("mst").fail("the schedule's weights differ from the node's weights");
  node.mst = compile_mst(*layer.schedule, w);
  if (!node.mst && node.policy == MstPolicy::Always)
    b.json.get("mst_policy").fail("\"always\", but the layer is too large for the MST path");
}

std::unique_ptr<Node> build_bconv(const NodeBuilder& b, bool dense) {
  const TensorDesc &x = b.input(), &y = b.output();
  b.expect_dtype(x, b.input_name(), {DType::B1});
  b.expect_dtype(y, b.output_name(), {DType::F32, DType::S8, DType::B1});
  b.expect_rank(x, b.input_name(), dense ? 1 : 3);
  b.expect_rank(y, b.output_name(), dense ? 1 : 3);
  auto node = std::make_unique<BConvNode>();
  const bool chw = y.is_chw();
  const size_t c = chw ? y.shape[0] : y.last();
  const ConvNodeGeometry& g = node->geo = conv_geometry(b, x, dense, true);
  node->weights = read_binary_weights(b, c, g.kernel_h, g.kernel_w, channels_per_group(b, g.in_c, g.groups), g.groups);
  if (!dense) {
    const Conv2dShape s = bconv2d_shape(1, g.in_h, g.in_w, g.in_c, *node->weights, g.params);
    b.expect_shape(y, b.output_name(),
                   chw ? std::vector<size_t>{c, s.out_h, s.out_w} : std::vector<size_t>{s.out_h, s.out_w, c});
    node->out_pixels = s.out_h * s.out_w;
    if (chw) node->scratch_bytes = y.bytes;
  }
  read_binary_epilogue(b, y, c, *node);
  read_mst_schedule(b, *node);
  return node;
}

const OpInfo kOps[] = {
    {"qconv2d", 1, [](const NodeBuilder& b) { return build_qconv(b, false); }},
    {"qdense", 1, [](const NodeBuilder& b) { return build_qconv(b, true); }},
    {"bconv2d", 1, [](const NodeBuilder& b) { return build_bconv(b, false); }, 2, 2},
    {"bdense", 1, [](const NodeBuilder& b) { return build_bconv(b, true); }, 2, 2},
};

}  // namespace

OpTable conv_ops() { return {kOps, sizeof kOps / sizeof kOps[0]}; }

}  // namespace lowbit
