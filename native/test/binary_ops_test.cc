// binary_ops_test.cc: bconv2d / bdense / bmaxpool2d on every supported ISA against an
// independent oracle: a direct integer convolution of the +-1 values (0 for zero padding),
// computed from the unpacked float data, never from packed bits.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "binary/kernels.h"
#include "common/checked_math.h"
#include "epilogue/kernels.h"
#include "harness.h"
#include "lowbit/binary.h"
#include "lowbit/error.h"
#include "lowbit/runtime.h"

using namespace lowbit;
using lowbit::test::rng;

namespace {

int pm1(float v) { return v < 0 ? -1 : 1; }

struct ConvCase {
  size_t n, h, w, c, oc, kh, kw, groups;
  Conv2dParams p;
};

// y[n][oh][ow][o] as +-1 integer dot products; padded taps contribute +1 * w or 0.
std::vector<int32_t> oracle_conv(const ConvCase& k, const std::vector<float>& x, const std::vector<float>& wt,
                                 size_t oh_n, size_t ow_n) {
  const size_t icg = k.c / k.groups, ocg = k.oc / k.groups;
  std::vector<int32_t> y(k.n * oh_n * ow_n * k.oc);
  for (size_t n = 0; n < k.n; ++n)
    for (size_t oh = 0; oh < oh_n; ++oh)
      for (size_t ow = 0; ow < ow_n; ++ow)
        for (size_t o = 0; o < k.oc; ++o) {
          const size_t g = o / ocg;
          int32_t acc = 0;
          for (size_t ky = 0; ky < k.kh; ++ky)
            for (size_t kx = 0; kx < k.kw; ++kx) {
              const long iy = long(oh * k.p.stride_h + ky * k.p.dilation_h) - long(k.p.pad_top);
              const long ix = long(ow * k.p.stride_w + kx * k.p.dilation_w) - long(k.p.pad_left);
              const bool in = iy >= 0 && ix >= 0 && iy < long(k.h) && ix < long(k.w);
              for (size_t i = 0; i < icg; ++i) {
                const int wv = pm1(wt[((o * k.kh + ky) * k.kw + kx) * icg + i]);
                const int xv = in ? pm1(x[((n * k.h + iy) * k.w + ix) * k.c + g * icg + i])
                                  : (k.p.pad_value == PadValue::One ? 1 : 0);
                acc += wv * xv;
              }
            }
          y[((n * oh_n + oh) * ow_n + ow) * k.oc + o] = acc;
        }
  return y;
}

ConvCase random_case(std::mt19937_64& g) {
  const size_t cs[] = {1, 3, 5, 63, 64, 65, 127, 128, 200};
  ConvCase k{};
  k.groups = g() % 4 == 0 ? 1 + g() % 3 : 1;
  k.c = cs[g() % 9] * k.groups;
  k.oc = (1 + g() % 70) * k.groups;
  k.kh = 1 + 2 * (g() % 3);
  k.kw = g() % 4 == 0 ? 1 + g() % 5 : k.kh;
  k.n = 1 + g() % 2;
  k.h = 1 + g() % 9;
  k.w = 1 + g() % 9;
  k.p.stride_h = 1 + g() % 2;
  k.p.stride_w = 1 + g() % 2;
  k.p.dilation_h = 1 + g() % 2;
  k.p.dilation_w = g() % 3 == 0 ? 2 : 1;
  k.p.pad_value = g() % 2 ? PadValue::One : PadValue::Zero;
  auto pad = [&](size_t extent) { return extent > 1 ? g() % std::min<size_t>(extent, 3) : 0; };
  k.p.pad_top = pad(k.kh * k.p.dilation_h);
  k.p.pad_bottom = pad(k.kh * k.p.dilation_h);
  k.p.pad_left = pad(k.kw * k.p.dilation_w);
  k.p.pad_right = pad(k.kw * k.p.dilation_w);
  // Keep the output non-empty.
  k.h = std::max(k.h, (k.kh - 1) * k.p.dilation_h + 1);
  k.w = std::max(k.w, (k.kw - 1) * k.p.dilation_w + 1);
  return k;
}

std::vector<float> random_signs(std::mt19937_64& g, size_t count) {
  std::vector<float> v(count);
  for (float& f : v) f = g() % 7 == 0 ? 0.f : std::uniform_real_distribution<float>(-1, 1)(g);
  return v;
}

}  // namespace

