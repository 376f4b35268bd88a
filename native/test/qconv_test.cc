// qconv_test.cc: qconv2d / qdense on every supported ISA (NEON under qemu, ASan in CI) against a
// direct int64 convolution of (x - zero point) * w, on random awkward shapes including depthwise
// and grouped layers, INT4 weights, both input types and operand extremes; bits 7 (weights in
// [-64, 64]) against bits 8 with the same weights.
#include "lowbit/qconv.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "eltwise/kernels.h"
#include "harness.h"
#include "integer/qconv_add.h"
#include "lowbit/error.h"
#include "lowbit/qops.h"
#include "lowbit/runtime.h"

using namespace lowbit;
using lowbit::test::rng;

namespace {

struct Case {
  size_t n, h, w, c, oc, kh, kw, groups;
  Conv2dParams p;
  int bits;
  QInput in;
};

std::vector<int32_t> oracle(const Case& k, const std::vector<uint8_t>& x, const std::vector<int8_t>& wt,
                            const std::vector<int32_t>& bias, const Conv2dShape& s) {
  const size_t icg = k.c / k.groups, ocg = k.oc / k.groups;
  std::vector<int32_t> y;
  for (size_t n = 0; n < k.n; ++n)
    for (size_t oh = 0; oh < s.out_h; ++oh)
      for (size_t ow = 0; ow < s.out_w; ++ow)
        for (size_t o = 0; o < k.oc; ++o) {
          int64_t acc = bias[o];
          for (size_t ky = 0; ky < k.kh; ++ky)
            for (size_t kx = 0; kx < k.kw; ++kx) {
              const long iy = long(oh * k.p.stride_h + ky * k.p.dilation_h) - long(k.p.pad_top);
              const long ix = long(ow * k.p.stride_w + kx * k.p.dilation_w) - long(k.p.pad_left);
              if (iy < 0 || ix < 0 || iy >= long(k.h) || ix >= long(k.w)) continue;
              for (size_t ci = 0; ci < icg; ++ci) {
                const uint8_t byte = x[((n * k.h + iy) * k.w + ix) * k.c + (o / ocg) * icg + ci];
                const int v = k.in.is_signed ? int(int8_t(byte)) : int(byte);
                acc += int64_t(v - k.in.zero_point) * wt[((o * k.kh + ky) * k.kw + kx) * icg + ci];
              }
            }
          y.push_back(int32_t(acc));
        }
  return y;
}

Case random_case(std::mt19937_64& g) {
  auto pick = [&](std::initializer_list<size_t> v) { return *(v.begin() + g() % v.size()); };
  Case k{};
  k.n = 1 + g() % 2;
  k.c = pick({1, 3, 4, 16, 17, 64, 65});
  k.groups = g() % 4 == 0 ? k.c : pick({1, 1, 2});  // sometimes depthwise
  if (k.c % k.groups) k.groups = 1;
  k.oc = k.groups == k.c && g() % 2 ? k.c : k.groups * pick({1, 3, 16, 17});
  k.kh = pick({1, 3, 5}), k.kw = pick({1, 3});
  k.p.stride_h = 1 + g() % 2, k.p.stride_w = 1 + g() % 2;
  k.p.dilation_h = 1 + g() % 2, k.p.dilation_w = 1;
  k.p.pad_top = g() % (k.kh * k.p.dilation_h), k.p.pad_bottom = g() % (k.kh * k.p.dilation_h);
  k.p.pad_left = g() % k.kw, k.p.pad_right = g() % k.kw;
  k.h = std::max<size_t>(1 + g() % 9, (k.kh - 1) * k.p.dilation_h + 1);
  k.w = std::max<size_t>(1 + g() % 9, k.kw);
  k.bits = g() % 2 ? 8 : 4;
  k.in.is_signed = g() % 2;
  k.in.zero_point = k.in.is_signed ? int(g() % 256) - 128 : int(g() % 256);
  return k;
}

// Runs k (weights wt, random inputs, extremes where asked) on every ISA with an s32 output and
// checks it against the oracle; what: the case for the messages.
void check_s32_against_oracle(const Case& k, const std::vector<int8_t>& wt, bool extreme, std::mt19937_64& g,
                              const std::string& what) {
  std::vector<uint8_t> x(k.n * k.h * k.w * k.c);
  for (auto& v : x) v = extreme ? (g() % 2 ? 0x80 : 0x7F) ^ (k.in.is_signed ? 0 : 0x80) : uint8_t(g());
  std::vector<int32_t> bias(k.oc);
  for (auto& b : bias) b = int32_t(g() % 20001) - 10000;
  auto packed = pack_qconv2d_weights(wt.data(), k.oc, k.kh, k.kw, k.c / k.groups, k.groups, k.bits);
  const Conv2dShape s = qconv2d_shape(k.n, k.h, k.w, k.c, *packed, k.p);
  const auto want = oracle(k, x, wt, bias, s);
  QEpilogue e;
  e.requantize = false;
  e.bias = bias.data();
  for (Isa isa : supported_isas()) {
    set_isa(isa_name(isa));
    std::vector<int32_t> got(want.size() + 1, 0x5A5A5A5A);
    qconv2d(x.data(), s, *packed, k.p, k.in, e, got.data());
    const size_t bad = std::mismatch(want.begin(), want.end(), got.begin()).first - want.begin();
    CHECK(bad == want.size(), isa_name(isa) << " " << what << ": element " << bad << " of " << want.size()
                                            << (bad < want.size() ? ": got " + std::to_string(got[bad]) + " want " +
                                                                        std::to_string(want[bad])
                                                                  : std::string()));
    CHECK(got.back() == 0x5A5A5A5A, isa_name(isa) << " " << what << ": wrote past the output");
  }
  set_isa(isa_name(supported_isas().back()));
}

}  // namespace

