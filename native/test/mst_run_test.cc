// mst_run_test.cc: running binary layers through MST schedules. The MST channel kernels of every ISA
// against the reference, and bconv2d_mst / bdense_mst against the dense bconv2d / bdense, bit for bit,
// on random geometries, schedules and epilogues.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "binary/kernels.h"
#include "cpu/dispatch.h"
#include "harness.h"
#include "lowbit/error.h"
#include "lowbit/mst.h"

using namespace lowbit;
using lowbit::test::rng;

namespace {

std::string where_isa(Isa isa) { return std::string(isa_name(isa)) + ": "; }

// out_c channels of `per_channel` +-1 values (OHWI), built so that MST schedules of every kind
// appear: copies of an earlier channel with a few flips (small distances, chains when each copies
// the one before), exact copies, complements, and unrelated channels.
std::vector<float> structured_weights(std::mt19937_64& g, size_t out_c, size_t per_channel, double flip) {
  std::vector<float> w(out_c * per_channel);
  std::uniform_real_distribution<double> u(0, 1);
  for (size_t c = 0; c < out_c; ++c) {
    float* row = w.data() + c * per_channel;
    const size_t kind = c == 0 ? 0 : g() % 8;
    const float* from = w.data() + (kind == 1 ? c - 1 : g() % std::max<size_t>(c, 1)) * per_channel;
    for (size_t i = 0; i < per_channel; ++i) {
      switch (kind) {
        case 0:
          row[i] = g() % 2 ? 1.f : -1.f;
          break;  // unrelated
        case 5:
          row[i] = from[i];
          break;  // identical
        case 6:
          row[i] = -from[i];
          break;  // complement
        case 7:
          row[i] = u(g) < 0.9 ? -from[i] : from[i];
          break;  // near-complement
        default:
          row[i] = u(g) < flip ? -from[i] : from[i];
          break;  // a few flips (kind 1: chain)
      }
    }
  }
  return w;
}

struct Epilogues {
  std::vector<float> scale, bias;
  std::vector<int32_t> mult, bias_q, threshold;
  std::vector<uint8_t> shift, flip;
  Epilogues(std::mt19937_64& g, size_t oc)
      : scale(oc), bias(oc), mult(oc), bias_q(oc), threshold(oc), shift(oc), flip(oc) {
    for (size_t o = 0; o < oc; ++o) {
      scale[o] = std::uniform_real_distribution<float>(-2, 2)(g);
      bias[o] = std::uniform_real_distribution<float>(-5, 5)(g);
      mult[o] = static_cast<int32_t>(g() % 2000001) - 1000000;
      shift[o] = static_cast<uint8_t>(12 + g() % 10);
      bias_q[o] = static_cast<int32_t>(g() % 21) - 10;
      threshold[o] = static_cast<int32_t>(g() % 41) - 20;
      flip[o] = g() % 2;
    }
  }
  BinaryEpilogue make(OutputKind kind) const {
    BinaryEpilogue e;
    e.kind = kind;
    e.scale = scale.data(), e.bias_f32 = bias.data(), e.lo = -INFINITY, e.hi = 30.f;
    e.mult = mult.data(), e.shift = shift.data(), e.bias_s32 = bias_q.data(), e.qmin = -100, e.qmax = 120;
    e.threshold = threshold.data(), e.flip = flip.data();
    return e;
  }
};

size_t element_bytes(OutputKind kind) { return kind == OutputKind::F32 ? 4 : kind == OutputKind::S8 ? 1 : 8; }

// Runs dense and MST (forced) with every epilogue on every ISA and compares the output bytes.
template <typename Dense, typename Mst>
void check_same_outputs(const std::string& what, size_t pixels, size_t oc, const Epilogues& ep, Dense dense, Mst mst) {
  for (Isa isa : supported_isas()) {
    set_isa(isa_name(isa));
    for (OutputKind kind : {OutputKind::F32, OutputKind::S8, OutputKind::B1}) {
      const BinaryEpilogue e = ep.make(kind);
      const size_t bytes = binary_output_size(kind, pixels, oc) * element_bytes(kind);
      std::vector<uint8_t> want(bytes + 16, 0xA5), got(bytes + 16, 0x5A);
      dense(e, want.data());
      mst(e, got.data());
      const auto diff = std::mismatch(want.begin(), want.begin() + bytes, got.begin());
      CHECK(diff.first == want.begin() + bytes, where_isa(isa)
                                                    << what << " kind " << int(kind) << ": first difference at byte "
                                                    << (diff.first - want.begin()) << " of " << bytes);
      for (size_t b = bytes; b < bytes + 16; ++b)
        CHECK(got[b] == 0x5A, where_isa(isa) << what << ": wrote past the output");
    }
  }
  set_isa(isa_name(supported_isas().back()));
}

}  // namespace