TEST(bconv2d_matches_oracle_for_every_epilogue) {
  auto g = rng(10);
  for (int round = 0; round < 60; ++round) {
    const ConvCase k = random_case(g);
    const auto x = random_signs(g, k.n * k.h * k.w * k.c);
    const auto wt = random_signs(g, k.oc * k.kh * k.kw * (k.c / k.groups));
    auto weights = pack_binary_conv2d_weights_f32(wt.data(), k.oc, k.kh, k.kw, k.c / k.groups, k.groups);
    const Conv2dShape s = bconv2d_shape(k.n, k.h, k.w, k.c, *weights, k.p);
    const auto want = oracle_conv(k, x, wt, s.out_h, s.out_w);
    const size_t pixels = k.n * s.out_h * s.out_w;

    std::vector<uint64_t> xb(k.n * k.h * k.w * b1_words(k.c));
    bitpack_f32(x.data(), k.n * k.h * k.w, k.c, xb.data());

    std::vector<float> scale(k.oc), bias(k.oc);
    std::vector<int32_t> mult(k.oc), bias_q(k.oc), threshold(k.oc);
    std::vector<uint8_t> shift(k.oc), flip(k.oc);
    for (size_t o = 0; o < k.oc; ++o) {
      scale[o] = std::uniform_real_distribution<float>(-2, 2)(g);
      bias[o] = std::uniform_real_distribution<float>(-5, 5)(g);
      mult[o] = static_cast<int32_t>(g() % 2000001) - 1000000;
      shift[o] = static_cast<uint8_t>(14 + g() % 10);
      bias_q[o] = static_cast<int32_t>(g() % 21) - 10;
      threshold[o] = static_cast<int32_t>(g() % 21) - 10;
      flip[o] = g() % 2;
    }
    for (Isa isa : supported_isas()) {
      set_isa(isa_name(isa));
      for (OutputKind kind : {OutputKind::F32, OutputKind::S8, OutputKind::B1}) {
        BinaryEpilogue e;
        e.kind = kind;
        e.scale = scale.data();
        e.bias_f32 = bias.data();
        e.lo = -INFINITY;
        e.hi = 4.f;
        e.mult = mult.data();
        e.shift = shift.data();
        e.bias_s32 = bias_q.data();
        e.qmin = -100;
        e.qmax = 120;
        e.threshold = threshold.data();
        e.flip = flip.data();
        const size_t count = binary_output_size(kind, pixels, k.oc);
        const uint64_t sentinel = 0xDEADBEEFDEADBEEFull;
        std::vector<uint64_t> out(count + 1, sentinel);  // wide enough for any element type
        bconv2d(xb.data(), s, *weights, k.p, e, out.data());
        const std::string where =
            std::string(isa_name(isa)) + " N" + std::to_string(k.n) + " H" + std::to_string(k.h) + " W" +
            std::to_string(k.w) + " C" + std::to_string(k.c) + " O" + std::to_string(k.oc) + " k" +
            std::to_string(k.kh) + "x" + std::to_string(k.kw) + " g" + std::to_string(k.groups) + " s" +
            std::to_string(k.p.stride_h) + std::to_string(k.p.stride_w) + " d" + std::to_string(k.p.dilation_h) +
            std::to_string(k.p.dilation_w) + " pads" + std::to_string(k.p.pad_top) + std::to_string(k.p.pad_left) +
            std::to_string(k.p.pad_bottom) + std::to_string(k.p.pad_right) +
            (k.p.pad_value == PadValue::Zero ? " zero" : " one") + " kind" + std::to_string(static_cast<int>(kind));
        for (size_t px = 0; px < pixels; ++px) {
          for (size_t o = 0; o < k.oc; ++o) {
            const int32_t y = want[px * k.oc + o];
            if (kind == OutputKind::F32) {
              float v = static_cast<float>(y) * scale[o] + bias[o];
              v = std::min(v, 4.f);
              const float got = reinterpret_cast<const float*>(out.data())[px * k.oc + o];
              CHECK(std::memcmp(&got, &v, 4) == 0, where << " f32 pixel " << px << " ch " << o << ": got " << got
                                                         << " want " << v << " (y=" << y << ")");
            } else if (kind == OutputKind::S8) {
              const int8_t v = static_cast<int8_t>(requantize_value(y, mult[o], shift[o], bias_q[o], -100, 120));
              const int8_t got = reinterpret_cast<const int8_t*>(out.data())[px * k.oc + o];
              CHECK(got == v, where << " s8 pixel " << px << " ch " << o << ": got " << int(got) << " want " << int(v));
            } else {
              const uint64_t word = out[px * b1_words(k.oc) + o / 64];
              const int bit = static_cast<int>((word >> (o % 64)) & 1);
              CHECK(bit == ((y < threshold[o]) ^ flip[o]), where << " b1 pixel " << px << " ch " << o << " y=" << y);
            }
          }
          if (kind == OutputKind::B1 && k.oc % 64 != 0) {
            const uint64_t last = out[px * b1_words(k.oc) + b1_words(k.oc) - 1];
            CHECK((last >> (k.oc % 64)) == 0, where << " b1 tail bits not zero");
          }
        }
        const size_t bytes = count * (kind == OutputKind::F32 ? 4 : kind == OutputKind::S8 ? 1 : 8);
        const auto* raw = reinterpret_cast<const unsigned char*>(out.data());
        const auto* fill = reinterpret_cast<const unsigned char*>(&sentinel);
        for (size_t b = bytes; b < bytes + 8; ++b) CHECK(raw[b] == fill[b % 8], where << " wrote past the output");
      }
    }
    set_isa(isa_name(supported_isas().back()));
  }
}