TEST(qconv2d_matches_oracle_on_every_isa) {
  auto g = rng(31);
  for (int iter = 0; iter < 60; ++iter) {
    const Case k = random_case(g);
    const size_t icg = k.c / k.groups, taps = k.kh * k.kw;
    const bool extreme = iter % 5 == 0;  // the operand values that saturate vpmaddubsw pairs
    std::vector<int8_t> wt(k.oc * taps * icg);
    for (auto& v : wt)
      v = k.bits == 8 ? (extreme ? (g() % 2 ? -128 : 127) : int8_t(g()))
                      : (extreme ? (g() % 2 ? -8 : 7) : int(g() % 16) - 8);
    check_s32_against_oracle(k, wt, extreme, g,
                             "iter " + std::to_string(iter) + " c=" + std::to_string(k.c) +
                                 " oc=" + std::to_string(k.oc) + " groups=" + std::to_string(k.groups) +
                                 " k=" + std::to_string(k.kh) + "x" + std::to_string(k.kw) +
                                 " bits=" + std::to_string(k.bits) + " signed=" + std::to_string(k.in.is_signed));
  }
}

// bits 7 runs q7_gemm (vpmaddubsw on AVX2), and the depthwise path treats it as 8: the same
// results as bits 8 with the same weights, on every ISA, for convs (strides, padding, dilation,
// groups, depthwise) and requantized dense layers.
TEST(qconv2d_bits7_equals_bits8_on_every_isa) {
  auto g = rng(33);
  for (int iter = 0; iter < 40; ++iter) {
    Case k = random_case(g);
    const bool dense = iter % 4 == 3;
    if (dense)
      k = Case{static_cast<size_t>(1 + g() % 37),
               1,
               1,
               static_cast<size_t>(1 + g() % 700),
               static_cast<size_t>(1 + g() % 40),
               1,
               1,
               1,
               Conv2dParams{},
               8,
               k.in};
    const size_t icg = k.c / k.groups, taps = k.kh * k.kw;
    const bool extreme = iter % 5 == 0;
    std::vector<int8_t> wt(k.oc * taps * icg);
    for (auto& v : wt) v = extreme ? (g() % 2 ? -64 : 64) : int(g() % 129) - 64;
    std::vector<uint8_t> x(k.n * k.h * k.w * k.c);
    for (auto& v : x) v = extreme ? (g() % 2 ? 0x80 : 0x7F) ^ (k.in.is_signed ? 0 : 0x80) : uint8_t(g());
    std::vector<int32_t> bias(k.oc), mult(k.oc), out_zero(k.oc);
    std::vector<uint8_t> shift(k.oc);
    for (auto& b : bias) b = int32_t(g() % 20001) - 10000;
    for (size_t c = 0; c < k.oc; ++c)
      mult[c] = int32_t(1u << 30) + int32_t(g() % 1000), shift[c] = uint8_t(36 + g() % 4);
    auto w8 = pack_qconv2d_weights(wt.data(), k.oc, k.kh, k.kw, icg, k.groups, 8);
    auto w7 = pack_qconv2d_weights(wt.data(), k.oc, k.kh, k.kw, icg, k.groups, 7);
    CHECK(w7->bits == 7 && w7->bytes() == w8->bytes(), "bits 7 is stored as bits 8");
    const Conv2dShape s = qconv2d_shape(k.n, k.h, k.w, k.c, *w8, k.p);
    QEpilogue e;
    e.bias = bias.data();
    e.requantize = dense;
    if (dense)
      e.mult = mult.data(), e.shift = shift.data(), e.out_signed = true, e.zero_point = -3, e.lo = -128, e.hi = 127;
    const size_t bytes = s.batch * s.out_h * s.out_w * s.out_c * (dense ? 1 : 4);
    for (Isa isa : supported_isas()) {
      set_isa(isa_name(isa));
      std::vector<uint8_t> want(bytes + 1, 0x5A), got(bytes + 1, 0x5A);
      if (dense) {
        qdense(x.data(), k.n, k.c, *w8, k.in, e, want.data());
        qdense(x.data(), k.n, k.c, *w7, k.in, e, got.data());
      } else {
        qconv2d(x.data(), s, *w8, k.p, k.in, e, want.data());
        qconv2d(x.data(), s, *w7, k.p, k.in, e, got.data());
      }
      const size_t bad = std::mismatch(want.begin(), want.end(), got.begin()).first - want.begin();
      CHECK(bad == want.size(), isa_name(isa) << " iter " << iter << (dense ? " dense" : " conv") << " c=" << k.c
                                              << " oc=" << k.oc << " groups=" << k.groups << " k=" << k.kh << "x"
                                              << k.kw << " signed=" << k.in.is_signed << ": bits 7 differs from bits 8"
                                              << " at byte " << bad);
      CHECK(got.back() == 0x5A, isa_name(isa) << " wrote past the output");
    }
  }
  set_isa(isa_name(supported_isas().back()));
}

