// model_test.cc: whole models from `.lowbit` files, run by Model::run and compared bit for bit
// with the same computation made by calling the library's operators (and plain reference math for
// the model format's own small operators) directly. Also the memory plan, arena pooling and
// concurrent runs on one model.
#include "lowbit/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <thread>

#include "binary/weights.h"
#include "harness.h"
#include "lowbit/binary.h"
#include "lowbit/error.h"
#include "lowbit/fconv.h"
#include "lowbit/mst.h"
#include "lowbit/qconv.h"
#include "lowbit/qops.h"
#include "lowbit/quantize.h"
#include "model_writer.h"

using namespace lowbit;
using lowbit::test::GraphWriter;
using lowbit::test::rng;

namespace {

std::shared_ptr<const Model> load(const GraphWriter& g, const LoadOptions& options = {}) {
  const std::vector<uint8_t> f = g.file();
  return load_model(f.data(), f.size(), options);
}

// Runs `batch` samples; one vector per model input, one returned per output.
std::vector<std::vector<float>> run(const Model& m, size_t batch, const std::vector<std::vector<float>>& in) {
  std::vector<const float*> ip;
  for (const auto& v : in) ip.push_back(v.data());
  std::vector<std::vector<float>> out;
  for (const ModelIo& o : m.outputs()) out.emplace_back(batch * o.elements, NAN);
  std::vector<float*> op;
  for (auto& v : out) op.push_back(v.data());
  m.run(batch, ip.data(), op.data());
  return out;
}

std::vector<float> floats(std::mt19937_64& g, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(g);
  return v;
}

template <typename T>
std::vector<T> ints(std::mt19937_64& g, size_t n, int64_t lo, int64_t hi) {
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(lo + static_cast<int64_t>(g() % static_cast<uint64_t>(hi - lo + 1)));
  return v;
}

// Dyadic multipliers around 2^30 and shifts that keep typical accumulators inside the 8-bit range.
std::vector<int32_t> multipliers(std::mt19937_64& g, size_t n) {
  return ints<int32_t>(g, n, int64_t{1} << 30, INT32_MAX);
}

// [batch][c][hw] <-> [batch][hw][c]
template <typename T>
std::vector<T> chw_to_hwc(const std::vector<T>& x, size_t batch, size_t c, size_t hw) {
  std::vector<T> y(x.size());
  for (size_t b = 0; b < batch; ++b)
    for (size_t ch = 0; ch < c; ++ch)
      for (size_t p = 0; p < hw; ++p) y[(b * hw + p) * c + ch] = x[(b * c + ch) * hw + p];
  return y;
}
template <typename T>
std::vector<T> hwc_to_chw(const std::vector<T>& x, size_t batch, size_t hw, size_t c) {
  std::vector<T> y(x.size());
  for (size_t b = 0; b < batch; ++b)
    for (size_t ch = 0; ch < c; ++ch)
      for (size_t p = 0; p < hw; ++p) y[(b * c + ch) * hw + p] = x[(b * hw + p) * c + ch];
  return y;
}

std::vector<uint8_t> quantized(const std::vector<float>& x, float scale, int32_t zp, bool is_signed) {
  std::vector<uint8_t> q(x.size());
  quantize_f32(x.data(), x.size(), scale, zp, is_signed ? -128 : 0, is_signed ? 127 : 255, q.data());
  return q;
}
std::vector<float> dequantized(const std::vector<uint8_t>& q, float scale, int32_t zp, bool is_signed) {
  std::vector<float> x(q.size());
  dequantize_8bit(q.data(), q.size(), is_signed, scale, zp, x.data());
  return x;
}

// The first index where two float vectors differ bitwise, or -1.
long first_difference(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], 4) != 0) return static_cast<long>(i);
  return -1;
}

// Distinct values in v: tests check their data is not trivially saturated or constant.
size_t distinct(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return static_cast<size_t>(std::unique(v.begin(), v.end()) - v.begin());
}

#define CHECK_SAME(got, want, what)                                                                  \
  do {                                                                                               \
    const long at = first_difference(got, want);                                                     \
    CHECK(at < 0, what << ": first difference at " << at << " of " << (want).size() << ": got "      \
                       << ((got).size() > size_t(at) ? (got)[at] : NAN) << ", want " << (want)[at]); \
  } while (0)

std::string pads_json(size_t t, size_t l, size_t b, size_t r) {
  return "[" + std::to_string(t) + ", " + std::to_string(l) + ", " + std::to_string(b) + ", " + std::to_string(r) + "]";
}

// +-1 OHWI weights where many channels are near copies of an earlier one (MST schedules with depth).
std::vector<float> structured_signs(std::mt19937_64& g, size_t out_c, size_t per_channel) {
  std::vector<float> w(out_c * per_channel);
  for (size_t c = 0; c < out_c; ++c) {
    const bool copy = c > 0 && g() % 4 != 0;
    const size_t from = copy ? g() % c : 0;
    for (size_t i = 0; i < per_channel; ++i) {
      const float own = g() % 2 ? 1.f : -1.f;
      w[c * per_channel + i] = copy ? (g() % 10 == 0 ? -w[from * per_channel + i] : w[from * per_channel + i]) : own;
    }
  }
  return w;
}

// Sign bits of 8-bit values against a zero point, packed per row (the `sign` op's rule).
std::vector<uint64_t> sign_bits(const std::vector<uint8_t>& q, bool is_signed, int32_t zp, size_t c) {
  const size_t rows = q.size() / c, words = b1_words(c);
  std::vector<uint64_t> out(rows * words, 0);
  for (size_t r = 0; r < rows; ++r)
    for (size_t ch = 0; ch < c; ++ch) {
      const int32_t v = is_signed ? static_cast<int8_t>(q[r * c + ch]) : q[r * c + ch];
      if (v < zp) out[r * words + ch / 64] |= uint64_t{1} << (ch % 64);
    }
  return out;
}

}  // namespace

TEST(model_quantize_and_dequantize_change_the_layout) {
  auto g = rng(301);
  const size_t C = 3, H = 5, W = 7, n = C * H * W;
  const float s1 = 0.05f, s2 = 0.03f;
  GraphWriter w;
  // quantize: f32 [C, H, W] -> u8 [H, W, C], seen flat through a reshape and a rank-1 dequantize.
  const auto x = w.tensor("x", "f32", {C, H, W}), q = w.tensor("q", "u8", {H, W, C}, s1, 128);
  const auto flat = w.tensor("flat", "u8", {n}, s1, 128), y = w.tensor("y", "f32", {n});
  // dequantize: a rank-1 input, reshaped to u8 [H, W, C], dequantized to f32 [C, H, W].
  const auto x2 = w.tensor("x2", "f32", {n}), q2 = w.tensor("q2", "s8", {n}, s2, -5);
  const auto hwc = w.tensor("hwc", "s8", {H, W, C}, s2, -5), y2 = w.tensor("y2", "f32", {C, H, W});
  w.input("x", x), w.input("x2", x2), w.output("y", y), w.output("y2", y2);
  w.node("quantize", "quantize", {x}, q);
  w.node("flatten", "reshape", {q}, flat);
  w.node("dequantize", "dequantize", {flat}, y);
  w.node("quantize2", "quantize", {x2}, q2);
  w.node("unflatten", "reshape", {q2}, hwc);
  w.node("dequantize2", "dequantize", {hwc}, y2);
  const auto m = load(w);
  CHECK(m->inputs().size() == 2 && m->inputs()[0].name == "x" && m->inputs()[0].shape == std::vector<size_t>({C, H, W}),
        "input metadata");
  CHECK(m->outputs()[1].name == "y2" && m->outputs()[1].dtype == "f32" && m->outputs()[1].elements == n,
        "output metadata");
  for (size_t batch : {1, 3}) {
    auto xs = floats(g, batch * n, -8, 8), xs2 = floats(g, batch * n, -5, 5);
    xs[0] = NAN, xs[1] = 0.025f, xs[2] = INFINITY, xs[3] = -INFINITY, xs2[1] = 1.5f * s2;  // NaN, ties, saturation
    const auto out = run(*m, batch, {xs, xs2});
    const auto want = dequantized(quantized(xs, s1, 128, false), s1, 128, false);  // CHW order
    const auto want2 = dequantized(quantized(xs2, s2, -5, true), s2, -5, true);    // HWC order
    CHECK_SAME(out[0], chw_to_hwc(want, batch, C, H * W), "quantize to HWC, batch " << batch);
    CHECK_SAME(out[1], hwc_to_chw(want2, batch, H * W, C), "dequantize to CHW, batch " << batch);
  }
}

namespace {

struct QConvCase {
  const char* name;
  size_t ci, h, w, c, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, groups;
  int bits;
  const char* in_dtype;
  const char* out_dtype;  // u8, s8, or s32 (then an affine node)
};

// x f32 [Ci, H, W] -> quantize -> qconv2d -> dequantize or affine -> f32 [C, OH, OW], against the
// same layers called directly.
void check_qconv(const QConvCase& k, uint64_t salt) {
  auto g = rng(salt);
  const bool in_signed = std::string(k.in_dtype) == "s8", s32 = std::string(k.out_dtype) == "s32";
  const bool out_signed = std::string(k.out_dtype) == "s8";
  const float in_scale = 0.04f, out_scale = 0.5f;
  const int32_t in_zp = in_signed ? -3 : 120, out_zp = out_signed ? 5 : 100;
  const size_t icg = k.ci / k.groups, count = k.c * k.kh * k.kw * icg;
  const int wmax = k.bits == 8 ? 127 : k.bits == 7 ? 64 : 7;
  auto values = ints<int8_t>(g, count, k.bits == 7 ? -64 : -wmax - 1, wmax);
  values[0] = k.bits == 7 ? -64 : static_cast<int8_t>(-wmax - 1);  // the extreme weight (never a lone zero)
  // Shifts that bring a typical accumulator to about +-40: outputs vary rather than saturate.
  const double typical = 64.0 * (wmax + 1) * std::sqrt(static_cast<double>(k.kh * k.kw * icg));
  const int shift0 = static_cast<int>(std::lround(std::log2(typical * std::pow(2, 30.5) / 40)));
  const auto bias = ints<int32_t>(g, k.c, -static_cast<int64_t>(typical / 4), static_cast<int64_t>(typical / 4));
  const auto mult = multipliers(g, k.c);
  const auto shift = ints<uint8_t>(g, k.c, shift0 - 1, shift0 + 1);
  const auto scale = floats(g, k.c, -0.01f, 0.01f), fbias = floats(g, k.c, -1, 1);
  const Conv2dParams p{k.sh, k.sw, k.dh, k.dw, k.pt, k.pl, k.pb, k.pr, PadValue::One};
  const auto packed = pack_qconv2d_weights(values.data(), k.c, k.kh, k.kw, icg, k.groups, k.bits);
  const Conv2dShape s1 = qconv2d_shape(1, k.h, k.w, k.ci, *packed, p);

  GraphWriter w;
  const auto x = w.tensor("x", "f32", {k.ci, k.h, k.w});
  const auto xq = w.tensor("xq", k.in_dtype, {k.h, k.w, k.ci}, in_scale, in_zp);
  const auto yq = s32 ? w.tensor("acc", "s32", {s1.out_h, s1.out_w, k.c})
                      : w.tensor("yq", k.out_dtype, {s1.out_h, s1.out_w, k.c}, out_scale, out_zp);
  const auto y = w.tensor("y", "f32", {k.c, s1.out_h, s1.out_w});
  w.input("x", x), w.output("y", y);
  w.node("quantize", "quantize", {x}, xq);
  std::vector<uint8_t> nibbles((count + 1) / 2, 0);
  for (size_t i = 0; i < count; ++i) nibbles[i / 2] |= static_cast<uint8_t>((values[i] & 0xF) << (i % 2 ? 4 : 0));
  std::string attrs = "\"kernel\": [" + std::to_string(k.kh) + ", " + std::to_string(k.kw) + "], \"stride\": [" +
                      std::to_string(k.sh) + ", " + std::to_string(k.sw) + "], \"dilation\": [" + std::to_string(k.dh) +
                      ", " + std::to_string(k.dw) + "], \"pads\": " + pads_json(k.pt, k.pl, k.pb, k.pr) +
                      ", \"groups\": " + std::to_string(k.groups) + ", \"bits\": " + std::to_string(k.bits) +
                      ", \"weights\": " + (k.bits != 4 ? w.data(values) : w.data(nibbles)) +
                      ", \"bias\": " + w.data(bias);
  if (!s32)
    attrs += ", \"multiplier\": " + w.data(mult) + ", \"shift\": " + w.data(shift) +
             ", \"clamp\": " + (out_signed ? "[-100, 127]" : "[0, 250]");
  w.node("conv", "qconv2d", {xq}, yq, attrs);
  if (s32)
    w.node(
        "affine", "affine", {yq}, y,
        "\"scale\": " + w.data(scale) + ", \"bias\": " + w.data(fbias) + ", \"clamp\": [-3.0, 3.5]");  // a fused clip
  else
    w.node("dequantize", "dequantize", {yq}, y);
  const auto m = load(w);

  for (size_t batch : {1, 3}) {
    const auto xs = floats(g, batch * k.ci * k.h * k.w, -6, 6);
    const auto xin = quantized(chw_to_hwc(xs, batch, k.ci, k.h * k.w), in_scale, in_zp, in_signed);
    const Conv2dShape s = qconv2d_shape(batch, k.h, k.w, k.ci, *packed, p);
    const size_t out_n = batch * s.out_h * s.out_w * k.c, hw = s.out_h * s.out_w;
    QEpilogue e;
    e.bias = bias.data();
    std::vector<float> want_hwc(out_n);
    if (s32) {
      e.requantize = false;
      std::vector<int32_t> acc(out_n);
      qconv2d(xin.data(), s, *packed, p, QInput{in_signed, in_zp}, e, acc.data());
      for (size_t i = 0; i < out_n; ++i)
        want_hwc[i] = std::clamp(static_cast<float>(acc[i]) * scale[i % k.c] + fbias[i % k.c], -3.0f, 3.5f);
    } else {
      e.mult = mult.data(), e.shift = shift.data(), e.out_signed = out_signed, e.zero_point = out_zp;
      e.lo = out_signed ? -100 : 0, e.hi = out_signed ? 127 : 250;
      std::vector<uint8_t> yq8(out_n);
      qconv2d(xin.data(), s, *packed, p, QInput{in_signed, in_zp}, e, yq8.data());
      want_hwc = dequantized(yq8, out_scale, out_zp, out_signed);
    }
    const auto out = run(*m, batch, {xs});
    CHECK_SAME(out[0], hwc_to_chw(want_hwc, batch, hw, k.c), k.name << ", batch " << batch);
    CHECK(distinct(out[0]) >= std::min<size_t>(out_n / 4, 20),
          k.name << ": only " << distinct(out[0]) << " distinct outputs");
    if (s32)  // the clamp is exercised: some outputs sit on a bound
      CHECK(std::count_if(out[0].begin(), out[0].end(), [](float v) { return v == -3.0f || v == 3.5f; }) > 0, k.name);
  }
}

}  // namespace