TEST(mst_channel_kernels_match_the_reference) {
  auto g = rng(60);
  const size_t row_count = 700, words = row_count * 2 * (kMstTile / 64);
  std::vector<uint64_t> rows(words);
  for (auto& v : rows) v = g();
  for (size_t n : {0, 1, 2, 15, 16, 17, 31, 32, 33, 100, 255, 256, 257, 1000, 4097, 70000}) {
    std::vector<uint32_t> entries(n);
    for (auto& e : entries) e = static_cast<uint32_t>((g() % (2 * row_count)) * kMstRowBytes);
    std::vector<int32_t> parent(kMstTile);
    for (auto& v : parent) v = static_cast<int32_t>(g() % 20001) - 10000;
    for (int32_t sign : {-1, 0, 1})
      for (int32_t shift : {1, 2}) {
        const int32_t base = static_cast<int32_t>(g() % 10000);
        std::vector<int32_t> want(kMstTile), got(kMstTile + 8, 0x7777);
        ref::kBinaryKernels.mst_channel(rows.data(), entries.data(), n, parent.data(), sign, base, shift, want.data());
        for (Isa isa : supported_isas()) {
          binary_kernels_for(isa).mst_channel(rows.data(), entries.data(), n, parent.data(), sign, base, shift,
                                              got.data());
          for (size_t p = 0; p < kMstTile; ++p)
            CHECK(got[p] == want[p], where_isa(isa) << "n=" << n << " sign " << sign << " shift " << shift << " pixel "
                                                    << p << ": got " << got[p] << " want " << want[p]);
          CHECK(got[kMstTile] == 0x7777, where_isa(isa) << "wrote past 256 results");
        }
      }
  }
}

TEST(bconv2d_mst_equals_dense_for_every_padding_and_epilogue) {
  auto g = rng(61);
  for (int round = 0; round < 40; ++round) {
    const size_t groups = round % 5 == 4 ? 1 + g() % 3 : 1;
    const size_t icg = 1 + g() % (round % 3 == 0 ? 150 : 70), c = icg * groups;
    const size_t oc = groups * (1 + g() % 40), kh = 1 + g() % 3, kw = round % 7 == 0 ? 1 : 1 + g() % 3;
    const size_t n = 1 + g() % 2, h = round % 6 == 0 ? 1 : 1 + g() % 20, wd = round % 6 == 0 ? 1 : 1 + g() % 20;
    Conv2dParams p;
    p.stride_h = 1 + g() % 2, p.stride_w = 1 + g() % 2;
    p.dilation_h = round % 8 == 3 ? 2 : 1, p.dilation_w = round % 8 == 5 ? 2 : 1;
    // Pads below the dilated extent, random per side; always enough to fit the kernel.
    const size_t eh = (kh - 1) * p.dilation_h + 1, ew = (kw - 1) * p.dilation_w + 1;
    if (g() % 3 != 0) p.pad_top = g() % eh, p.pad_bottom = g() % eh, p.pad_left = g() % ew, p.pad_right = g() % ew;
    if (h + p.pad_top + p.pad_bottom < eh) p.pad_top = p.pad_bottom = eh - 1;
    if (wd + p.pad_left + p.pad_right < ew) p.pad_left = p.pad_right = ew - 1;
    p.pad_value = g() % 2 ? PadValue::Zero : PadValue::One;
    const auto wt = structured_weights(g, oc, kh * kw * icg, std::array<double, 3>{0.01, 0.05, 0.2}[g() % 3]);
    auto w = pack_binary_conv2d_weights_f32(wt.data(), oc, kh, kw, icg, groups);
    MstOptions options;
    options.max_depth = std::array<size_t, 4>{SIZE_MAX, 1, 2, 0}[round % 4];
    options.allow_negation = round % 3 != 1;
    auto schedule = build_mst(*w, options);
    auto plan = compile_mst(*schedule, *w);
    CHECK(plan != nullptr, "a small layer always compiles");
    const Conv2dShape s = bconv2d_shape(n, h, wd, c, *w, p);
    std::vector<uint64_t> x(n * h * wd * b1_words(c));
    for (size_t i = 0; i < n * h * wd; ++i)
      for (size_t j = 0; j < b1_words(c); ++j)
        x[i * b1_words(c) + j] = g() & (j + 1 < b1_words(c) || c % 64 == 0 ? ~0ull : (1ull << (c % 64)) - 1);
    const Epilogues ep(g, oc);
    const std::string what = "round " + std::to_string(round) + " N" + std::to_string(n) + " " + std::to_string(h) +
                             "x" + std::to_string(wd) + "x" + std::to_string(c) + " -> " + std::to_string(oc) + " k" +
                             std::to_string(kh) + "x" + std::to_string(kw) + " g" + std::to_string(groups) +
                             (p.pad_value == PadValue::Zero ? " zero-pad" : " one-pad") +
                             " depth<=" + std::to_string(options.max_depth) + " max depth " +
                             std::to_string(schedule->max_depth);
    check_same_outputs(
        what, n * s.out_h * s.out_w, oc, ep,
        [&](const BinaryEpilogue& e, void* out) { bconv2d(x.data(), s, *w, p, e, out); },
        [&](const BinaryEpilogue& e, void* out) { bconv2d_mst(x.data(), s, *w, *plan, p, e, out, MstPolicy::Always); });
  }
}