// One-group layers whose kernel rows are kernel_w * C contiguous bytes with kernel_w * C % 4 == 0:
// where the ISA has q8_gemm_runs / q4_gemm_runs (avx512) each kernel row is read in place, padded
// ones from a row of zero points or a gathered copy at the left and right edges. Widths below the
// kernel, 1x1 images, every padding, strides, dilation_h, a batch of 2 (pixel tiles crossing rows
// and images), both input types, bits 8 (extremes too), 7 and 4 against the int64 oracle.
TEST(qconv2d_in_place_kernel_rows_match_oracle) {
  auto g = rng(34);
  for (int iter = 0; iter < 80; ++iter) {
    auto pick = [&](std::initializer_list<size_t> v) { return *(v.begin() + g() % v.size()); };
    Case k{};
    k.n = 1 + g() % 2, k.groups = 1;
    k.kh = pick({1, 2, 3, 5}), k.kw = pick({1, 2, 3, 4});
    k.c = k.kw == 4 ? pick({1, 3, 5}) : k.kw == 2 ? pick({2, 6, 4}) : pick({4, 12, 20, 64, 68});
    k.oc = pick({1, 16, 17, 40});
    k.p.stride_h = 1 + g() % 2, k.p.stride_w = iter % 3 ? 1 : 2;
    k.p.dilation_h = 1 + g() % 2, k.p.dilation_w = 1;
    k.p.pad_top = g() % (k.kh * k.p.dilation_h), k.p.pad_bottom = g() % (k.kh * k.p.dilation_h);
    k.p.pad_left = g() % k.kw, k.p.pad_right = g() % k.kw;
    // Widths from 1 (narrower than the kernel where the padding allows) and some images of 2-3 tiles.
    const size_t big = iter % 4 == 0 ? 17 : 0;
    const long need_h = long((k.kh - 1) * k.p.dilation_h + 1 - k.p.pad_top - k.p.pad_bottom);
    const long need_w = long(k.kw - k.p.pad_left - k.p.pad_right);
    k.h = size_t(std::max(long(big + 1 + g() % 6), need_h));
    k.w = size_t(std::max(long(big + 1 + g() % 6), need_w));
    k.bits = iter % 4 == 1 ? 7 : iter % 4 == 2 ? 4 : 8;
    k.in.is_signed = g() % 2;
    k.in.zero_point = k.in.is_signed ? int(g() % 256) - 128 : int(g() % 256);
    const size_t taps = k.kh * k.kw;
    const bool extreme = iter % 5 == 0;
    std::vector<int8_t> wt(k.oc * taps * k.c);
    for (auto& v : wt)
      v = k.bits == 7   ? int(g() % 129) - 64
          : k.bits == 4 ? (extreme ? (g() % 2 ? -8 : 7) : int(g() % 16) - 8)
          : extreme     ? (g() % 2 ? -128 : 127)
                        : int8_t(g());
    check_s32_against_oracle(k, wt, extreme, g,
                             "iter " + std::to_string(iter) + " n=" + std::to_string(k.n) + " " + std::to_string(k.h) +
                                 "x" + std::to_string(k.w) + " c=" + std::to_string(k.c) + " oc=" +
                                 std::to_string(k.oc) + " k=" + std::to_string(k.kh) + "x" + std::to_string(k.kw) +
                                 " stride=" + std::to_string(k.p.stride_h) + "," + std::to_string(k.p.stride_w) +
                                 " bits=" + std::to_string(k.bits) + " signed=" + std::to_string(k.in.is_signed));
  }
}