TEST(model_qconv2d_equals_the_layer) {
  const QConvCase cases[] = {
      {"3 -> 65 channels, 3x3 stride 2, pads 1", 3, 9, 8, 65, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 8, "u8", "u8"},
      {"depthwise 65, dilation 2, uneven pads", 65, 6, 7, 65, 3, 3, 1, 1, 2, 2, 2, 0, 1, 3, 65, 8, "s8", "s8"},
      {"grouped, int4, s32 -> affine", 4, 5, 6, 6, 2, 3, 2, 1, 1, 1, 1, 2, 0, 1, 2, 4, "u8", "s32"},
      {"1 channel 1x1, int4 odd count", 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 4, "s8", "u8"},
      {"bits 7, 20 -> 33 channels, 3x3 stride 2, pads 1", 20, 9, 8, 33, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 7, "u8", "s8"},
      {"bits 7, grouped, s8 in", 8, 5, 6, 6, 2, 3, 2, 1, 1, 1, 1, 2, 0, 1, 2, 7, "s8", "u8"},
      {"bits 7, depthwise 17", 17, 6, 7, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 17, 7, "u8", "u8"},
  };
  uint64_t salt = 310;
  for (const auto& k : cases) {
    check_qconv(k, salt++);
    if (lowbit::test::failures_in_current()) return;
  }
}

TEST(model_binary_chain_equals_the_layers) {
  // quantize -> qconv2d (s32) -> threshold -> bconv2d (b1, stride 2, zero padding, MST) ->
  // maxpool (b1) -> unpack -> reshape -> qdense (int4, s32) -> affine -> softmax
  auto g = rng(320);
  const size_t C0 = 3, H = 7, W = 6, C1 = 70, C2 = 65, N = 10;
  const float in_scale = 0.05f;
  const auto qvals = ints<int8_t>(g, C1 * 3 * 3 * C0, -127, 127);
  const auto qbias = ints<int32_t>(g, C1, -300, 300);
  const auto thr = ints<int32_t>(g, C1, -200, 200);
  const auto flip = ints<uint8_t>(g, C1, 0, 1);
  const auto bw = pack_binary_conv2d_weights_f32(structured_signs(g, C2, 9 * C1).data(), C2, 3, 3, C1, 1);
  const auto bthr = ints<int32_t>(g, C2, -30, 30);
  const auto bflip = ints<uint8_t>(g, C2, 0, 1);
  const auto schedule = build_mst(*bw, MstOptions{SIZE_MAX, true});
  const auto mst = serialize_mst(*schedule, *bw);
  const Conv2dParams p1{1, 1, 1, 1, 1, 1, 1, 1, PadValue::One};
  const Conv2dParams p2{2, 2, 1, 1, 1, 1, 1, 1, PadValue::Zero};
  const Pool2dParams pool{2, 2, 1, 1, 0, 0, 1, 1};
  const auto qw = pack_qconv2d_weights(qvals.data(), C1, 3, 3, C0, 1, 8);
  const Conv2dShape s1 = qconv2d_shape(1, H, W, C0, *qw, p1), s2 = bconv2d_shape(1, H, W, C1, *bw, p2);
  const Conv2dShape s3 = bmaxpool2d_shape(1, s2.out_h, s2.out_w, C2, pool);
  const size_t flat = s3.out_h * s3.out_w * C2;
  const auto dvals = ints<int8_t>(g, N * flat, -8, 7);
  std::vector<uint8_t> dnibbles((N * flat + 1) / 2, 0);
  for (size_t i = 0; i < dvals.size(); ++i)
    dnibbles[i / 2] |= static_cast<uint8_t>((dvals[i] & 0xF) << (i % 2 ? 4 : 0));
  const auto dw = pack_qconv2d_weights(dvals.data(), N, 1, 1, flat, 1, 4);
  const auto ascale = floats(g, N, 0.001f, 0.01f), abias = floats(g, N, -1, 1);

  auto model = [&](bool with_mst) {
    GraphWriter w;
    const auto x = w.tensor("x", "f32", {C0, H, W}), xq = w.tensor("xq", "s8", {H, W, C0}, in_scale, 0);
    const auto acc = w.tensor("acc", "s32", {s1.out_h, s1.out_w, C1}), b1 = w.tensor("b1", "b1", {H, W, C1});
    const auto b2 = w.tensor("b2", "b1", {s2.out_h, s2.out_w, C2}), b3 = w.tensor("b3", "b1", {s3.out_h, s3.out_w, C2});
    const auto u = w.tensor("u", "s8", {s3.out_h, s3.out_w, C2}, 1, 0), r = w.tensor("r", "s8", {flat}, 1, 0);
    const auto d = w.tensor("d", "s32", {N}), logits = w.tensor("logits", "f32", {N}),
               prob = w.tensor("prob", "f32", {N});
    w.input("image", x), w.output("logits", logits), w.output("prob", prob);
    w.node("in", "quantize", {x}, xq);
    w.node("conv1", "qconv2d", {xq}, acc,
           "\"kernel\": [3, 3], \"stride\": [1, 1], \"dilation\": [1, 1], \"pads\": [1, 1, 1, 1], \"groups\": 1, "
           "\"bits\": 8, \"weights\": " +
               w.data(qvals) + ", \"bias\": " + w.data(qbias));
    w.node("bn1", "threshold", {acc}, b1, "\"threshold\": " + w.data(thr) + ", \"flip\": " + w.data(flip));
    w.node("conv2", "bconv2d", {b1}, b2,
           "\"kernel\": [3, 3], \"stride\": [2, 2], \"dilation\": [1, 1], \"pads\": [1, 1, 1, 1], \"groups\": 1, "
           "\"pad_value\": \"zero\", \"weights\": " +
               w.data(bw->bits) + ", \"threshold\": " + w.data(bthr) + ", \"flip\": " + w.data(bflip) +
               (with_mst ? ", \"mst\": " + w.data(mst) + ", \"mst_policy\": \"always\"" : ""));
    w.node("pool", "maxpool", {b2}, b3, "\"kernel\": [2, 2], \"stride\": [1, 1], \"pads\": [0, 0, 1, 1]");
    w.node("unpack", "unpack", {b3}, u);
    w.node("flatten", "reshape", {u}, r);
    w.node("fc", "qdense", {r}, d, "\"bits\": 4, \"weights\": " + w.data(dnibbles));
    w.node("fc.scale", "affine", {d}, logits, "\"scale\": " + w.data(ascale) + ", \"bias\": " + w.data(abias));
    w.node("softmax", "softmax", {logits}, prob);
    return load(w);
  };
  const auto dense = model(false), with_mst = model(true);
  CHECK(dense->nodes().size() == 10 && dense->nodes()[3].name == "conv2" && dense->nodes()[3].op == "bconv2d",
        "node summary");

  for (size_t batch : {1, 3}) {
    const auto xs = floats(g, batch * C0 * H * W, -3, 3);
    // The reference, layer by layer.
    const auto xq = quantized(chw_to_hwc(xs, batch, C0, H * W), in_scale, 0, true);
    std::vector<int32_t> acc(batch * H * W * C1);
    QEpilogue e1;
    e1.requantize = false, e1.bias = qbias.data();
    qconv2d(xq.data(), qconv2d_shape(batch, H, W, C0, *qw, p1), *qw, p1, QInput{true, 0}, e1, acc.data());
    std::vector<uint64_t> b1(batch * H * W * b1_words(C1), 0);
    for (size_t px = 0; px < batch * H * W; ++px)
      for (size_t c = 0; c < C1; ++c)
        if ((acc[px * C1 + c] < thr[c]) != (flip[c] != 0)) b1[px * b1_words(C1) + c / 64] |= uint64_t{1} << (c % 64);
    const Conv2dShape s2b = bconv2d_shape(batch, H, W, C1, *bw, p2);
    BinaryEpilogue e2;
    e2.kind = OutputKind::B1, e2.threshold = bthr.data(), e2.flip = bflip.data();
    std::vector<uint64_t> b2(batch * s2.out_h * s2.out_w * b1_words(C2));
    bconv2d(b1.data(), s2b, *bw, p2, e2, b2.data());
    std::vector<uint64_t> b3(batch * s3.out_h * s3.out_w * b1_words(C2));
    bmaxpool2d(b2.data(), bmaxpool2d_shape(batch, s2.out_h, s2.out_w, C2, pool), pool, b3.data());
    std::vector<uint8_t> u(batch * flat);
    for (size_t i = 0; i < u.size(); ++i) {
      const size_t px = i / C2, c = i % C2;
      u[i] = (b3[px * b1_words(C2) + c / 64] >> (c % 64)) & 1 ? 0xFF : 1;
    }
    std::vector<int32_t> d(batch * N);
    QEpilogue e3;
    e3.requantize = false;
    qdense(u.data(), batch, flat, *dw, QInput{true, 0}, e3, d.data());
    std::vector<float> logits(batch * N), prob(batch * N);
    for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>(d[i]) * ascale[i % N] + abias[i % N];
    for (size_t b = 0; b < batch; ++b) {
      const float* l = logits.data() + b * N;
      const float max = *std::max_element(l, l + N);
      double sum = 0;
      for (size_t i = 0; i < N; ++i) sum += std::exp(static_cast<double>(l[i]) - max);
      for (size_t i = 0; i < N; ++i)
        prob[b * N + i] = static_cast<float>(std::exp(static_cast<double>(l[i]) - max) / sum);
    }
    const auto out = run(*dense, batch, {xs}), out_mst = run(*with_mst, batch, {xs});
    CHECK_SAME(out[0], logits, "logits, batch " << batch);
    CHECK(distinct(out[0]) > batch * N / 2, "logits should differ: " << distinct(out[0]));
    CHECK_SAME(out[1], prob, "softmax, batch " << batch);
    CHECK_SAME(out_mst[0], out[0], "MST logits, batch " << batch);
    CHECK_SAME(out_mst[1], out[1], "MST softmax, batch " << batch);
  }
}