// Random +-1 input and weights for case k, then bconv2d's f32 output (scale 1, bias 0, no clamp)
// on every ISA against the oracle, exactly, with nothing written past the output.
void check_f32_conv_on_every_isa(std::mt19937_64& g, const ConvCase& k, const std::string& what) {
  const size_t icg = k.c / k.groups;
  const auto x = random_signs(g, k.n * k.h * k.w * k.c);
  const auto wt = random_signs(g, k.oc * k.kh * k.kw * icg);
  auto weights = pack_binary_conv2d_weights_f32(wt.data(), k.oc, k.kh, k.kw, icg, k.groups);
  const Conv2dShape s = bconv2d_shape(k.n, k.h, k.w, k.c, *weights, k.p);
  const auto want = oracle_conv(k, x, wt, s.out_h, s.out_w);
  std::vector<uint64_t> xb(k.n * k.h * k.w * b1_words(k.c));
  bitpack_f32(x.data(), k.n * k.h * k.w, k.c, xb.data());
  std::vector<float> one(k.oc, 1.f), zero(k.oc, 0.f);
  BinaryEpilogue e;
  e.scale = one.data();
  e.bias_f32 = zero.data();
  e.lo = -INFINITY;
  e.hi = INFINITY;
  for (Isa isa : supported_isas()) {
    set_isa(isa_name(isa));
    std::vector<float> out(want.size() + 1, 12345.f);
    bconv2d(xb.data(), s, *weights, k.p, e, out.data());
    size_t bad = 0;
    while (bad < want.size() && out[bad] == static_cast<float>(want[bad])) ++bad;
    CHECK(bad == want.size() && out.back() == 12345.f,
          isa_name(isa) << " " << what << ": first mismatch at " << bad << " of " << want.size());
  }
}