// Depthwise layers with channel multipliers 1-4 (output channel o reads input channel o / m) on
// awkward shapes: channel counts off the 16- and 8-wide kernel steps, stride 2, padding, dilation,
// 1x1 images, kernels 1x1 to 5x5, both input types, 8- and 4-bit weights; the int32 accumulators
// and the requantized bytes (one call of the requantizer per output row).
TEST(qconv2d_depthwise_with_multipliers_matches_oracle) {
  auto g = rng(33);
  auto pick = [&](std::initializer_list<size_t> v) { return *(v.begin() + g() % v.size()); };
  for (int iter = 0; iter < 80; ++iter) {
    Case k{};
    k.n = 1 + g() % 2;
    k.c = pick({2, 3, 7, 8, 16, 17, 24, 40, 72});
    k.groups = k.c;
    k.oc = k.c * (1 + iter % 4);
    k.kh = pick({1, 3, 3, 5}), k.kw = k.kh == 1 ? 1 : pick({3, k.kh});
    k.p.stride_h = k.p.stride_w = 1 + g() % 2;
    k.p.dilation_h = k.p.dilation_w = g() % 4 == 0 ? 2 : 1;
    const size_t pad = (k.kh / 2) * k.p.dilation_h;
    k.p.pad_top = k.p.pad_left = pad, k.p.pad_bottom = g() % 2 ? pad : 0, k.p.pad_right = pad;
    if (iter % 8 == 0)
      k.h = k.w = 1, k.p.pad_bottom = pad;  // a 1x1 image (7x7 at the end of MobileNetV2 is close)
    else
      k.h = 1 + g() % 12, k.w = 1 + g() % 12;
    // At least one output pixel: the padded image holds the dilated window.
    const auto least = [](size_t window, size_t pads) { return window > pads ? window - pads : 1; };
    k.h = std::max(k.h, least((k.kh - 1) * k.p.dilation_h + 1, k.p.pad_top + k.p.pad_bottom));
    k.w = std::max(k.w, least((k.kw - 1) * k.p.dilation_w + 1, k.p.pad_left + k.p.pad_right));
    k.bits = g() % 2 ? 8 : 4;
    k.in.is_signed = g() % 2;
    k.in.zero_point = k.in.is_signed ? int(g() % 256) - 128 : int(g() % 256);
    std::vector<int8_t> wt(k.oc * k.kh * k.kw);
    for (auto& v : wt) v = k.bits == 8 ? int8_t(g()) : int(g() % 16) - 8;
    std::vector<uint8_t> x(k.n * k.h * k.w * k.c);
    for (auto& v : x) v = uint8_t(g());
    std::vector<int32_t> bias(k.oc), mult(k.oc), zero(k.oc, 0);
    std::vector<uint8_t> shift(k.oc);
    for (size_t c = 0; c < k.oc; ++c)
      bias[c] = int32_t(g() % 20001) - 10000, mult[c] = int32_t(1u << 30) + int32_t(g() % 100000),
      shift[c] = uint8_t(36 + g() % 4);
    auto packed = pack_qconv2d_weights(wt.data(), k.oc, k.kh, k.kw, 1, k.groups, k.bits);
    CHECK(packed->depthwise, "iter " << iter << ": not packed as depthwise");
    const Conv2dShape s = qconv2d_shape(k.n, k.h, k.w, k.c, *packed, k.p);
    const auto want = oracle(k, x, wt, bias, s);
    QEpilogue acc;
    acc.requantize = false;
    acc.bias = bias.data();
    QEpilogue q;
    q.bias = bias.data(), q.mult = mult.data(), q.shift = shift.data(), q.out_signed = k.in.is_signed;
    q.zero_point = k.in.is_signed ? -3 : 5, q.lo = k.in.is_signed ? -100 : 0, q.hi = k.in.is_signed ? 127 : 250;
    for (Isa isa : supported_isas()) {
      set_isa(isa_name(isa));
      std::vector<int32_t> got(want.size() + 1, 0x5A5A5A5A);
      qconv2d(x.data(), s, *packed, k.p, k.in, acc, got.data());
      std::vector<uint8_t> bytes(want.size() + 1, 0x5A);
      qconv2d(x.data(), s, *packed, k.p, k.in, q, bytes.data());
      for (size_t i = 0; i < want.size(); ++i) {
        const size_t c = i % k.oc;
        int64_t v = ((int64_t(want[i]) * mult[c] + (int64_t{1} << (shift[c] - 1))) >> shift[c]) + q.zero_point;
        v = std::min<int64_t>(q.hi, std::max<int64_t>(q.lo, v));
        const int b = k.in.is_signed ? int(int8_t(bytes[i])) : int(bytes[i]);
        CHECK(got[i] == want[i] && b == v, isa_name(isa)
                                               << " iter " << iter << " c=" << k.c << " oc=" << k.oc << " k=" << k.kh
                                               << "x" << k.kw << " stride " << k.p.stride_h << " " << k.h << "x" << k.w
                                               << " bits=" << k.bits << " element " << i << ": got " << got[i] << " / "
                                               << b << " want " << want[i] << " / " << v);
        if (lowbit::test::failures_in_current() > 0) break;
      }
      CHECK(got.back() == 0x5A5A5A5A && bytes.back() == 0x5A, isa_name(isa) << " wrote past the output");
    }
  }
  set_isa(isa_name(supported_isas().back()));
}