TEST(model_binary_layers_with_float_and_int8_outputs) {
  // sign -> bconv2d with an f32 [C, OH, OW] output (CHW, through the scratch) and with an s8
  // output; sign -> bdense (f32, MST 'auto'); every result against the layer called directly.
  auto g = rng(330);
  const size_t C0 = 67, H = 5, W = 6, C = 66, K = 2, N = 9;
  const float in_scale = 0.1f;
  const int32_t in_zp = 3;
  const auto cw = pack_binary_conv2d_weights_f32(structured_signs(g, C, K * K * C0).data(), C, K, K, C0, 1);
  const auto dw = pack_binary_conv2d_weights_f32(structured_signs(g, N, H * W * C0).data(), N, 1, 1, H * W * C0, 1);
  const auto cscale = floats(g, C, -2, 2), cbias = floats(g, C, -10, 10);
  const auto mult = multipliers(g, C);
  const auto shift = ints<uint8_t>(g, C, 33, 35);
  const auto qbias = ints<int32_t>(g, C, -20, 20);
  const auto dscale = floats(g, N, -1, 1), dbias = floats(g, N, -1, 1);
  const Conv2dParams p{1, 2, 1, 1, 0, 1, 1, 0, PadValue::Zero};
  const Conv2dShape s1 = bconv2d_shape(1, H, W, C0, *cw, p);
  const size_t hw = s1.out_h * s1.out_w;
  const auto mst = serialize_mst(*build_mst(*dw, MstOptions{}), *dw);

  GraphWriter w;
  const auto x = w.tensor("x", "f32", {C0, H, W}), xq = w.tensor("xq", "u8", {H, W, C0}, in_scale, in_zp);
  const auto xb = w.tensor("xb", "b1", {H, W, C0}), yf = w.tensor("yf", "f32", {C, s1.out_h, s1.out_w});
  const auto y8 = w.tensor("y8", "s8", {s1.out_h, s1.out_w, C}, 0.25, 0),
             y8f = w.tensor("y8f", "f32", {C, s1.out_h, s1.out_w});
  const auto xr = w.tensor("xr", "u8", {H * W * C0}, in_scale, in_zp), xrb = w.tensor("xrb", "b1", {H * W * C0});
  const auto yd = w.tensor("yd", "f32", {N});
  w.input("x", x), w.output("conv_f32", yf), w.output("conv_s8", y8f), w.output("dense", yd);
  w.node("quantize", "quantize", {x}, xq);
  w.node("binarize", "sign", {xq}, xb);
  const std::string geometry =
      "\"kernel\": [2, 2], \"stride\": [1, 2], \"dilation\": [1, 1], \"pads\": [0, 1, 1, 0], "
      "\"groups\": 1, \"pad_value\": \"zero\", \"weights\": " +
      w.data(cw->bits);
  w.node("conv_f32", "bconv2d", {xb}, yf,
         geometry + ", \"scale\": " + w.data(cscale) + ", \"bias\": " + w.data(cbias) + ", \"clamp\": [-6, 1e30]");
  w.node("conv_s8", "bconv2d", {xb}, y8,
         geometry + ", \"multiplier\": " + w.data(mult) + ", \"shift\": " + w.data(shift) +
             ", \"bias\": " + w.data(qbias) + ", \"clamp\": [-120, 127]");
  w.node("dequantize", "dequantize", {y8}, y8f);
  // 67 channels: a b1 [H, W, 67] cannot be reshaped flat, so the 8-bit tensor is.
  w.node("flatten", "reshape", {xq}, xr);
  w.node("binarize_flat", "sign", {xr}, xrb);
  w.node("dense", "bdense", {xrb}, yd,
         "\"weights\": " + w.data(dw->bits) + ", \"scale\": " + w.data(dscale) + ", \"bias\": " + w.data(dbias) +
             ", \"mst\": " + w.data(mst));
  const auto m = load(w);
  for (size_t batch : {1, 3}) {
    const auto xs = floats(g, batch * C0 * H * W, -1, 1);
    const auto xq = quantized(chw_to_hwc(xs, batch, C0, H * W), in_scale, in_zp, false);
    const auto bits = sign_bits(xq, false, in_zp, C0);
    const Conv2dShape s = bconv2d_shape(batch, H, W, C0, *cw, p);
    BinaryEpilogue ef;
    ef.kind = OutputKind::F32, ef.scale = cscale.data(), ef.bias_f32 = cbias.data(), ef.lo = -6, ef.hi = 1e30f;
    std::vector<float> yf(batch * hw * C);
    bconv2d(bits.data(), s, *cw, p, ef, yf.data());
    BinaryEpilogue e8;
    e8.kind = OutputKind::S8, e8.mult = mult.data(), e8.shift = shift.data(), e8.bias_s32 = qbias.data();
    e8.qmin = -120, e8.qmax = 127;
    std::vector<uint8_t> y8(batch * hw * C);
    bconv2d(bits.data(), s, *cw, p, e8, y8.data());
    const auto flat_bits = sign_bits(xq, false, in_zp, H * W * C0);
    BinaryEpilogue ed;
    ed.kind = OutputKind::F32, ed.scale = dscale.data(), ed.bias_f32 = dbias.data(), ed.lo = -INFINITY,
    ed.hi = INFINITY;
    std::vector<float> yd(batch * N);
    bdense(flat_bits.data(), batch, H * W * C0, *dw, ed, yd.data());
    const auto out = run(*m, batch, {xs});
    CHECK_SAME(out[0], hwc_to_chw(yf, batch, hw, C), "bconv2d f32 output, batch " << batch);
    CHECK_SAME(out[1], hwc_to_chw(dequantized(y8, 0.25f, 0, true), batch, hw, C), "bconv2d s8 output, batch " << batch);
    CHECK_SAME(out[2], yd, "bdense f32 output (MST auto), batch " << batch);
    CHECK(distinct(out[0]) > 50 && distinct(out[1]) > 20 && distinct(out[2]) > 2,
          "outputs should vary: " << distinct(out[0]) << ", " << distinct(out[1]) << ", " << distinct(out[2]));
  }
}

TEST(model_integer_ops_equal_the_layers) {
  // Two quantizations of one input -> add -> prelu -> concat (with the first) -> maxpool ->
  // avgpool -> clamp -> global_avgpool, outputs dequantized at two points.
  auto g = rng(340);
  const size_t C = 5, H = 7, W = 6;
  const double sa = 0.04, sb = 0.03, sadd = 0.06, sp = 0.05, sc = 0.07, sav = 0.08, sg = 0.5;
  const QuantParams qa{sa, 100}, qb{sb, -4}, qadd_{sadd, 120}, qp{sp, 2}, qc{sc, -1}, qav{sav, 10}, qg{sg, 0};
  const auto mpos = multipliers(g, C), mneg = ints<int32_t>(g, C, -(int64_t{1} << 30), int64_t{1} << 29);
  const auto epos = ints<uint8_t>(g, C, 30, 31), eneg = ints<uint8_t>(g, C, 31, 33);
  const Pool2dParams maxp{3, 3, 2, 2, 1, 1, 1, 1}, avgp{2, 2, 1, 1, 0, 0, 1, 1};
  const Conv2dShape sm = qpool2d_shape(1, H, W, 2 * C, maxp), sv = qpool2d_shape(1, sm.out_h, sm.out_w, 2 * C, avgp);

  GraphWriter w;
  const auto x = w.tensor("x", "f32", {C, H, W});
  const auto a = w.tensor("a", "u8", {H, W, C}, sa, 100), b = w.tensor("b", "s8", {H, W, C}, sb, -4);
  const auto sum = w.tensor("sum", "u8", {H, W, C}, sadd, 120), pr = w.tensor("pr", "s8", {H, W, C}, sp, 2);
  const auto cat = w.tensor("cat", "s8", {H, W, 2 * C}, sc, -1);
  const auto mx = w.tensor("mx", "s8", {sm.out_h, sm.out_w, 2 * C}, sc, -1);
  const auto av = w.tensor("av", "u8", {sv.out_h, sv.out_w, 2 * C}, sav, 10);
  const auto cl = w.tensor("cl", "u8", {sv.out_h, sv.out_w, 2 * C}, sav, 10);
  const auto gp = w.tensor("gp", "s8", {1, 1, 2 * C}, sg, 0);
  const auto y1 = w.tensor("y1", "f32", {2 * C, 1, 1}), y2 = w.tensor("y2", "f32", {2 * C, sv.out_h, sv.out_w});
  w.input("x", x), w.output("pooled", y1), w.output("features", y2);
  w.node("qa", "quantize", {x}, a);
  w.node("qb", "quantize", {x}, b);
  w.node("add", "add", {a, b}, sum, "\"clamp\": [0, 250]");
  w.node("prelu", "prelu", {sum}, pr,
         "\"multiplier_pos\": " + w.data(mpos) + ", \"multiplier_neg\": " + w.data(mneg) +
             ", \"shift_pos\": " + w.data(epos) + ", \"shift_neg\": " + w.data(eneg) + ", \"clamp\": [-128, 120]");
  w.node("concat", "concat", {pr, a}, cat, "\"clamp\": [-128, 127]");
  w.node("maxpool", "maxpool", {cat}, mx, "\"kernel\": [3, 3], \"stride\": [2, 2], \"pads\": [1, 1, 1, 1]");
  w.node("avgpool", "avgpool", {mx}, av,
         "\"kernel\": [2, 2], \"stride\": [1, 1], \"pads\": [0, 0, 1, 1], \"count_include_pad\": false, \"clamp\": [0, "
         "255]");
  w.node("relu6", "clamp", {av}, cl, "\"clamp\": [10, 90]");
  w.node("gap", "global_avgpool", {cl}, gp, "\"clamp\": [-128, 127]");
  w.node("out1", "dequantize", {gp}, y1);
  w.node("out2", "dequantize", {cl}, y2);
  const auto m = load(w);

  for (size_t batch : {1, 3}) {
    const auto xs = floats(g, batch * C * H * W, -4, 4);
    const auto xh = chw_to_hwc(xs, batch, C, H * W);
    const auto va = quantized(xh, static_cast<float>(sa), 100, false),
               vb = quantized(xh, static_cast<float>(sb), -4, true);
    const size_t n = batch * H * W * C;
    std::vector<uint8_t> vsum(n), vpr(n), vcat(2 * n);
    qadd(va.data(), false, qa, vb.data(), true, qb, n, QuantOutput{qadd_, 0, 250}, vsum.data());
    for (size_t i = 0; i < n; ++i) {  // the prelu formula of the format
      const size_t c = i % C;
      const int64_t v = int64_t{vsum[i]} - 120;
      const int64_t y = v >= 0 ? dyadic_rescale(v, mpos[c], epos[c]) : dyadic_rescale(v, mneg[c], eneg[c]);
      vpr[i] = static_cast<uint8_t>(std::clamp<int64_t>(y + 2, -128, 120));
    }
    const QConcatInput parts[] = {{vpr.data(), true, C, qp}, {va.data(), false, C, qa}};
    qconcat(parts, 2, batch * H * W, 1, QuantOutput{qc, -128, 127}, vcat.data());
    const Conv2dShape s1 = qpool2d_shape(batch, H, W, 2 * C, maxp);
    std::vector<uint8_t> vmx(batch * s1.out_h * s1.out_w * 2 * C);
    qmaxpool2d(vcat.data(), true, s1, maxp, vmx.data());
    const Conv2dShape s2 = qpool2d_shape(batch, s1.out_h, s1.out_w, 2 * C, avgp);
    std::vector<uint8_t> vav(batch * s2.out_h * s2.out_w * 2 * C), vcl(vav.size()), vgp(batch * 2 * C);
    qavgpool2d(vmx.data(), true, s2, avgp, false, qc, QuantOutput{qav, 0, 255}, vav.data());
    qclamp(vav.data(), false, vav.size(), 10, 90, vcl.data());
    qglobalavgpool(vcl.data(), false, batch, s2.out_h, s2.out_w, 2 * C, qav, QuantOutput{qg, -128, 127}, vgp.data());
    const auto out = run(*m, batch, {xs});
    CHECK_SAME(out[0], dequantized(vgp, static_cast<float>(sg), 0, true), "global average pool, batch " << batch);
    // (a global pool of a small batch can have only a few distinct values: seed 8638305404757044479 gave 3)
    CHECK(distinct(out[0]) > 1 && distinct(out[1]) > 20,
          "outputs should vary: " << distinct(out[0]) << ", " << distinct(out[1]));
    CHECK_SAME(out[1],
               hwc_to_chw(dequantized(vcl, static_cast<float>(sav), 10, false), batch, s2.out_h * s2.out_w, 2 * C),
               "average pool and clamp, batch " << batch);
  }
}

TEST(model_b1_reshape_and_softmax) {
  // sign -> b1 [2, 3, 70] -> reshape [6, 70] (rows kept) -> unpack -> reshape -> dequantize; and
  // b1 [2, 128] -> [256] (both multiples of 64); softmax stays finite on extreme logits.
  auto g = rng(350);
  GraphWriter w;
  const auto x = w.tensor("x", "f32", {420}), q0 = w.tensor("q0", "s8", {420}, 0.5, 1);
  const auto q = w.tensor("q", "s8", {2, 3, 70}, 0.5, 1);
  const auto bq = w.tensor("bq", "b1", {2, 3, 70}), b6 = w.tensor("b6", "b1", {6, 70});
  const auto u = w.tensor("u", "s8", {6, 70}, 1, 0), uf = w.tensor("uf", "s8", {420}, 1, 0),
             y = w.tensor("y", "f32", {420});
  const auto x2 = w.tensor("x2", "f32", {2, 128}), q2 = w.tensor("q2", "u8", {2, 128}, 1, 128);
  const auto b2 = w.tensor("b2", "b1", {2, 128}), bf = w.tensor("bf", "b1", {256}),
             u2 = w.tensor("u2", "s8", {256}, 1, 0);
  const auto y2 = w.tensor("y2", "f32", {256});
  const auto l = w.tensor("l", "f32", {7}), p = w.tensor("p", "f32", {7});
  w.input("x", x), w.input("x2", x2), w.input("logits", l), w.output("y", y), w.output("y2", y2), w.output("p", p);
  w.node("q", "quantize", {x}, q0);
  w.node("unflatten", "reshape", {q0}, q);
  w.node("sign", "sign", {q}, bq);
  w.node("merge", "reshape", {bq}, b6);
  w.node("unpack", "unpack", {b6}, u);
  w.node("flatten", "reshape", {u}, uf);
  w.node("dq", "dequantize", {uf}, y);
  w.node("q2", "quantize", {x2}, q2);
  w.node("sign2", "sign", {q2}, b2);
  w.node("flatten2", "reshape", {b2}, bf);
  w.node("unpack2", "unpack", {bf}, u2);
  w.node("dq2", "dequantize", {u2}, y2);
  w.node("softmax", "softmax", {l}, p);
  const auto m = load(w);
  for (size_t batch : {1, 3}) {
    const auto xs = floats(g, batch * 420, -2, 2), xs2 = floats(g, batch * 256, -3, 3);
    std::vector<float> ls(batch * 7);
    for (size_t i = 0; i < ls.size(); ++i)
      ls[i] = i % 7 == 0 ? 1e30f : (i % 7 == 1 ? -1e30f : static_cast<float>(i % 5));
    const auto out = run(*m, batch, {xs, xs2, ls});
    const auto q1 = quantized(xs, 0.5f, 1, true), q2v = quantized(xs2, 1.f, 128, false);
    for (size_t i = 0; i < xs.size(); ++i)
      CHECK(out[0][i] == (static_cast<int8_t>(q1[i]) < 1 ? -1.f : 1.f), "b1 reshape [2, 3, 70] -> [6, 70] at " << i);
    for (size_t i = 0; i < xs2.size(); ++i)
      CHECK(out[1][i] == (q2v[i] < 128 ? -1.f : 1.f), "b1 reshape [2, 128] -> [256] at " << i);
    for (size_t b = 0; b < batch; ++b) {
      double sum = 0;
      for (size_t i = 0; i < 7; ++i) {
        CHECK(std::isfinite(out[2][b * 7 + i]), "softmax must stay finite");
        sum += out[2][b * 7 + i];
      }
      CHECK(std::fabs(sum - 1) < 1e-6 && out[2][b * 7] == 1.f, "softmax of a dominant logit, sum " << sum);
    }
  }
}