TEST(bdense_mst_equals_dense_across_tiles) {
  auto g = rng(62);
  for (size_t rows : {1, 3, 255, 256, 257, 600}) {
    const size_t in = 1 + g() % 300, oc = 1 + g() % 90;
    const auto wt = structured_weights(g, oc, in, 0.03);
    auto w = pack_binary_conv2d_weights_f32(wt.data(), oc, 1, 1, in, 1);
    auto plan = compile_mst(*build_mst(*w, MstOptions{SIZE_MAX, true}), *w);
    std::vector<uint64_t> x(rows * b1_words(in));
    for (size_t r = 0; r < rows; ++r)
      for (size_t j = 0; j < b1_words(in); ++j)
        x[r * b1_words(in) + j] = g() & (j + 1 < b1_words(in) || in % 64 == 0 ? ~0ull : (1ull << (in % 64)) - 1);
    const Epilogues ep(g, oc);
    check_same_outputs(
        "dense rows " + std::to_string(rows) + " " + std::to_string(in) + " -> " + std::to_string(oc), rows, oc, ep,
        [&](const BinaryEpilogue& e, void* out) { bdense(x.data(), rows, in, *w, e, out); },
        [&](const BinaryEpilogue& e, void* out) {
          bdense_mst(x.data(), rows, in, *w, *plan, e, out, MstPolicy::Always);
        });
  }
}

TEST(mst_plan_belongs_to_its_weights_and_the_cost_model_prefers_the_cheaper_path) {
  auto g = rng(63);
  const auto wt = structured_weights(g, 64, 576, 0.02);
  auto w = pack_binary_conv2d_weights_f32(wt.data(), 64, 3, 3, 64, 1);
  auto other = pack_binary_conv2d_weights_f32(wt.data(), 64, 3, 3, 64, 1);
  auto plan = compile_mst(*build_mst(*w, MstOptions{}), *w);
  const Conv2dShape s = bconv2d_shape(1, 4, 4, 64, *other, Conv2dParams{});
  std::vector<uint64_t> x(16);
  std::vector<float> out(s.out_h * s.out_w * 64);
  std::vector<float> ones(64, 1.f), zeros(64, 0.f);
  BinaryEpilogue e;
  e.scale = ones.data(), e.bias_f32 = zeros.data(), e.lo = -INFINITY, e.hi = INFINITY;
  bool threw = false;
  try {
    bconv2d_mst(x.data(), s, *other, *plan, Conv2dParams{}, e, out.data(), MstPolicy::Always);
  } catch (const Error& err) {
    threw = err.kind() == ErrorKind::Shape;
  }
  CHECK(threw, "a plan compiled for other weights must be refused");
  // One pixel fills 1/256 of a tile: dense must win. A 14x14 image of 256 channels, each 2% away
  // from another (conv3x3-c256-14, measured 2-3x faster through the tree): MST.
  std::vector<float> near(256 * 2304);
  for (size_t c = 0; c < 256; ++c)
    for (size_t i = 0; i < 2304; ++i)
      near[c * 2304 + i] = c == 0 ? (g() % 2 ? 1.f : -1.f) : near[(c - 1) * 2304 + i] * (g() % 50 == 0 ? -1.f : 1.f);
  auto wn = pack_binary_conv2d_weights_f32(near.data(), 256, 3, 3, 256, 1);
  auto plan_near = compile_mst(*build_mst(*wn, MstOptions{}), *wn);
  for (Isa isa : supported_isas()) {
    CHECK(!mst_cost(*plan, 1, 1, isa).use_mst, where_isa(isa) << "one pixel should run dense");
    CHECK(mst_cost(*plan_near, 196, 1, isa).use_mst, where_isa(isa) << "conv3x3-c256-14 at d/K 2% should run MST");
    CHECK(!mst_cost(*plan_near, 196, 16, isa).use_mst, where_isa(isa) << "one tile cannot use 16 threads: dense");
  }
  // With no plan possible (too many rows) compile_mst says so instead of allocating.
  std::vector<float> big(2 * (kMstMaxRows + 64), 1.f);
  auto wide = pack_binary_conv2d_weights_f32(big.data(), 2, 1, 1, kMstMaxRows + 64, 1);
  CHECK(compile_mst(*build_mst(*wide, MstOptions{}), *wide) == nullptr, "rows beyond kMstMaxRows: no plan");
}