TEST(qdense_requantizes_like_the_formula) {
  auto g = rng(32);
  const size_t rows = 5, in_c = 300, oc = 37;
  std::vector<int8_t> wt(oc * in_c);
  for (auto& v : wt) v = int8_t(g());
  std::vector<uint8_t> x(rows * in_c);
  for (auto& v : x) v = uint8_t(g());
  auto packed = pack_qconv2d_weights(wt.data(), oc, 1, 1, in_c, 1, 8);
  std::vector<int32_t> mult(oc), zero(oc, 0);
  std::vector<uint8_t> shift(oc);
  for (size_t c = 0; c < oc; ++c) mult[c] = int32_t(1u << 30) + int32_t(g() % 1000), shift[c] = uint8_t(38 + g() % 4);
  QEpilogue e;
  e.mult = mult.data(), e.shift = shift.data(), e.out_signed = false, e.zero_point = 7, e.lo = 0, e.hi = 200;
  const QInput in{false, 3};
  for (Isa isa : supported_isas()) {
    set_isa(isa_name(isa));
    std::vector<uint8_t> got(rows * oc);
    qdense(x.data(), rows, in_c, *packed, in, e, got.data());
    for (size_t r = 0; r < rows; ++r)
      for (size_t c = 0; c < oc; ++c) {
        int64_t acc = 0;
        for (size_t i = 0; i < in_c; ++i) acc += (int64_t(x[r * in_c + i]) - 3) * wt[c * in_c + i];
        int64_t v = ((acc * mult[c] + (int64_t{1} << (shift[c] - 1))) >> shift[c]) + 7;
        v = std::min<int64_t>(200, std::max<int64_t>(0, v));
        CHECK(got[r * oc + c] == v,
              isa_name(isa) << " row " << r << " channel " << c << ": got " << int(got[r * oc + c]) << " want " << v);
      }
  }
  set_isa(isa_name(supported_isas().back()));
}