// Channels per group that are not a multiple of 64 take the row-stream im2col (conv_tile.h; byte
// copies where they are a multiple of 8); every run length and offset of its bit copies (within one
// word, across two, longer than 64 bits) is hit by some of these, on tiny and 1x1 images, with
// strides, dilations, groups and both pad values.
TEST(bconv2d_small_channels_match_oracle) {
  auto g = rng(13);
  const size_t channels[] = {1, 3, 8, 16, 17, 24, 31, 32, 33, 48, 64, 72, 100, 120, 128, 130};
  for (size_t icg : channels)
    for (int round = 0; round < 12; ++round) {
      ConvCase k{};
      k.groups = round % 4 == 3 ? 2 + g() % 2 : 1;
      k.c = icg * k.groups;
      k.oc = (1 + g() % 40) * k.groups;
      k.kh = round % 3 == 0 ? 3 : 1 + g() % 3;
      k.kw = round % 3 == 0 ? 3 : 1 + g() % 4;
      k.n = 1 + g() % 3;
      k.h = round % 5 == 0 ? 1 : 1 + g() % 12;
      k.w = round % 5 == 0 ? 1 : 1 + g() % 12;
      k.p.stride_h = 1 + g() % 2;
      k.p.stride_w = 1 + g() % 2;
      k.p.dilation_h = g() % 4 == 0 ? 2 : 1;
      k.p.dilation_w = g() % 4 == 0 ? 2 : 1;
      k.p.pad_value = round % 2 ? PadValue::One : PadValue::Zero;
      const size_t eh = (k.kh - 1) * k.p.dilation_h + 1, ew = (k.kw - 1) * k.p.dilation_w + 1;
      k.p.pad_top = g() % eh;
      k.p.pad_bottom = g() % eh;
      k.p.pad_left = g() % ew;
      k.p.pad_right = g() % ew;
      // Keep the output non-empty.
      k.h = std::max(k.h, eh > k.p.pad_top + k.p.pad_bottom ? eh - k.p.pad_top - k.p.pad_bottom : 1);
      k.w = std::max(k.w, ew > k.p.pad_left + k.p.pad_right ? ew - k.p.pad_left - k.p.pad_right : 1);
      std::ostringstream what;
      what << "N" << k.n << " H" << k.h << " W" << k.w << " C" << k.c << " O" << k.oc << " k" << k.kh << "x" << k.kw
           << " g" << k.groups << " s" << k.p.stride_h << k.p.stride_w << " d" << k.p.dilation_h << k.p.dilation_w
           << " pads" << k.p.pad_top << k.p.pad_left << k.p.pad_bottom << k.p.pad_right
           << (k.p.pad_value == PadValue::Zero ? " zero" : " one");
      check_f32_conv_on_every_isa(g, k, what.str());
    }
  set_isa(isa_name(supported_isas().back()));
}

// Inputs large enough that the row streams are built by several threads at once.
TEST(bconv2d_small_channels_large_input_on_two_threads) {
  auto g = rng(14);
  const size_t saved = num_threads();
  set_num_threads(2);
  for (size_t icg : {16, 33}) {
    ConvCase k{};
    k.n = 4, k.h = 96, k.w = 90, k.c = icg, k.oc = 5, k.kh = 3, k.kw = 3, k.groups = 1;
    k.p.pad_top = k.p.pad_left = k.p.pad_bottom = k.p.pad_right = 1;
    k.p.pad_value = PadValue::Zero;
    check_f32_conv_on_every_isa(g, k, "C" + std::to_string(icg));
  }
  set_isa(isa_name(supported_isas().back()));
  set_num_threads(saved);
}

TEST(bdense_matches_oracle) {
  auto g = rng(11);
  for (size_t rows : {1, 2, 7}) {
    for (size_t c : {1, 63, 64, 65, 200, 1000}) {
      const size_t oc = 1 + g() % 130;
      const auto x = random_signs(g, rows * c);
      const auto wt = random_signs(g, oc * c);
      auto weights = pack_binary_conv2d_weights_f32(wt.data(), oc, 1, 1, c, 1);
      std::vector<uint64_t> xb(rows * b1_words(c));
      bitpack_f32(x.data(), rows, c, xb.data());
      std::vector<float> scale(oc, 1.f), bias(oc, 0.f);
      BinaryEpilogue e;
      e.scale = scale.data();
      e.bias_f32 = bias.data();
      e.lo = -INFINITY;
      e.hi = INFINITY;
      for (Isa isa : supported_isas()) {
        set_isa(isa_name(isa));
        std::vector<float> out(rows * oc);
        bdense(xb.data(), rows, c, *weights, e, out.data());
        for (size_t r = 0; r < rows; ++r)
          for (size_t o = 0; o < oc; ++o) {
            int32_t acc = 0;
            for (size_t i = 0; i < c; ++i) acc += pm1(x[r * c + i]) * pm1(wt[o * c + i]);
            CHECK(out[r * oc + o] == static_cast<float>(acc), isa_name(isa)
                                                                  << " rows=" << rows << " c=" << c << " o=" << o
                                                                  << ": got " << out[r * oc + o] << " want " << acc);
          }
      }
    }
  }
  set_isa(isa_name(supported_isas().back()));
}