namespace {

// x f32 [C, H, W] -> quantize -> `layers` clamps -> dequantize: every activation the same size.
GraphWriter clamp_chain(size_t layers, size_t c, size_t h, size_t w_) {
  GraphWriter w;
  const auto x = w.tensor("x", "f32", {c, h, w_});
  uint32_t prev = w.tensor("t0", "s8", {h, w_, c}, 0.1, 0);
  w.input("x", x);
  w.node("quantize", "quantize", {x}, prev);
  for (size_t i = 1; i <= layers; ++i) {
    const auto t = w.tensor("t" + std::to_string(i), "s8", {h, w_, c}, 0.1, 0);
    w.node("clamp" + std::to_string(i), "clamp", {prev}, t,
           "\"clamp\": [" + std::to_string(-100 + static_cast<int>(i)) + ", " +
               std::to_string(100 - static_cast<int>(i)) + "]");
    prev = t;
  }
  const auto y = w.tensor("y", "f32", {c, h, w_});
  w.output("y", y);
  w.node("dequantize", "dequantize", {prev}, y);
  return w;
}

}  // namespace

TEST(model_memory_plan_reuses_bytes_and_pools_arenas) {
  const size_t layers = 12, c = 8, h = 9, w_ = 10, bytes = c * h * w_;
  const auto m = load(clamp_chain(layers, c, h, w_));
  for (size_t batch : {1, 4}) {
    const MemoryPlanInfo p = m->memory_plan(batch);
    const size_t tensor = (batch * bytes + 63) / 64 * 64;
    CHECK(p.tensor_bytes == (layers + 1) * tensor, "batch " << batch << ": the sum of tensor sizes " << p.tensor_bytes);
    // A chain needs two live activations at a time: what one node reads and what it writes.
    CHECK(p.arena_bytes == 2 * tensor, "batch " << batch << ": arena " << p.arena_bytes << ", want " << 2 * tensor);
  }
  auto g = rng(360);
  const auto xs = floats(g, 2 * bytes, -12, 12);
  // Element-wise: quantize, the tightest clamp, dequantize.
  std::vector<uint8_t> q = quantized(xs, 0.1f, 0, true);
  for (auto& v : q)
    v = static_cast<uint8_t>(std::clamp<int>(static_cast<int8_t>(v), -100 + int(layers), 100 - int(layers)));
  const auto want = dequantized(q, 0.1f, 0, true);
  const size_t before = m->arena_allocations();
  for (int r = 0; r < 20; ++r) CHECK_SAME(run(*m, 2, {xs})[0], want, "run " << r);
  CHECK(m->arena_allocations() == before + 1,
        "a steady stream of runs allocates one arena, got " << m->arena_allocations() - before);
  run(*m, 1, {xs});  // a smaller batch fits the pooled arena
  CHECK(m->arena_allocations() == before + 1, "a smaller batch reuses the arena");
}

TEST(model_run_profiled_times_each_node_and_runs_as_run) {
  const size_t layers = 5, c = 8, h = 9, w_ = 10;
  const auto m = load(clamp_chain(layers, c, h, w_));
  auto g = rng(365);
  const auto xs = floats(g, 3 * c * h * w_, -12, 12);
  const auto want = run(*m, 3, {xs})[0];
  std::vector<float> y(want.size(), NAN);
  const float* in[] = {xs.data()};
  float* out[] = {y.data()};
  std::vector<double> seconds(m->nodes().size(), NAN);
  const double total = m->run_profiled(3, in, out, seconds.data());
  CHECK_SAME(y, want, "run_profiled's output");
  double sum = 0;
  for (size_t i = 0; i < seconds.size(); ++i) {
    CHECK(std::isfinite(seconds[i]) && seconds[i] >= 0, "node " << i << ": " << seconds[i] << " s");
    sum += seconds[i];
  }
  CHECK(sum <= total, "the nodes take " << sum << " s of a " << total << " s run");
  try {
    m->run_profiled(3, in, out, nullptr);
    CHECK(false, "a null node_seconds was accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Range, "a null node_seconds: " << e.what());
  }
}

TEST(model_concurrent_runs_match_sequential_runs) {
  auto g = rng(370);
  const size_t C0 = 3, H = 8, W = 8, C1 = 64, N = 5;
  GraphWriter w;
  const auto x = w.tensor("x", "f32", {C0, H, W}), xq = w.tensor("xq", "s8", {H, W, C0}, 0.05, 0);
  const auto acc = w.tensor("acc", "s32", {H, W, C1}), b = w.tensor("b", "b1", {H, W, C1});
  const auto f = w.tensor("f", "b1", {H * W * C1}), y = w.tensor("y", "f32", {N});
  w.input("x", x), w.output("y", y);
  w.node("q", "quantize", {x}, xq);
  w.node("conv", "qconv2d", {xq}, acc,
         "\"kernel\": [3, 3], \"stride\": [1, 1], \"dilation\": [1, 1], \"pads\": [1, 1, 1, 1], \"groups\": 1, "
         "\"bits\": 8, "
         "\"weights\": " +
             w.data(ints<int8_t>(g, C1 * 9 * C0, -127, 127)));
  w.node(
      "bn", "threshold", {acc}, b,
      "\"threshold\": " + w.data(ints<int32_t>(g, C1, -50, 50)) + ", \"flip\": " + w.data(ints<uint8_t>(g, C1, 0, 1)));
  w.node("flatten", "reshape", {b}, f);
  const auto dw = pack_binary_conv2d_weights_f32(structured_signs(g, N, H * W * C1).data(), N, 1, 1, H * W * C1, 1);
  w.node("fc", "bdense", {f}, y,
         "\"weights\": " + w.data(dw->bits) + ", \"scale\": " + w.data(floats(g, N, -1, 1)) +
             ", \"bias\": " + w.data(floats(g, N, -1, 1)));
  const auto m = load(w);
  constexpr size_t kThreads = 4, kRuns = 12;
  std::vector<std::vector<float>> inputs, want;
  for (size_t i = 0; i < kThreads * kRuns; ++i) {
    inputs.push_back(floats(g, 2 * C0 * H * W, -3, 3));
    want.push_back(run(*m, 2, {inputs.back()})[0]);
  }
  std::vector<std::vector<float>> got(inputs.size());
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (size_t r = 0; r < kRuns; ++r) got[t * kRuns + r] = run(*m, 2, {inputs[t * kRuns + r]})[0];
    });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < inputs.size(); ++i) CHECK_SAME(got[i], want[i], "run " << i);
  CHECK(m->arena_allocations() <= kThreads + 1, "arenas: " << m->arena_allocations());
}

TEST(model_run_rejects_bad_arguments) {
  const auto m = load(clamp_chain(2, 3, 4, 5));
  std::vector<float> x(60), y(60);
  const float* in[] = {x.data()};
  float* out[] = {y.data()};
  auto kind_of = [&](size_t batch, const float* const* i, float* const* o) {
    try {
      m->run(batch, i, o);
    } catch (const Error& e) {
      return static_cast<int>(e.kind());
    }
    return -1;
  };
  CHECK(kind_of(0, in, out) == static_cast<int>(ErrorKind::Range), "batch 0");
  const float* null_in[] = {nullptr};
  CHECK(kind_of(1, null_in, out) == static_cast<int>(ErrorKind::Range), "a null input");
  CHECK(kind_of(1, in, nullptr) == static_cast<int>(ErrorKind::Range), "no outputs");
  CHECK(kind_of(SIZE_MAX / 8, in, out) == static_cast<int>(ErrorKind::Range), "a batch whose sizes overflow");
  CHECK(kind_of(1, in, out) == -1, "a valid run");
}

TEST(model_chunks_big_batches_and_caps_the_pool) {
  const size_t c = 8, h = 9, w_ = 10, per = c * h * w_;
  const GraphWriter chain = clamp_chain(4, c, h, w_);
  const size_t file = chain.file().size();
  const auto whole = load(chain);
  auto g = rng(380);
  const size_t one = whole->memory_plan(1).arena_bytes;
  for (size_t batch : {1, 2, 7, 33}) {
    const auto xs = floats(g, batch * per, -12, 12);
    const auto want = run(*whole, batch, {xs})[0];
    for (size_t cap : {size_t{0}, one - 1, one, 3 * one, whole->memory_plan(5).arena_bytes}) {
      LoadOptions o;
      o.max_activation_bytes = cap;
      o.max_pooled_bytes = 0;  // no arena is kept
      const auto m = load(chain, o);
      CHECK_SAME(run(*m, batch, {xs})[0], want, "batch " << batch << ", cap " << cap);
      CHECK(m->memory_plan(batch).arena_bytes == whole->memory_plan(batch).arena_bytes, "the plan is per batch");
      CHECK(m->memory_bytes() == file, "batch " << batch << ", cap " << cap << ": keeps " << m->memory_bytes());
    }
  }
  // The pool keeps idle arenas up to max_pooled_bytes and frees one that does not fit.
  LoadOptions o;
  o.max_pooled_bytes = whole->memory_plan(4).arena_bytes;
  const auto m = load(chain, o);
  const auto xs = floats(g, 64 * per, -12, 12);
  run(*m, 4, {xs});
  CHECK(m->memory_bytes() == file + o.max_pooled_bytes, "a batch of 4 is kept: " << m->memory_bytes());
  run(*m, 64, {xs});  // grows the pooled arena, which then exceeds the cap and is freed
  CHECK(m->memory_bytes() == file, "a batch of 64 is not kept: " << m->memory_bytes());
}

TEST(model_run_stops_when_cancelled) {
  const size_t c = 8, h = 9, w_ = 10;
  const auto m = load(clamp_chain(3, c, h, w_));
  auto g = rng(385);
  const auto xs = floats(g, 2 * c * h * w_, -12, 12);
  const auto want = run(*m, 2, {xs})[0];
  std::vector<float> y(want.size(), NAN);
  const float* in[] = {xs.data()};
  float* out[] = {y.data()};
  const std::atomic<bool> cancelled{true}, going{false};
  const size_t arenas = m->arena_allocations();
  try {
    m->run(2, in, out, &cancelled);
    CHECK(false, "a cancelled run ran");
  } catch (const RunCancelled& e) {
    CHECK(std::string(e.what()) == "run: cancelled", e.what());
  }
  CHECK(std::all_of(y.begin(), y.end(), [](float v) { return std::isnan(v); }), "a cancelled run wrote outputs");
  CHECK(m->arena_allocations() == arenas, "a cancelled run took no new arena");
  m->run(2, in, out, &going);
  CHECK_SAME(y, want, "a run after a cancelled one");
}

// ---- float activations inside the graph (f32 hwc) ---------------------------------------------------