TEST(qconv_refuses_what_it_cannot_compute_exactly) {
  std::vector<int8_t> w(65537, 1);
  bool threw = false;
  try {
    pack_qconv2d_weights(w.data(), 1, 1, 1, 65537, 1, 8);
  } catch (const Error& e) {
    threw = e.kind() == ErrorKind::Range;
  }
  CHECK(threw, "K = 65537 must be refused");
  std::vector<int8_t> w4{8};
  threw = false;
  try {
    pack_qconv2d_weights(w4.data(), 1, 1, 1, 1, 1, 4);
  } catch (const Error& e) {
    threw = e.kind() == ErrorKind::Range;
  }
  CHECK(threw, "a 4-bit value of 8 must be refused");
  for (int8_t v : {int8_t{65}, int8_t{-65}, int8_t{-128}}) {
    std::vector<int8_t> w7{0, 64, -64, v};
    threw = false;
    try {
      pack_qconv2d_weights(w7.data(), 2, 1, 1, 2, 1, 7);
    } catch (const Error& e) {
      threw = e.kind() == ErrorKind::Range && std::string(e.what()).find("[-64, 64]") != std::string::npos &&
              std::string(e.what()).find("output channel 1, index 1") != std::string::npos;
    }
    CHECK(threw, "a 7-bit value of " << int(v) << " must be refused, naming where");
  }
  for (int bits : {0, 5, 6, 9}) {
    threw = false;
    try {
      pack_qconv2d_weights(w.data(), 1, 1, 1, 1, 1, bits);
    } catch (const Error& e) {
      threw = e.kind() == ErrorKind::Range;
    }
    CHECK(threw, "bits " << bits << " must be refused");
  }
}