TEST(bmaxpool2d_is_the_and_of_each_window) {
  auto g = rng(12);
  for (int round = 0; round < 40; ++round) {
    const size_t n = 1 + g() % 2, h = 1 + g() % 8, w = 1 + g() % 8, c = 1 + g() % 150;
    Pool2dParams p;
    p.kernel_h = 1 + g() % 3;
    p.kernel_w = 1 + g() % 3;
    p.stride_h = 1 + g() % 2;
    p.stride_w = 1 + g() % 2;
    p.pad_top = g() % p.kernel_h;
    p.pad_bottom = g() % p.kernel_h;
    p.pad_left = g() % p.kernel_w;
    p.pad_right = g() % p.kernel_w;
    if (h + p.pad_top + p.pad_bottom < p.kernel_h || w + p.pad_left + p.pad_right < p.kernel_w) continue;
    const auto x = random_signs(g, n * h * w * c);
    std::vector<uint64_t> xb(n * h * w * b1_words(c));
    bitpack_f32(x.data(), n * h * w, c, xb.data());
    const Conv2dShape s = bmaxpool2d_shape(n, h, w, c, p);
    std::vector<uint64_t> out(n * s.out_h * s.out_w * b1_words(c));
    bmaxpool2d(xb.data(), s, p, out.data());
    for (size_t b = 0; b < n; ++b)
      for (size_t oh = 0; oh < s.out_h; ++oh)
        for (size_t ow = 0; ow < s.out_w; ++ow)
          for (size_t ch = 0; ch < c; ++ch) {
            int best = -2;
            for (size_t ky = 0; ky < p.kernel_h; ++ky)
              for (size_t kx = 0; kx < p.kernel_w; ++kx) {
                const long iy = long(oh * p.stride_h + ky) - long(p.pad_top),
                           ix = long(ow * p.stride_w + kx) - long(p.pad_left);
                if (iy >= 0 && ix >= 0 && iy < long(h) && ix < long(w))
                  best = std::max(best, pm1(x[((b * h + iy) * w + ix) * c + ch]));
              }
            const uint64_t word = out[((b * s.out_h + oh) * s.out_w + ow) * b1_words(c) + ch / 64];
            const int got = (word >> (ch % 64)) & 1 ? -1 : 1;
            CHECK(got == best,
                  "bmaxpool pixel (" << oh << "," << ow << ") ch " << ch << ": got " << got << " want " << best);
          }
  }
}

TEST(bad_geometry_throws_named_errors) {
  std::vector<float> wt(8 * 9 * 4, 1.f);
  auto w = pack_binary_conv2d_weights_f32(wt.data(), 8, 3, 3, 4, 1);
  auto kind_of = [&](auto fn) {
    try {
      fn();
    } catch (const Error& e) {
      return static_cast<int>(e.kind());
    }
    return -1;
  };
  CHECK(kind_of([&] { bconv2d_shape(1, 5, 5, 5, *w, Conv2dParams{}); }) == int(ErrorKind::Shape), "channel mismatch");
  Conv2dParams zero_stride;
  zero_stride.stride_h = 0;
  CHECK(kind_of([&] { bconv2d_shape(1, 5, 5, 4, *w, zero_stride); }) == int(ErrorKind::Range), "zero stride");
  CHECK(kind_of([&] { bconv2d_shape(1, 2, 2, 4, *w, Conv2dParams{}); }) == int(ErrorKind::Shape), "kernel > input");
  CHECK(kind_of([&] { bconv2d_shape(SIZE_MAX / 2, 1 << 20, 1 << 20, 4, *w, Conv2dParams{}); }) == int(ErrorKind::Range),
        "size overflow");
  CHECK(kind_of([&] { pack_binary_conv2d_weights_f32(wt.data(), 7, 3, 3, 4, 2); }) == int(ErrorKind::Shape),
        "groups must divide O");
  std::vector<float> scale(8, 1.f), bias(8, 0.f);
  scale[3] = NAN;
  BinaryEpilogue e;
  e.scale = scale.data();
  e.bias_f32 = bias.data();
  e.lo = -1;
  e.hi = 1;
  CHECK(kind_of([&] { validate_epilogue(e, 8); }) == int(ErrorKind::Range), "NaN scale");
}