namespace {

// Plain references of the f32 operators, written from docs/model-format.md.
float ref_clamp(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

// A pool over [batch][h][w][c]: max (the first tap inside, then x > m ? x : m) or average (0 plus the
// taps inside in row-major order, divided by the count).
std::vector<float> ref_pool(const std::vector<float>& x, size_t batch, size_t h, size_t w, size_t c, size_t k,
                            size_t stride, size_t pad, bool max, bool include_pad) {
  const size_t oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
  std::vector<float> y(batch * oh * ow * c);
  for (size_t n = 0; n < batch; ++n)
    for (size_t oy = 0; oy < oh; ++oy)
      for (size_t ox = 0; ox < ow; ++ox)
        for (size_t ch = 0; ch < c; ++ch) {
          float acc = 0;
          bool first = true;
          size_t count = 0;
          for (size_t ky = 0; ky < k; ++ky)
            for (size_t kx = 0; kx < k; ++kx) {
              const ptrdiff_t iy = static_cast<ptrdiff_t>(oy * stride + ky) - static_cast<ptrdiff_t>(pad);
              const ptrdiff_t ix = static_cast<ptrdiff_t>(ox * stride + kx) - static_cast<ptrdiff_t>(pad);
              if (iy < 0 || ix < 0 || iy >= static_cast<ptrdiff_t>(h) || ix >= static_cast<ptrdiff_t>(w)) continue;
              const float v = x[((n * h + iy) * w + ix) * c + ch];
              ++count;
              if (max)
                acc = first || v > acc ? v : acc;
              else
                acc = acc + v;
              first = false;
            }
          y[((n * oh + oy) * ow + ox) * c + ch] = max ? acc : acc / static_cast<float>(include_pad ? k * k : count);
        }
  return y;
}

}  // namespace

namespace {

// The graph's JSON with `"layout": "hwc"` on the named tensors (GraphWriter writes the default layout).
std::vector<uint8_t> file_with_hwc(const GraphWriter& g, std::initializer_list<const char*> names) {
  std::string json = g.json();
  for (const char* name : names) {
    const std::string key = std::string("{\"name\": \"") + name + "\", \"dtype\": \"f32\", ";
    json.replace(json.find(key), key.size(), key + "\"layout\": \"hwc\", ");
  }
  return lowbit::test::write_container(json, g.sections);
}

}  // namespace

TEST(model_float_activations_inside_the_graph) {
  // x f32 chw -> transpose -> prelu (RPReLU) -> add (residual, clamp) -> clamp;
  //   maxpool and avgpool (count_include_pad both ways) -> concat -> sign (thresholds) -> unpack
  //   -> dequantize to an hwc output, and unpack straight to f32; global_avgpool -> transpose -> a chw output;
  //   quantize from hwc -> dequantize to hwc; every result against plain reference math.
  auto g = rng(950);
  const size_t C = 70, H = 7, W = 6, hw = H * W;
  const size_t OH = (H + 2 - 3) / 2 + 1, OW = (W + 2 - 3) / 2 + 1;
  const auto slope = floats(g, C, -0.5f, 0.5f), ib = floats(g, C, -0.5f, 0.5f), ob = floats(g, C, -0.5f, 0.5f);
  auto thr = floats(g, 3 * C, -0.3f, 0.3f);
  thr[5] = -INFINITY;
  const float qscale = 0.03f;
  GraphWriter w;
  const auto x = w.tensor("x", "f32", {C, H, W}), h0 = w.tensor_hwc("h0", {H, W, C});
  const auto p1 = w.tensor_hwc("p1", {H, W, C}), a1 = w.tensor_hwc("a1", {H, W, C});
  const auto c1 = w.tensor_hwc("c1", {H, W, C});
  const auto mp = w.tensor_hwc("mp", {OH, OW, C}), ap = w.tensor_hwc("ap", {OH, OW, C});
  const auto ap2 = w.tensor_hwc("ap2", {OH, OW, C}), cat = w.tensor_hwc("cat", {OH, OW, 3 * C});
  const auto bits = w.tensor("bits", "b1", {OH, OW, 3 * C}), u = w.tensor("u", "s8", {OH, OW, 3 * C}, 1, 0);
  const auto signs = w.tensor_hwc("signs", {OH, OW, 3 * C}), signs2 = w.tensor_hwc("signs2", {OH, OW, 3 * C});
  const auto gp = w.tensor_hwc("gp", {1, 1, 3 * C}), gpc = w.tensor("gpc", "f32", {3 * C, 1, 1});
  const auto q = w.tensor("q", "s8", {H, W, C}, qscale, 2), dq = w.tensor_hwc("dq", {H, W, C});
  w.input("x", x);
  w.output("clamped", c1), w.output("signs", signs), w.output("pooled", gpc), w.output("requantized", dq);
  w.output("signs_f32", signs2);
  w.node("to_hwc", "transpose", {x}, h0);
  w.node("rprelu", "prelu", {h0}, p1,
         "\"slope\": " + w.data(slope) + ", \"input_bias\": " + w.data(ib) + ", \"output_bias\": " + w.data(ob));
  w.node("residual", "add", {p1, h0}, a1, "\"clamp\": [-2.0, 2.5]");
  w.node("hardtanh", "clamp", {a1}, c1, "\"clamp\": [-1.0, 1.0]");
  const std::string window = "\"kernel\": [3, 3], \"stride\": [2, 2], \"pads\": [1, 1, 1, 1]";
  w.node("maxpool", "maxpool", {a1}, mp, window);
  w.node("avgpool", "avgpool", {a1}, ap, window + ", \"count_include_pad\": true");
  w.node("avgpool2", "avgpool", {a1}, ap2, window + ", \"count_include_pad\": false");
  w.node("concat", "concat", {mp, ap, ap2}, cat);
  w.node("rsign", "sign", {cat}, bits, "\"threshold\": " + w.data(thr));
  w.node("unpack", "unpack", {bits}, u);
  w.node("signs", "dequantize", {u}, signs);
  w.node("unpack_f32", "unpack", {bits}, signs2);
  w.node("gap", "global_avgpool", {cat}, gp);
  w.node("to_chw", "transpose", {gp}, gpc);
  w.node("quantize", "quantize", {c1}, q);
  w.node("dequantize", "dequantize", {q}, dq);
  const auto m = load(w);

  for (size_t batch : {1, 2}) {
    auto xs = floats(g, batch * C * hw, -3, 3);
    xs[7] = NAN, xs[8] = -0.0f, xs[9] = INFINITY, xs[C * hw - 1] = -INFINITY;
    const auto h = chw_to_hwc(xs, batch, C, hw);
    std::vector<float> a(h.size()), c(h.size());
    for (size_t i = 0; i < h.size(); ++i) {
      const size_t ch = i % C;
      const float v = h[i] - ib[ch];
      const float p = (v >= 0 ? v : v * slope[ch]) + ob[ch];
      a[i] = ref_clamp(p + h[i], -2.0f, 2.5f);
      c[i] = ref_clamp(a[i], -1.0f, 1.0f);
    }
    const auto rmp = ref_pool(a, batch, H, W, C, 3, 2, 1, true, false);
    const auto rap = ref_pool(a, batch, H, W, C, 3, 2, 1, false, true);
    const auto rap2 = ref_pool(a, batch, H, W, C, 3, 2, 1, false, false);
    const size_t opx = batch * OH * OW;
    std::vector<float> rcat(opx * 3 * C), rsigns(rcat.size()), rgp(batch * 3 * C, 0.0f);
    for (size_t px = 0; px < opx; ++px)
      for (size_t ch = 0; ch < C; ++ch) {
        rcat[px * 3 * C + ch] = rmp[px * C + ch];
        rcat[px * 3 * C + C + ch] = rap[px * C + ch];
        rcat[px * 3 * C + 2 * C + ch] = rap2[px * C + ch];
      }
    for (size_t i = 0; i < rcat.size(); ++i) rsigns[i] = rcat[i] < thr[i % (3 * C)] ? -1.0f : 1.0f;
    for (size_t n = 0; n < batch; ++n) {
      for (size_t px = 0; px < OH * OW; ++px)
        for (size_t ch = 0; ch < 3 * C; ++ch)
          rgp[n * 3 * C + ch] = rgp[n * 3 * C + ch] + rcat[(n * OH * OW + px) * 3 * C + ch];
      for (size_t ch = 0; ch < 3 * C; ++ch) rgp[n * 3 * C + ch] = rgp[n * 3 * C + ch] / static_cast<float>(OH * OW);
    }
    const auto rdq = dequantized(quantized(c, qscale, 2, true), qscale, 2, true);
    const auto out = run(*m, batch, {xs});
    CHECK_SAME(out[0], c, "prelu -> add -> clamp, batch " << batch);
    CHECK_SAME(out[1], rsigns, "pools -> concat -> sign, batch " << batch);
    CHECK_SAME(out[2], rgp, "global_avgpool -> transpose, batch " << batch);
    CHECK_SAME(out[3], rdq, "quantize / dequantize in hwc order, batch " << batch);
    CHECK_SAME(out[4], rsigns, "pools -> concat -> sign -> unpack to f32, batch " << batch);
    CHECK(distinct(out[0]) > 100 && distinct(out[2]) > 50, "outputs should vary");
    CHECK(std::count(out[1].begin(), out[1].end(), -1.0f) > 50 && std::count(out[1].begin(), out[1].end(), 1.0f) > 50,
          "signs should vary");
  }
}

TEST(model_binary_layers_with_hwc_float_outputs) {
  // sign -> bconv2d f32 hwc (written directly, no scratch) and chw; bdense f32 rank 1; affine from
  // s32 to hwc; each against the layer called directly.
  auto g = rng(951);
  const size_t C0 = 67, H = 5, W = 6, C = 66;
  const auto cw = pack_binary_conv2d_weights_f32(structured_signs(g, C, 9 * C0).data(), C, 3, 3, C0, 1);
  const auto cscale = floats(g, C, -2, 2), cbias = floats(g, C, -10, 10);
  const auto ascale = floats(g, C, -0.5f, 0.5f), abias = floats(g, C, -1, 1);
  const auto qvals = ints<int8_t>(g, C * C0, -127, 127);
  const auto qw = pack_qconv2d_weights(qvals.data(), C, 1, 1, C0, 1, 8);
  const Conv2dParams p{2, 1, 1, 1, 1, 1, 1, 1, PadValue::One};
  const Conv2dShape s1 = bconv2d_shape(1, H, W, C0, *cw, p);
  const size_t hw = s1.out_h * s1.out_w;
  GraphWriter w;
  const auto x = w.tensor("x", "f32", {C0, H, W}), xh = w.tensor_hwc("xh", {H, W, C0});
  const auto xb = w.tensor("xb", "b1", {H, W, C0});
  const auto yh = w.tensor_hwc("yh", {s1.out_h, s1.out_w, C}), yc = w.tensor("yc", "f32", {C, s1.out_h, s1.out_w});
  const auto xq = w.tensor("xq", "s8", {H, W, C0}, 0.05, 0), acc = w.tensor("acc", "s32", {H, W, C});
  const auto ah = w.tensor_hwc("ah", {H, W, C});
  w.input("x", x), w.output("hwc", yh), w.output("chw", yc), w.output("affine", ah);
  w.node("to_hwc", "transpose", {x}, xh);
  w.node("sign", "sign", {xh}, xb);
  const std::string attrs =
      "\"kernel\": [3, 3], \"stride\": [2, 1], \"dilation\": [1, 1], \"pads\": [1, 1, 1, 1], "
      "\"groups\": 1, \"pad_value\": \"one\", \"weights\": " +
      w.data(cw->bits) + ", \"scale\": " + w.data(cscale) + ", \"bias\": " + w.data(cbias) + ", \"clamp\": [-5, 5]";
  w.node("conv_hwc", "bconv2d", {xb}, yh, attrs);
  w.node("conv_chw", "bconv2d", {xb}, yc, attrs);
  w.node("quantize", "quantize", {xh}, xq);
  w.node("fc", "qconv2d", {xq}, acc,
         "\"kernel\": [1, 1], \"stride\": [1, 1], \"dilation\": [1, 1], \"pads\": [0, 0, 0, 0], \"groups\": 1, "
         "\"bits\": 8, \"weights\": " +
             w.data(qvals));
  w.node("affine", "affine", {acc}, ah, "\"scale\": " + w.data(ascale) + ", \"bias\": " + w.data(abias));
  const auto m = load(w);
  for (size_t batch : {1, 3}) {
    const auto xs = floats(g, batch * C0 * H * W, -1, 1);
    const auto xhwc = chw_to_hwc(xs, batch, C0, H * W);
    const size_t words = b1_words(C0);
    std::vector<uint64_t> bits(batch * H * W * words, 0);
    for (size_t i = 0; i < xhwc.size(); ++i)
      if (xhwc[i] < 0) bits[(i / C0) * words + (i % C0) / 64] |= uint64_t{1} << (i % C0 % 64);
    BinaryEpilogue e;
    e.kind = OutputKind::F32, e.scale = cscale.data(), e.bias_f32 = cbias.data(), e.lo = -5, e.hi = 5;
    std::vector<float> y(batch * hw * C);
    bconv2d(bits.data(), bconv2d_shape(batch, H, W, C0, *cw, p), *cw, p, e, y.data());
    const auto xq8 = quantized(xhwc, 0.05f, 0, true);
    std::vector<int32_t> a(batch * H * W * C);
    QEpilogue qe;
    qe.requantize = false;
    qconv2d(xq8.data(), qconv2d_shape(batch, H, W, C0, *qw, Conv2dParams{}), *qw, Conv2dParams{}, QInput{true, 0}, qe,
            a.data());
    std::vector<float> af(a.size());
    for (size_t i = 0; i < a.size(); ++i) af[i] = static_cast<float>(a[i]) * ascale[i % C] + abias[i % C];
    const auto out = run(*m, batch, {xs});
    CHECK_SAME(out[0], y, "bconv2d f32 hwc, batch " << batch);
    CHECK_SAME(out[1], hwc_to_chw(y, batch, hw, C), "bconv2d f32 chw, batch " << batch);
    CHECK_SAME(out[2], af, "affine to hwc, batch " << batch);
    CHECK(distinct(out[0]) > 50 && distinct(out[2]) > 50, "outputs should vary");
  }
}

namespace {

// The message of a model that must fail to load (Format), or "(loaded)".
std::string load_error(const GraphWriter& w) {
  try {
    load(w);
  } catch (const Error& e) {
    return e.kind() == ErrorKind::Format ? e.what() : std::string("(not a format error) ") + e.what();
  }
  return "(loaded)";
}

}  // namespace

// bits 7 (weights in [-64, 64], stored as bits 8): a value outside is refused at load, naming the
// node, the field, the value and where it is; at the ends of the range the model loads.
TEST(model_qconv_bits7_rejects_weights_outside_64) {
  for (const int8_t bad : {int8_t{65}, int8_t{-65}, int8_t{127}, int8_t{-128}, int8_t{64}, int8_t{-64}}) {
    for (const bool dense : {false, true}) {
      GraphWriter w;
      const std::vector<size_t> in_shape = dense ? std::vector<size_t>{6} : std::vector<size_t>{3, 3, 2};
      const std::vector<size_t> out_shape = dense ? std::vector<size_t>{2} : std::vector<size_t>{3, 3, 2};
      // f32 graph tensors are chw: [2, 3, 3] against the hwc [3, 3, 2] of the 8-bit and s32 ones.
      const std::vector<size_t> chw = dense ? out_shape : std::vector<size_t>{2, 3, 3};
      const auto x = w.tensor("x", "f32", dense ? in_shape : chw), xq = w.tensor("xq", "u8", in_shape, 0.1f, 128);
      const auto acc = w.tensor("acc", "s32", out_shape), y = w.tensor("y", "f32", chw);
      w.input("x", x), w.output("y", y);
      w.node("quantize", "quantize", {x}, xq);
      std::vector<int8_t> weights(dense ? 12 : 36, 1);
      weights[7] = bad;
      const std::string geometry =
          dense
              ? ""
              : "\"kernel\": [3, 3], \"stride\": [1, 1], \"dilation\": [1, 1], \"pads\": [1, 1, 1, 1], \"groups\": 1, ";
      w.node("fc7", dense ? "qdense" : "qconv2d", {xq}, acc, geometry + "\"bits\": 7, \"weights\": " + w.data(weights));
      w.node(
          "affine", "affine", {acc}, y,
          "\"scale\": " + w.data(std::vector<float>(2, 0.5f)) + ", \"bias\": " + w.data(std::vector<float>(2, 0.0f)));
      const std::string message = load_error(w);
      if (bad >= -64 && bad <= 64) {
        CHECK(message == "(loaded)", int(bad) << ": " << message);
        continue;
      }
      const std::string want = std::string("node 'fc7' (") + (dense ? "qdense" : "qconv2d") +
                               "): json: nodes[1].weights: bits 7 needs every value in [-64, 64], got " +
                               std::to_string(bad) + " at index 7";
      CHECK(message == want, "got: " << message << "\nwant: " << want);
    }
  }
}

TEST(model_float_nodes_reject_bad_layouts_and_data) {
  // One small graph per case: x f32 [3, 4, 4] chw and xh its hwc transpose, then the node under test.
  struct Case {
    const char* what;
    std::function<void(GraphWriter&, uint32_t x, uint32_t xh)> build;
    std::string part;
  };
  const std::vector<float> three(3, 0.5f), two(2, 0.5f), nan3{0.5f, NAN, 0.5f};
  const std::string pool = "\"kernel\": [2, 2], \"stride\": [2, 2], \"pads\": [0, 0, 0, 0]";
  const std::string conv1x1 =
      "\"kernel\": [1, 1], \"stride\": [1, 1], \"dilation\": [1, 1], \"pads\": [0, 0, 0, 0], \"groups\": 1";
  const Case cases[] = {
      {"sign of chw",
       [&](GraphWriter& w, uint32_t x, uint32_t) {
         w.node("n", "sign", {x}, w.tensor("b", "b1", {3, 4, 4}));
       },
       "node 'n' (sign): inputs[0] (tensor 0 'x'): expected layout hwc (an activation inside the graph), got chw"},
      {"sign threshold length",
       [&](GraphWriter& w, uint32_t, uint32_t xh) {
         w.node("n", "sign", {xh}, w.tensor("b", "b1", {4, 4, 3}), "\"threshold\": " + w.data(two));
       },
       "node 'n' (sign): json: nodes[1].threshold: the section holds 8 bytes, expected 12 (3 x f32)"},
      {"sign threshold NaN",
       [&](GraphWriter& w, uint32_t, uint32_t xh) {
         w.node("n", "sign", {xh}, w.tensor("b", "b1", {4, 4, 3}), "\"threshold\": " + w.data(nan3));
       },
       "nodes[1].threshold: value 1 is NaN"},
      {"maxpool of chw",
       [&](GraphWriter& w, uint32_t x, uint32_t) {
         w.node("n", "maxpool", {x}, w.tensor_hwc("y", {2, 2, 3}), pool);
       },
       "inputs[0] (tensor 0 'x'): expected layout hwc"},
      {"avgpool to chw",
       [&](GraphWriter& w, uint32_t, uint32_t xh) {
         w.node("n", "avgpool", {xh}, w.tensor("y", "f32", {2, 2, 3}), pool + ", \"count_include_pad\": false");
       },
       "node 'n' (avgpool): outputs[0] (tensor 2 'y'): expected layout hwc"},
      {"avgpool f32 to u8",
       [&](GraphWriter& w, uint32_t, uint32_t xh) {
         w.node("n", "avgpool", {xh}, w.tensor("y", "u8", {2, 2, 3}, 0.1), pool + ", \"count_include_pad\": false");
       },
       "outputs[0] (tensor 2 'y'): expected dtype f32, got u8"},
      {"global_avgpool f32 to s8",
       [&](GraphWriter& w, uint32_t, uint32_t xh) {
         w.node("n", "global_avgpool", {xh}, w.tensor("y", "s8", {1, 1, 3}, 0.1));
       },
       "node 'n' (global_avgpool): outputs[0] (tensor 2 'y'): expected dtype f32, got s8"},
      {"add of two layouts",
       [&](GraphWriter& w, uint32_t, uint32_t xh) {
         const auto x2 = w.tensor("x2", "f32", {4, 4, 3});
         w.input("x2", x2);
         w.node("n", "add", {xh, x2}, w.tensor_hwc("y", {4, 4, 3}));
       },
       "node 'n' (add): inputs[1] (tensor 2 'x2'): expected layout hwc"},
      {"add f32 + u8",
       [&](GraphWriter& w, uint32_t, uint32_t xh) {
         const auto q = w.tensor("x2", "u8", {4, 4, 3}, 0.1);
         w.node("q", "quantize", {xh}, q);
         w.node("n", "add", {xh, q}, w.tensor_hwc("y", {4, 4, 3}));
       },
       "node 'n' (add): inputs[1] (tensor 2 'x2'): expected dtype f32, got u8"},
      {"add clamp NaN",
       [&](GraphWriter& w, uint32_t, uint32_t xh) {
         w.node("n", "add", {xh, xh}, w.tensor_hwc("y", {4, 4, 3}), "\"clamp\": [1, 0]");
       },
       "nodes[1].clamp: expected finite float32 values with lo <= hi"},
      {"clamp without bounds",
       [&](GraphWriter& w, uint32_t, uint32_t xh) {
         w.node("n", "clamp", {xh}, w.tensor_hwc("y", {4, 4, 3}));
       },
       "node 'n' (clamp): json: nodes[1]: missing field 'clamp'"},
      {"prelu of chw",
       [&](GraphWriter& w, uint32_t x, uint32_t) {
         w.node("n", "prelu", {x}, w.tensor("y", "f32", {3, 4, 4}), "\"slope\": " + w.data(three));
       },
       "node 'n' (prelu): inputs[0] (tensor 0 'x'): expected layout hwc"},
      {"prelu without slope",
       [&](GraphWriter& w, uint32_t, uint32_t xh) {
         w.node("n", "prelu", {xh}, w.tensor_hwc("y", {4, 4, 3}));
       },
       "node 'n' (prelu): json: nodes[1]: missing field 'slope'"},
      {"prelu NaN input_bias",
       [&](GraphWriter& w, uint32_t, uint32_t xh) {
         w.node("n", "prelu", {xh}, w.tensor_hwc("y", {4, 4, 3}),
                "\"slope\": " + w.data(three) + ", \"input_bias\": " + w.data(nan3));
       },
       "node 'n' (prelu): json: nodes[1].input_bias: value 1 is not finite"},
      {"prelu output_bias length",
       [&](GraphWriter& w, uint32_t, uint32_t xh) {
         w.node("n", "prelu", {xh}, w.tensor_hwc("y", {4, 4, 3}),
                "\"slope\": " + w.data(three) + ", \"output_bias\": " + w.data(two));
       },
       "nodes[1].output_bias: the section holds 8 bytes, expected 12 (3 x f32)"},
      {"concat of chw",
       [&](GraphWriter& w, uint32_t x, uint32_t xh) {
         w.node("n", "concat", {xh, x}, w.tensor_hwc("y", {4, 4, 7}));
       },
       "node 'n' (concat): inputs[1] (tensor 0 'x'): expected layout hwc"},
      {"concat f32 with u8",
       [&](GraphWriter& w, uint32_t, uint32_t xh) {
         const auto q = w.tensor("q", "u8", {4, 4, 3}, 0.1);
         w.node("q", "quantize", {xh}, q);
         w.node("n", "concat", {xh, q}, w.tensor_hwc("y", {4, 4, 6}));
       },
       "node 'n' (concat): inputs[1] (tensor 2 'q'): expected dtype f32, got u8"},
      {"concat widths",
       [&](GraphWriter& w, uint32_t, uint32_t xh) {
         w.node("n", "concat", {xh, xh}, w.tensor_hwc("y", {4, 4, 7}));
       },
       "outputs[0] (tensor 2 'y'): the last dimension must be the inputs' sum, 6, got 7"},
      {"transpose to the same layout",
       [&](GraphWriter& w, uint32_t x, uint32_t) {
         w.node("n", "transpose", {x}, w.tensor("y", "f32", {4, 4, 3}));
       },
       "node 'n' (transpose): outputs[0] (tensor 2 'y'): expected layout hwc"},
      {"transpose shape",
       [&](GraphWriter& w, uint32_t, uint32_t xh) {
         w.node("n", "transpose", {xh}, w.tensor("y", "f32", {4, 4, 3}));
       },
       "node 'n' (transpose): outputs[0] (tensor 2 'y'): expected shape [3, 4, 4], got [4, 4, 3]"},
      {"transpose of rank 1",
       [&](GraphWriter& w, uint32_t, uint32_t) {
         const auto r = w.tensor("r", "f32", {48});
         w.input("r", r);
         w.node("n", "transpose", {r}, w.tensor("y", "f32", {48}));
       },
       "node 'n' (transpose): inputs[0] (tensor 2 'r'): expected rank 3, got shape [48]"},
      {"quantize hwc to a transposed shape",
       [&](GraphWriter& w, uint32_t, uint32_t xh) {
         w.node("n", "quantize", {xh}, w.tensor("q", "u8", {3, 4, 4}, 0.1));
       },
       "node 'n' (quantize): outputs[0] (tensor 2 'q'): expected shape [4, 4, 3], got [3, 4, 4]"},
      {"dequantize to hwc with a chw shape",
       [&](GraphWriter& w, uint32_t, uint32_t xh) {
         const auto q = w.tensor("q", "u8", {4, 4, 3}, 0.1);
         w.node("q", "quantize", {xh}, q);
         w.node("n", "dequantize", {q}, w.tensor_hwc("y", {3, 4, 4}));
       },
       "node 'n' (dequantize): outputs[0] (tensor 3 'y'): expected shape [4, 4, 3], got [3, 4, 4]"},
      {"bconv2d f32 hwc shape",
       [&](GraphWriter& w, uint32_t, uint32_t xh) {
         const auto b = w.tensor("b", "b1", {4, 4, 3});
         w.node("s", "sign", {xh}, b);
         w.node("n", "bconv2d", {b}, w.tensor_hwc("y", {3, 3, 2}),
                "\"kernel\": [1, 1], \"stride\": [1, 1], \"dilation\": [1, 1], \"pads\": [0, 0, 0, 0], \"groups\": 1, "
                "\"pad_value\": \"one\", \"weights\": " +
                    w.data(std::vector<uint64_t>{1, 2}) + ", \"scale\": " + w.data(two) + ", \"bias\": " + w.data(two));
       },
       "node 'n' (bconv2d): outputs[0] (tensor 3 'y'): expected shape [4, 4, 2], got [3, 3, 2]"},
      {"fconv2d b1 output without sign_threshold",
       [&](GraphWriter& w, uint32_t, uint32_t xh) {
         w.node("n", "fconv2d", {xh}, w.tensor("b", "b1", {4, 4, 2}),
                conv1x1 + ", \"weights\": " + w.data(std::vector<float>(6, 0.5f)));
       },
       "node 'n' (fconv2d): json: nodes[1]: missing field 'sign_threshold'"},
      {"fconv2d sign_threshold NaN",
       [&](GraphWriter& w, uint32_t, uint32_t xh) {
         w.node("n", "fconv2d", {xh}, w.tensor("b", "b1", {4, 4, 3}),
                conv1x1 + ", \"weights\": " + w.data(std::vector<float>(9, 0.5f)) +
                    ", \"sign_threshold\": " + w.data(nan3));
       },
       "node 'n' (fconv2d): json: nodes[1].sign_threshold: value 1 is NaN"},
      {"fdense sign_threshold with an f32 output",
       [&](GraphWriter& w, uint32_t, uint32_t xh) {
         const auto flat = w.tensor("flat", "f32", {48});
         w.node("flatten", "reshape", {xh}, flat);
         w.node("n", "fdense", {flat}, w.tensor("y", "f32", {2}),
                "\"weights\": " + w.data(std::vector<float>(96, 0.5f)) + ", \"sign_threshold\": " + w.data(two));
       },
       "node 'n' (fdense): json: nodes[2].sign_threshold: given with an f32 output (the sign needs a b1 output)"},
      {"2 outputs where 1 is allowed",
       [&](GraphWriter& w, uint32_t, uint32_t xh) {
         w.node("n", "clamp", {xh}, std::vector<uint32_t>{w.tensor_hwc("y", {4, 4, 3}), w.tensor_hwc("z", {4, 4, 3})},
                "\"clamp\": [0, 1]");
       },
       "node 'n' (clamp): json: nodes[1].outputs: expected 1 output, got 2"},
  };
  std::string failures;
  for (const Case& c : cases) {
    GraphWriter w;
    const auto x = w.tensor("x", "f32", {3, 4, 4}), xh = w.tensor_hwc("xh", {4, 4, 3});
    w.input("x", x);
    w.node("to_hwc", "transpose", {x}, xh);
    c.build(w, x, xh);
    w.output("y", w.tensor("unused", "f32", {1}));  // never written: checked after the nodes
    const std::string message = load_error(w);
    if (message.find(c.part) == std::string::npos)
      failures += std::string("\n  ") + c.what + ": expected '" + c.part + "' in: " + message;
  }
  CHECK(failures.empty(), failures);
  {  // a layout on anything but a rank-3 f32 tensor
    const std::string text =
        "{\"lowbit\": 1, \"inputs\": [{\"name\": \"x\", \"tensor\": 0}], \"outputs\": [], \"tensors\": "
        "[{\"name\": \"x\", \"dtype\": \"f32\", \"shape\": [4, 3], \"layout\": \"hwc\"}], \"nodes\": []}";
    std::string message = "(loaded)";
    try {
      const auto f = lowbit::test::write_container(text, {});
      load_model(f.data(), f.size());
    } catch (const Error& e) {
      message = e.what();
    }
    CHECK(message.find("tensors[0].layout: only rank-3 f32 tensors have a layout") != std::string::npos, message);
  }
}

TEST(model_float_layers_equal_the_drivers) {
  // x (f32 hwc) -> fconv2d (7x7 stride 2, pads 3, bias, clamp) -> fconv2d (grouped 1x1 stride 2, no
  // bias) -> reshape -> fdense (bias) ; the first conv's output is a graph output too.
  auto g = rng(350);
  const size_t H = 11, W = 10, C0 = 3, C1 = 18, C2 = 12, N = 10;
  const size_t H1 = 6, W1 = 5, H2 = 3, W2 = 3;
  GraphWriter w;
  const auto x = w.tensor("x", "f32", {H, W, C0}), y1 = w.tensor("y1", "f32", {H1, W1, C1});
  const auto y2 = w.tensor("y2", "f32", {H2, W2, C2}), flat = w.tensor("flat", "f32", {H2 * W2 * C2});
  const auto logits = w.tensor("logits", "f32", {N});
  w.input("x", x), w.output("y1", y1), w.output("logits", logits);
  const std::vector<float> w1 = floats(g, C1 * 49 * C0, -0.5f, 0.5f), b1 = floats(g, C1, -1, 1);
  const std::vector<float> w2 = floats(g, C2 * (C1 / 3), -0.5f, 0.5f);
  const std::vector<float> w3 = floats(g, N * H2 * W2 * C2, -0.2f, 0.2f), b3 = floats(g, N, -1, 1);
  w.node("stem", "fconv2d", {x}, y1,
         "\"kernel\": [7, 7], \"stride\": [2, 2], \"dilation\": [1, 1], \"pads\": [3, 3, 3, 3], \"groups\": 1, "
         "\"weights\": " +
             w.data(w1) + ", \"bias\": " + w.data(b1) + ", \"clamp\": [-0.5, 1.5]");
  w.node("down", "fconv2d", {y1}, y2,
         "\"kernel\": [1, 1], \"stride\": [2, 2], \"dilation\": [1, 1], \"pads\": [0, 0, 0, 0], \"groups\": 3, "
         "\"weights\": " +
             w.data(w2));
  w.node("flatten", "reshape", {y2}, flat);
  w.node("fc", "fdense", {flat}, logits, "\"weights\": " + w.data(w3) + ", \"bias\": " + w.data(b3));
  const std::vector<uint8_t> f = file_with_hwc(w, {"x", "y1", "y2"});
  const auto m = load_model(f.data(), f.size());

  const auto p1 = pack_fconv2d_weights(w1.data(), C1, 7, 7, C0, 1);
  const auto p2 = pack_fconv2d_weights(w2.data(), C2, 1, 1, C1 / 3, 3);
  const auto p3 = pack_fconv2d_weights(w3.data(), N, 1, 1, H2 * W2 * C2, 1);
  const Conv2dParams c1{2, 2, 1, 1, 3, 3, 3, 3}, c2{2, 2, 1, 1, 0, 0, 0, 0};
  for (size_t batch : {1, 3}) {
    const std::vector<float> in = floats(g, batch * H * W * C0, -1, 1);
    const auto out = run(*m, batch, {in});
    std::vector<float> want1(batch * H1 * W1 * C1), want2(batch * H2 * W2 * C2), want3(batch * N);
    fconv2d(in.data(), fconv2d_shape(batch, H, W, C0, *p1, c1), *p1, c1, FEpilogue{b1.data(), -0.5f, 1.5f},
            want1.data());
    fconv2d(want1.data(), fconv2d_shape(batch, H1, W1, C1, *p2, c2), *p2, c2, FEpilogue{}, want2.data());
    fdense(want2.data(), batch, H2 * W2 * C2, *p3, FEpilogue{b3.data()}, want3.data());
    CHECK_SAME(out[0], want1, "stem, batch " << batch);
    CHECK_SAME(out[1], want3, "logits, batch " << batch);
    CHECK(distinct(out[0]) >= 100, "stem: only " << distinct(out[0]) << " distinct outputs");
    CHECK(std::count(out[0].begin(), out[0].end(), -0.5f) > 0, "the clamp's lower bound is never reached");
  }
}

TEST(model_float_layers_with_fused_sign_equal_the_drivers) {
  // x (f32 chw, one channel) -> transpose (a copy) -> fconv2d (3x3, pads 1, bias, clamp; b1 output:
  // the sign fused) -> unpack -> reshape -> dequantize; -> reshape -> fdense (b1 output, 70
  // channels: two words) -> unpack -> dequantize. The bits equal fconv2d_sign's, the driver the
  // layer calls (same ISA, same bits).
  auto g = rng(351);
  const size_t H = 9, W = 7, C0 = 1, C1 = 33, N = 70;
  GraphWriter w;
  const auto x = w.tensor("x", "f32", {C0, H, W}), xh = w.tensor("xh", "f32", {H, W, C0});
  const auto b1 = w.tensor("b1", "b1", {H, W, C1});
  const auto u1 = w.tensor("u1", "s8", {H, W, C1}, 1, 0), f1 = w.tensor("f1", "s8", {H * W * C1}, 1, 0);
  const auto y1 = w.tensor("y1", "f32", {H * W * C1}), flat = w.tensor("flat", "f32", {H * W * C0});
  const auto b2 = w.tensor("b2", "b1", {N}), u2 = w.tensor("u2", "s8", {N}, 1, 0), y2 = w.tensor("y2", "f32", {N});
  w.input("x", x), w.output("y1", y1), w.output("y2", y2);
  const std::vector<float> w1 = floats(g, C1 * 9 * C0, -1, 1), bias1 = floats(g, C1, -0.5f, 0.5f);
  std::vector<float> t1 = floats(g, C1, -0.3f, 0.3f);
  t1[0] = INFINITY, t1[1] = -INFINITY;  // a constant channel each way: every y < +inf (bit 1, -1)
  const std::vector<float> w2 = floats(g, N * H * W * C0, -0.3f, 0.3f), t2 = floats(g, N, -0.5f, 0.5f);
  w.node("to_hwc", "transpose", {x}, xh);
  w.node("conv1", "fconv2d", {xh}, b1,
         "\"kernel\": [3, 3], \"stride\": [1, 1], \"dilation\": [1, 1], \"pads\": [1, 1, 1, 1], \"groups\": 1, "
         "\"weights\": " +
             w.data(w1) + ", \"bias\": " + w.data(bias1) +
             ", \"clamp\": [-1, 0.75], \"sign_threshold\": " + w.data(t1));
  w.node("unpack1", "unpack", {b1}, u1);
  w.node("flatten1", "reshape", {u1}, f1);
  w.node("dq1", "dequantize", {f1}, y1);
  w.node("flatten", "reshape", {xh}, flat);
  w.node("fc", "fdense", {flat}, b2, "\"weights\": " + w.data(w2) + ", \"sign_threshold\": " + w.data(t2));
  w.node("unpack2", "unpack", {b2}, u2);
  w.node("dq2", "dequantize", {u2}, y2);
  const std::vector<uint8_t> f = file_with_hwc(w, {"xh"});
  const auto m = load_model(f.data(), f.size());

  const auto p1 = pack_fconv2d_weights(w1.data(), C1, 3, 3, C0, 1);
  const auto p2 = pack_fconv2d_weights(w2.data(), N, 1, 1, H * W * C0, 1);
  const Conv2dParams c1{1, 1, 1, 1, 1, 1, 1, 1};
  // +-1 per channel from packed bits (1 = -1).
  auto signs = [](const std::vector<uint64_t>& bits, size_t c) {
    const size_t words = b1_words(c), rows = bits.size() / words;
    std::vector<float> v(rows * c);
    for (size_t r = 0; r < rows; ++r)
      for (size_t ch = 0; ch < c; ++ch) v[r * c + ch] = (bits[r * words + ch / 64] >> (ch % 64)) & 1 ? -1.f : 1.f;
    return v;
  };
  for (size_t batch : {1, 4}) {
    const std::vector<float> in = floats(g, batch * H * W * C0, -1, 1);
    const auto out = run(*m, batch, {in});
    std::vector<uint64_t> want1(batch * H * W * b1_words(C1)), want2(batch * b1_words(N));
    fconv2d_sign(in.data(), fconv2d_shape(batch, H, W, C0, *p1, c1), *p1, c1, FEpilogue{bias1.data(), -1, 0.75f},
                 t1.data(), want1.data());
    fconv2d_sign(in.data(), fconv2d_shape(batch, 1, 1, H * W * C0, *p2, Conv2dParams{}), *p2, Conv2dParams{},
                 FEpilogue{}, t2.data(), want2.data());
    CHECK_SAME(out[0], signs(want1, C1), "conv1 signs, batch " << batch);
    CHECK_SAME(out[1], signs(want2, N), "fc signs, batch " << batch);
    for (size_t px = 0; px < batch * H * W; ++px)
      CHECK(out[0][px * C1] == -1.f && out[0][px * C1 + 1] == 1.f, "the infinite thresholds at pixel " << px);
    const size_t minus = std::count(out[0].begin(), out[0].end(), -1.f);
    CHECK(minus > out[0].size() / 5 && minus < out[0].size() * 4 / 5, minus << " of " << out[0].size() << " are -1");
  }
}

TEST(model_pad_and_float_affine) {
  // x f32 hwc -> pad (value -0.75, asymmetric) -> affine (scale, bias, clamp) -> output;
  // x -> quantize (u8) -> pad (code 200) -> dequantize; x -> sign -> pad (bit 1: -1) -> unpack ->
  // dequantize: each against plain reference math.
  auto g = rng(952);
  const size_t C = 67, H = 4, W = 5, T = 1, L = 0, B = 2, R = 3, OH = H + T + B, OW = W + L + R;
  const auto scale = floats(g, C, -2, 2), bias = floats(g, C, -1, 1);
  const float qscale = 0.05f;
  GraphWriter w;
  const auto x = w.tensor_hwc("x", {H, W, C}), p = w.tensor_hwc("p", {OH, OW, C}), a = w.tensor_hwc("a", {OH, OW, C});
  const auto q = w.tensor("q", "u8", {H, W, C}, qscale, 100), qp = w.tensor("qp", "u8", {OH, OW, C}, qscale, 100);
  const auto qd = w.tensor_hwc("qd", {OH, OW, C});
  const auto s = w.tensor("s", "b1", {H, W, C}), sp = w.tensor("sp", "b1", {OH, OW, C});
  const auto u = w.tensor("u", "s8", {OH, OW, C}, 1, 0), ud = w.tensor_hwc("ud", {OH, OW, C});
  w.input("x", x), w.output("affine", a), w.output("u8", qd), w.output("b1", ud);
  const std::string pads = "\"pads\": [1, 0, 2, 3], ";
  w.node("pad", "pad", {x}, p, pads + "\"value\": -0.75");
  w.node("affine", "affine", {p}, a,
         "\"scale\": " + w.data(scale) + ", \"bias\": " + w.data(bias) + ", \"clamp\": [-1.5, 1.0]");
  w.node("quantize", "quantize", {x}, q);
  w.node("qpad", "pad", {q}, qp, pads + "\"value\": 200");
  w.node("dequantize", "dequantize", {qp}, qd);
  w.node("sign", "sign", {x}, s);
  w.node("bpad", "pad", {s}, sp, pads + "\"value\": 1");
  w.node("unpack", "unpack", {sp}, u);
  w.node("signs", "dequantize", {u}, ud);
  const auto m = load(w);

  for (size_t batch : {1, 3}) {
    const auto xs = floats(g, batch * H * W * C, -2, 2);
    std::vector<float> ra(batch * OH * OW * C), rq(ra.size()), rs(ra.size());
    for (size_t n = 0; n < batch; ++n)
      for (size_t y = 0; y < OH; ++y)
        for (size_t xx = 0; xx < OW; ++xx)
          for (size_t ch = 0; ch < C; ++ch) {
            const size_t o = ((n * OH + y) * OW + xx) * C + ch;
            const bool inside = y >= T && y < T + H && xx >= L && xx < L + W;
            const float v = inside ? xs[((n * H + y - T) * W + xx - L) * C + ch] : -0.75f;
            ra[o] = ref_clamp(v * scale[ch] + bias[ch], -1.5f, 1.0f);
            rq[o] =
                inside ? dequantized(quantized({v}, qscale, 100, false), qscale, 100, false)[0] : qscale * (200 - 100);
            rs[o] = inside ? (v < 0 ? -1.0f : 1.0f) : -1.0f;
          }
    const auto out = run(*m, batch, {xs});
    CHECK_SAME(out[0], ra, "f32 pad -> affine, batch " << batch);
    CHECK_SAME(out[1], rq, "u8 pad, batch " << batch);
    CHECK_SAME(out[2], rs, "b1 pad, batch " << batch);
  }
  // The value must fit the dtype.
  for (const char* bad : {"\"value\": 256", "\"value\": 2", "\"value\": 1e39"}) {
    GraphWriter v;
    const bool b1 = std::string(bad) == "\"value\": 2", f32 = std::string(bad) == "\"value\": 1e39";
    const auto vx = v.tensor_hwc("x", {H, W, C});
    const auto in = f32 ? vx : b1 ? v.tensor("s", "b1", {H, W, C}) : v.tensor("q", "u8", {H, W, C}, qscale, 100);
    const auto out = f32  ? v.tensor_hwc("p", {OH, OW, C})
                     : b1 ? v.tensor("p", "b1", {OH, OW, C})
                          : v.tensor("p", "u8", {OH, OW, C}, qscale, 100);
    const auto y = v.tensor_hwc("y", {OH, OW, C});
    v.input("x", vx), v.output("y", y);
    if (!f32) v.node("to", b1 ? "sign" : "quantize", {vx}, in);
    v.node("pad", "pad", {in}, out, pads + bad);
    if (b1) {
      const auto uu = v.tensor("u", "s8", {OH, OW, C}, 1, 0);
      v.node("unpack", "unpack", {out}, uu);
      v.node("deq", "dequantize", {uu}, y);
    } else {
      v.node("deq", f32 ? "clamp" : "dequantize", {out}, y, f32 ? "\"clamp\": [-1.0, 1.0]" : "");
    }
    std::string message;
    try {
      load(v);
    } catch (const Error& e) {
      message = e.what();
    }
    CHECK(message.find("node 'pad' (pad)") != std::string::npos && message.find("value") != std::string::npos,
          bad << ": " << message);
  }
}

// ---- the fused binary-block epilogue ------------------------------------------------------------------

namespace {

// A Bi-Real / ReActNet block: x -> sign -> bconv2d (or bdense) -> + x -> RPReLU -> clamp -> the
// output and its sign bits (unpacked to +-1 floats). fused: one bconv2d node with the residual
// input, the prelu_* fields and the second output; else the separate operators.
std::shared_ptr<const Model> block_model(bool fused, bool dense, bool with_mst, size_t c, size_t h, size_t w_,
                                         uint64_t salt) {
  auto g = rng(salt);  // the same salt gives the same weights to the fused and the separate model
  const size_t k = dense ? 1 : 3, taps = k * k;
  const auto bw = dense ? pack_binary_conv2d_weights_f32(structured_signs(g, c, c).data(), c, 1, 1, c, 1)
                        : pack_binary_conv2d_weights_f32(structured_signs(g, c, taps * c).data(), c, 3, 3, c, 1);
  const auto scale = floats(g, c, -0.1f, 0.1f), bias = floats(g, c, -1, 1);
  const auto slope = floats(g, c, -0.5f, 0.5f), ib = floats(g, c, -0.3f, 0.3f), ob = floats(g, c, -0.3f, 0.3f);
  const auto in_thr = floats(g, c, -0.2f, 0.2f), thr = floats(g, c, -0.2f, 0.2f);
  const std::vector<size_t> shape = dense ? std::vector<size_t>{c} : std::vector<size_t>{h, w_, c};
  GraphWriter w;
  const auto x = dense ? w.tensor("x", "f32", {c}) : w.tensor("x", "f32", {c, h, w_});
  const auto xh = dense ? x : w.tensor_hwc("xh", shape);
  const auto xb = w.tensor("xb", "b1", shape);
  auto f32 = [&](const std::string& name) { return dense ? w.tensor(name, "f32", shape) : w.tensor_hwc(name, shape); };
  const auto y = f32("y"), bits = w.tensor("bits", "b1", shape), u = w.tensor("u", "s8", shape, 1, 0);
  const auto signs = f32("signs");
  w.input("x", x), w.output("y", y), w.output("signs", signs);
  if (!dense) w.node("to_hwc", "transpose", {x}, xh);
  w.node("sign_in", "sign", {xh}, xb, "\"threshold\": " + w.data(in_thr));
  std::string attrs =
      "\"weights\": " + w.data(bw->bits) + ", \"scale\": " + w.data(scale) + ", \"bias\": " + w.data(bias);
  if (!dense)
    attrs +=
        ", \"kernel\": [3, 3], \"stride\": [1, 1], \"dilation\": [1, 1], \"pads\": [1, 1, 1, 1], \"groups\": 1, "
        "\"pad_value\": \"zero\"";
  if (with_mst)
    attrs += ", \"mst\": " + w.data(serialize_mst(*build_mst(*bw, MstOptions{}), *bw)) + ", \"mst_policy\": \"always\"";
  const std::string op = dense ? "bdense" : "bconv2d";
  const std::string prelu =
      "\"slope\": " + w.data(slope) + ", \"input_bias\": " + w.data(ib) + ", \"output_bias\": " + w.data(ob);
  if (fused) {
    w.node("conv", op, {xb, xh}, std::vector<uint32_t>{y, bits},
           attrs + ", \"prelu_slope\": " + w.data(slope) + ", \"prelu_input_bias\": " + w.data(ib) +
               ", \"prelu_output_bias\": " + w.data(ob) +
               ", \"clamp\": [-1.5, 1.25], \"sign_threshold\": " + w.data(thr));
  } else {
    const auto y0 = f32("y0"), y1 = f32("y1"), y2 = f32("y2");
    w.node("conv", op, {xb}, y0, attrs);
    w.node("residual", "add", {y0, xh}, y1);
    w.node("rprelu", "prelu", {y1}, y2, prelu);
    w.node("hardtanh", "clamp", {y2}, y, "\"clamp\": [-1.5, 1.25]");
    w.node("sign", "sign", {y}, bits, "\"threshold\": " + w.data(thr));
  }
  w.node("unpack", "unpack", {bits}, u);
  w.node("signs", "dequantize", {u}, signs);
  return load(w);
}

}  // namespace

TEST(model_fused_block_epilogue_equals_the_separate_operators) {
  auto g = rng(960);
  struct Case {
    const char* what;
    bool dense, mst;
    size_t c, h, w;
  };
  const Case cases[] = {
      {"bconv2d 70 channels (a 64-channel chunk and a tail)", false, false, 70, 5, 4},
      {"bconv2d 130 channels, MST", false, true, 130, 3, 3},
      {"bconv2d 16 channels, 1x1 image", false, false, 16, 1, 1},
      {"bdense 100", true, false, 100, 1, 1},
      {"bdense 67, MST", true, true, 67, 1, 1},
  };
  uint64_t salt = 961;
  for (const Case& k : cases) {
    const auto fused = block_model(true, k.dense, k.mst, k.c, k.h, k.w, salt);
    const auto plain = block_model(false, k.dense, k.mst, k.c, k.h, k.w, salt);
    ++salt;
    CHECK(fused->nodes().size() + 4 == plain->nodes().size(), k.what << ": node counts");
    size_t negative = 0, positive = 0;  // over both batches: 16 signs of one sample can all agree
    for (size_t batch : {1, 3}) {
      auto xs = floats(g, batch * k.c * k.h * k.w, -1.5f, 1.5f);
      xs[0] = NAN, xs[1] = -0.0f;
      const auto a = run(*fused, batch, {xs}), b = run(*plain, batch, {xs});
      CHECK_SAME(a[0], b[0], k.what << ": the residual stream, batch " << batch);
      CHECK_SAME(a[1], b[1], k.what << ": the sign bits, batch " << batch);
      CHECK(distinct(a[0]) > k.c / 2, k.what << ": outputs should vary");
      negative += std::count(a[1].begin(), a[1].end(), -1.0f);
      positive += std::count(a[1].begin(), a[1].end(), 1.0f);
    }
    CHECK(negative > 0 && positive > 0, k.what << ": signs should vary");
    // Two outputs and a residual: the planner keeps each buffer apart from what it overlaps.
    CHECK(fused->memory_plan(2).arena_bytes > 0, k.what);
  }
}

TEST(model_fused_block_epilogue_rejects_bad_nodes) {
  // x f32 [4, 4, 3] hwc -> sign -> b; then the bconv2d under test, 1x1 with 2 output channels
  // ... -> y [4, 4, 2] (+ z b1 [4, 4, 2]).
  struct Case {
    const char* what;
    std::string extra;             // attributes added to the bconv2d
    std::vector<std::string> ins;  // beyond b: "r" (f32 hwc [4,4,2]), "rc" (chw), "r3" ([4,4,3])
    std::string y;                 // "hwc", "chw", "s8"
    std::string second;            // "", "b1", "f32", "b1x3" (b1 [4, 4, 3]), "two" (two more outputs)
    std::string part;
  };
  const Case cases[] = {
      {"residual of the wrong shape",
       "",
       {"r3"},
       "hwc",
       "",
       "inputs[1] (tensor 4 'r3'): expected shape [4, 4, 2], got [4, 4, 3]"},
      {"residual chw", "", {"rc"}, "hwc", "", "inputs[1] (tensor 3 'rc'): expected layout hwc"},
      {"fused chw output",
       "",
       {"r"},
       "chw",
       "",
       "outputs[0] (tensor 5 'y'): a fused output must have layout hwc, got chw"},
      {"fused s8 output",
       "",
       {"r"},
       "s8",
       "",
       "outputs[0] (tensor 5 'y'): a residual input, RPReLU or sign output needs an f32 output, got s8"},
      {"sign output without thresholds", "", {}, "hwc", "b1", "json: nodes[1]: missing field 'sign_threshold'"},
      {"thresholds without a sign output",
       ", \"sign_threshold\": TWO",
       {},
       "hwc",
       "",
       "nodes[1].sign_threshold: given without a second output (the sign bits)"},
      {"threshold length",
       ", \"sign_threshold\": THREE",
       {},
       "hwc",
       "b1",
       "nodes[1].sign_threshold: the section holds 12 bytes, expected 8 (2 x f32)"},
      {"threshold NaN", ", \"sign_threshold\": NAN", {}, "hwc", "b1", "nodes[1].sign_threshold: value 1 is NaN"},
      {"second output f32",
       ", \"sign_threshold\": TWO",
       {},
       "hwc",
       "f32",
       "outputs[1] (tensor 6 'z'): expected dtype b1, got f32"},
      {"second output shape",
       ", \"sign_threshold\": TWO",
       {},
       "hwc",
       "b1x3",
       "outputs[1] (tensor 6 'z'): expected shape [4, 4, 2], got [4, 4, 3]"},
      {"three outputs",
       ", \"sign_threshold\": TWO",
       {},
       "hwc",
       "two",
       "nodes[1].outputs: expected 1 to 2 outputs, got 3"},
      {"three inputs", "", {"r", "r"}, "hwc", "", "nodes[1].inputs: expected 1 to 2 inputs, got 3"},
      {"prelu bias without slope",
       ", \"prelu_output_bias\": TWO",
       {},
       "hwc",
       "",
       "nodes[1].prelu_output_bias: given without prelu_slope"},
      {"prelu slope length",
       ", \"prelu_slope\": THREE",
       {},
       "hwc",
       "",
       "nodes[1].prelu_slope: the section holds 12 bytes, expected 8 (2 x f32)"},
      {"prelu NaN input bias",
       ", \"prelu_slope\": TWO, \"prelu_input_bias\": NAN",
       {},
       "hwc",
       "",
       "nodes[1].prelu_input_bias: value 1 is not finite"},
  };
  std::string failures;
  for (const Case& c : cases) {
    GraphWriter w;
    const auto x = w.tensor_hwc("x", {4, 4, 3}), b = w.tensor("b", "b1", {4, 4, 3});
    const auto r = w.tensor_hwc("r", {4, 4, 2}), rc = w.tensor("rc", "f32", {4, 4, 2}),
               r3 = w.tensor_hwc("r3", {4, 4, 3});
    w.input("x", x), w.input("r", r), w.input("rc", rc), w.input("r3", r3);
    const auto y = c.y == "hwc"   ? w.tensor_hwc("y", {4, 4, 2})
                   : c.y == "chw" ? w.tensor("y", "f32", {2, 4, 4})
                                  : w.tensor("y", "s8", {4, 4, 2}, 0.5, 0);
    std::vector<uint32_t> outs{y};
    if (c.second == "b1" || c.second == "two") outs.push_back(w.tensor("z", "b1", {4, 4, 2}));
    if (c.second == "f32") outs.push_back(w.tensor_hwc("z", {4, 4, 2}));
    if (c.second == "b1x3") outs.push_back(w.tensor("z", "b1", {4, 4, 3}));
    if (c.second == "two") outs.push_back(w.tensor("z2", "b1", {4, 4, 2}));
    std::vector<uint32_t> ins{b};
    for (const auto& name : c.ins) ins.push_back(name == "r" ? r : name == "rc" ? rc : r3);
    w.node("s", "sign", {x}, b);
    std::string extra = c.extra;
    const std::pair<const char*, std::vector<float>> data[] = {
        {"TWO", {0.5f, 0.5f}}, {"THREE", {0.5f, 0.5f, 0.5f}}, {"NAN", {0.5f, NAN}}};
    for (const auto& [token, values] : data)
      for (size_t at; (at = extra.find(token)) != std::string::npos;)
        extra.replace(at, std::strlen(token), w.data(values));
    const std::string epilogue =
        c.y == "s8"
            ? ", \"multiplier\": " + w.data(std::vector<int32_t>{1 << 30, 1 << 30}) +
                  ", \"shift\": " + w.data(std::vector<uint8_t>{30, 30}) +
                  ", \"bias\": " + w.data(std::vector<int32_t>{0, 0}) + ", \"clamp\": [-128, 127]"
            : ", \"scale\": " + w.data(std::vector<float>{1, 1}) + ", \"bias\": " + w.data(std::vector<float>{0, 0});
    w.node("n", "bconv2d", ins, outs,
           "\"kernel\": [1, 1], \"stride\": [1, 1], \"dilation\": [1, 1], \"pads\": [0, 0, 0, 0], \"groups\": 1, "
           "\"pad_value\": \"one\", \"weights\": " +
               w.data(std::vector<uint64_t>{5, 2}) + epilogue + extra);
    w.output("out", w.tensor("unused", "f32", {1}));
    const std::string message = load_error(w);
    if (message.find(c.part) == std::string::npos)
      failures += std::string("\n  ") + c.what + ": expected '" + c.part + "' in: " + message;
  }
  CHECK(failures.empty(), failures);
}