// qconv2d_add (the graph's fused conv and residual add) against qconv2d then qadd on every ISA, bit
// for bit, on the random awkward shapes above: depthwise, grouped, short-reduction and GEMM paths,
// 1 to 65 output channels, both output types with ReLU-like clamps, both residual and sum types.
TEST(qconv2d_add_equals_qconv2d_then_qadd_on_every_isa) {
  auto g = rng(33);
  int fused = 0;
  for (int iter = 0; iter < 80; ++iter) {
    const Case k = random_case(g);
    const size_t icg = k.c / k.groups, taps = k.kh * k.kw;
    std::vector<int8_t> wt(k.oc * taps * icg);
    for (auto& v : wt) v = k.bits == 8 ? int8_t(g()) : int(g() % 16) - 8;
    std::vector<uint8_t> x(k.n * k.h * k.w * k.c);
    for (auto& v : x) v = uint8_t(g());
    std::vector<int32_t> bias(k.oc), mult(k.oc);
    std::vector<uint8_t> shift(k.oc);
    for (size_t o = 0; o < k.oc; ++o) {
      bias[o] = int32_t(g() % 20001) - 10000;
      mult[o] = int32_t(g() % (1u << 30)) + (1 << 30);
      shift[o] = uint8_t(iter % 3 == 0 ? 20 + g() % 12 : 38 + g() % 8);  // both lane widths of the requantizer
    }
    auto packed = pack_qconv2d_weights(wt.data(), k.oc, k.kh, k.kw, icg, k.groups, k.bits);
    const Conv2dShape s = qconv2d_shape(k.n, k.h, k.w, k.c, *packed, k.p);
    const size_t count = s.batch * s.out_h * s.out_w * k.oc;
    QEpilogue e;
    e.bias = bias.data(), e.mult = mult.data(), e.shift = shift.data();
    e.out_signed = g() % 2;
    const int32_t omin = e.out_signed ? -128 : 0, omax = e.out_signed ? 127 : 255;
    e.zero_point = omin + int32_t(g() % 256);
    e.lo = g() % 2 ? e.zero_point : omin, e.hi = omax;  // a fused ReLU half the time
    // The add: the conv's output (scale sc), the residual (sr), the sum (so), as qadd takes them.
    const bool res_signed = g() % 2, sum_signed = g() % 2;
    std::vector<uint8_t> residual(count);
    for (auto& v : residual) v = uint8_t(g());
    auto scale = [&]() { return std::ldexp(0.5 + double(g() % 1000) / 2000, -int(g() % 8)); };
    const QuantParams qs{scale(), e.zero_point},
        qr{scale(), res_signed ? int32_t(g() % 256) - 128 : int32_t(g() % 256)};
    QuantOutput qo;
    qo.q.scale = scale();
    qo.lo = sum_signed ? -128 : 0, qo.hi = sum_signed ? 127 : 255;
    qo.q.zero_point = qo.lo + int32_t(g() % 256);
    if (g() % 2) qo.lo = qo.q.zero_point;
    const Dyadic ds = to_dyadic(qs.scale / qo.q.scale), dr = to_dyadic(qr.scale / qo.q.scale);
    ResidualAddParams add{};
    if (!qadd_term_for(e.out_signed, qs.zero_point, ds.multiplier, ds.shift, &add.self) ||
        !qadd_term_for(res_signed, qr.zero_point, dr.multiplier, dr.shift, &add.res))
      continue;
    ++fused;
    add.self.zero = qs.zero_point, add.self.mask = 0;  // as graph/fusion.h builds it
    add.residual = residual.data(), add.out_zero = qo.q.zero_point, add.lo = qo.lo, add.hi = qo.hi;
    for (Isa isa : supported_isas()) {
      set_isa(isa_name(isa));
      std::vector<uint8_t> conv(count), want(count), got(count + 1, 0x5A);
      qconv2d(x.data(), s, *packed, k.p, k.in, e, conv.data());
      qadd(conv.data(), e.out_signed, qs, residual.data(), res_signed, qr, count, qo, want.data());
      qconv2d_add(x.data(), s, *packed, k.p, k.in, e, add, got.data());
      CHECK(std::memcmp(want.data(), got.data(), count) == 0,
            isa_name(isa) << " iter " << iter << " c=" << k.c << " oc=" << k.oc << " groups=" << k.groups
                          << " k=" << k.kh << "x" << k.kw << " bits=" << k.bits);
      CHECK(got.back() == 0x5A, isa_name(isa) << " wrote past the output");
    }
  }
  CHECK(fused > 40, "too few cases in the 32-bit form of the add: " << fused);
  set_isa(isa_name(supported_isas().back()));
}
