// fconv_test.cc: the float layers. Every ISA's f32 GEMM kernel against lowbit::ref (tile
// remainders, K tails, channel tails, strided rows, no write outside the n columns), and the
// fconv2d / fdense drivers on every ISA against a direct 7-loop convolution in double on random
// awkward shapes (1-17 input channels, channel tails, 1x1 images, strides, dilations, pads,
// groups incl. depthwise, batch > 1, 1 or 2 threads), bias and clamp included.
//
// Tolerance: float sums in another order (and with fused multiply-adds) differ from the exact sum by
// at most about K x 2^-24 x sum |x * w| in the worst case and about sqrt(K) x 2^-24 x sum |x * w| in
// practice; the bound used is |y - ref| <= 1e-5 x (sum |x * w| + |bias|) + 1e-6, which one wrong or
// missing term (about |x * w| ~ 0.25 here) exceeds by orders of magnitude.
#include "lowbit/fconv.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "cpu/dispatch.h"
#include "float/kernels.h"
#include "harness.h"
#include "lowbit/error.h"
#include "lowbit/runtime.h"

using namespace lowbit;
using lowbit::test::rng;

namespace {

constexpr float kSentinel = -12345.5f;

struct Table {
  std::string name;
  const FloatKernels* k;
};

std::vector<Table> tables() {
  std::vector<Table> out;
  for (Isa isa : supported_isas()) out.push_back({isa_name(isa), &float_kernels_for(isa)});
  return out;
}

std::vector<float> uniform(std::mt19937_64& g, size_t n, float lo = -1, float hi = 1) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(g);
  return v;
}

bool close(float got, double want, double magnitude) {
  if (std::isnan(want)) return std::isnan(got);
  return std::fabs(got - want) <= 1e-5 * magnitude + 1e-6;
}

// clamp(v) as the format defines it (NaN passes).
double clamp(double v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

}  // namespace

TEST(f32_gemm_kernels_match_ref) {
  auto g = rng(61);
  const size_t rows[] = {1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 25};
  const size_t depths[] = {1, 2, 3, 4, 5, 7, 9, 17, 27, 64, 147, 513};
  const size_t widths[] = {1, 7, 8, 9, 15, 16};
  for (const Table& t : tables())
    for (size_t m : rows)
      for (size_t k : depths) {
        const size_t n = widths[g() % 6];
        const size_t lda = k + g() % 3, ldc = n + g() % 20;
        const std::vector<float> a = uniform(g, m * lda), wt = uniform(g, n * k);
        std::vector<float> panel(k * kFPanelChannels), bias(kFPanelChannels, 0.0f);
        pack_f32_panel(wt.data(), n, k, k, panel.data());
        const std::vector<float> b = uniform(g, n);
        std::copy(b.begin(), b.end(), bias.begin());
        const bool clamped = g() % 2;
        const float lo = clamped ? -0.5f * std::sqrt(float(k)) : -INFINITY, hi = clamped ? 0.25f : INFINITY;
        std::vector<float> want(m * ldc, kSentinel), got(m * ldc + 1, kSentinel);
        ref::f32_gemm(m, k, a.data(), lda, panel.data(), bias.data(), lo, hi, want.data(), ldc, n);
        t.k->f32_gemm(m, k, a.data(), lda, panel.data(), bias.data(), lo, hi, got.data(), ldc, n);
        for (size_t i = 0; i < m; ++i)
          for (size_t j = 0; j < ldc; ++j) {
            const size_t at = i * ldc + j;
            if (j >= n) {
              CHECK(got[at] == kSentinel, t.name << " m=" << m << " k=" << k << " n=" << n << " wrote column " << j);
              continue;
            }
            double magnitude = std::fabs(b[j]);
            for (size_t kk = 0; kk < k; ++kk) magnitude += std::fabs(double(a[i * lda + kk]) * wt[j * k + kk]);
            CHECK(close(got[at], want[at], magnitude), t.name << " m=" << m << " k=" << k << " n=" << n << " row " << i
                                                              << " column " << j << ": got " << got[at] << " want "
                                                              << want[at]);
          }
        CHECK(got.back() == kSentinel, t.name << " wrote past the output");
      }
}

TEST(f32_gemm_kernels_pass_nan_through_the_clamp) {
  std::vector<float> a(6 * 5, 1.0f), panel(5 * kFPanelChannels, 0.5f), bias(kFPanelChannels, 0.0f);
  a[2 * 5 + 3] = NAN;  // row 2 only
  for (const Table& t : tables())
    for (size_t m : {size_t{1}, size_t{6}}) {
      std::vector<float> c(m * 16, 0.0f);
      const float* rows = m == 1 ? a.data() + 2 * 5 : a.data();
      t.k->f32_gemm(m, 5, rows, 5, panel.data(), bias.data(), -1.0f, 1.0f, c.data(), 16, 16);
      for (size_t i = 0; i < m; ++i)
        for (size_t j = 0; j < 16; ++j) {
          const bool nan_row = m == 1 || i == 2;
          CHECK(nan_row ? std::isnan(c[i * 16 + j]) : c[i * 16 + j] == 1.0f,
                t.name << " m=" << m << " row " << i << " column " << j << ": got " << c[i * 16 + j]);
        }
    }
}

TEST(f32_dw_tap_kernels_match_ref) {
  auto g = rng(65);
  for (const Table& t : tables())
    for (size_t n = 1; n <= 41; ++n) {
      const std::vector<float> x = uniform(g, n), w = uniform(g, n), acc0 = uniform(g, n + 1);
      std::vector<float> want = acc0, got = acc0;
      ref::f32_dw_tap(n, x.data(), w.data(), want.data());
      t.k->f32_dw_tap(n, x.data(), w.data(), got.data());
      for (size_t c = 0; c < n; ++c)
        CHECK(close(got[c], want[c], std::fabs(acc0[c]) + std::fabs(x[c] * w[c])),
              t.name << " n=" << n << " channel " << c << ": got " << got[c] << " want " << want[c]);
      CHECK(got[n] == acc0[n], t.name << " n=" << n << " wrote past the channels");
    }
}

namespace {

struct Case {
  size_t n, h, w, c, oc, kh, kw, groups;
  Conv2dParams p;
};

// The direct convolution in double: 7 loops (batch, output rows, columns, channels, kernel rows,
// columns, input channels of the group), then the bias and the clamp. Also returns, per output,
// sum |x * w| + |bias| for the tolerance.
void oracle(const Case& k, const std::vector<float>& x, const std::vector<float>& wt, const std::vector<float>& bias,
            float lo, float hi, const Conv2dShape& s, std::vector<double>& y, std::vector<double>& magnitude) {
  const size_t icg = k.c / k.groups, ocg = k.oc / k.groups;
  y.clear(), magnitude.clear();
  for (size_t n = 0; n < k.n; ++n)
    for (size_t oh = 0; oh < s.out_h; ++oh)
      for (size_t ow = 0; ow < s.out_w; ++ow)
        for (size_t o = 0; o < k.oc; ++o) {
          double acc = bias.empty() ? 0 : bias[o], mag = std::fabs(acc);
          for (size_t ky = 0; ky < k.kh; ++ky)
            for (size_t kx = 0; kx < k.kw; ++kx) {
              const long iy = long(oh * k.p.stride_h + ky * k.p.dilation_h) - long(k.p.pad_top);
              const long ix = long(ow * k.p.stride_w + kx * k.p.dilation_w) - long(k.p.pad_left);
              if (iy < 0 || ix < 0 || iy >= long(k.h) || ix >= long(k.w)) continue;
              for (size_t ci = 0; ci < icg; ++ci) {
                const double v = double(x[((n * k.h + iy) * k.w + ix) * k.c + (o / ocg) * icg + ci]) *
                                 wt[((o * k.kh + ky) * k.kw + kx) * icg + ci];
                acc += v, mag += std::fabs(v);
              }
            }
          y.push_back(clamp(acc, lo, hi));
          magnitude.push_back(mag);
        }
}

Case random_case(std::mt19937_64& g) {
  auto pick = [&](std::initializer_list<size_t> v) { return *(v.begin() + g() % v.size()); };
  Case k{};
  k.n = 1 + g() % 3;
  k.c = pick({1, 3, 5, 17, 32});
  k.groups = g() % 4 == 0 ? k.c : pick({1, 1, 1, 2});  // sometimes depthwise
  if (k.c % k.groups) k.groups = 1;
  k.oc = k.groups == k.c && g() % 2 ? k.c : k.groups * pick({1, 7, 9, 15, 16, 17, 33, 65});
  k.kh = pick({1, 3, 7}), k.kw = pick({1, 3, 7});
  k.p.stride_h = 1 + g() % 2, k.p.stride_w = 1 + g() % 2;
  k.p.dilation_h = 1 + g() % 2, k.p.dilation_w = g() % 4 ? 1 : 2;
  k.p.pad_top = g() % (k.kh * k.p.dilation_h), k.p.pad_bottom = g() % (k.kh * k.p.dilation_h);
  k.p.pad_left = g() % (k.kw * k.p.dilation_w), k.p.pad_right = g() % (k.kw * k.p.dilation_w);
  if (g() % 4 == 0) k.p.pad_top = k.p.pad_bottom = k.p.pad_left = k.p.pad_right = 0;
  const size_t span_h = (k.kh - 1) * k.p.dilation_h + 1, span_w = (k.kw - 1) * k.p.dilation_w + 1;
  k.h = g() % 6 == 0 ? 1 : 1 + g() % 12;  // sometimes a 1x1 image
  k.w = g() % 6 == 0 ? 1 : 1 + g() % 12;
  // Enough (padded) input for one window.
  if (k.h + k.p.pad_top + k.p.pad_bottom < span_h) k.h = span_h;
  if (k.w + k.p.pad_left + k.p.pad_right < span_w) k.w = span_w;
  return k;
}

std::string describe(const Case& k) {
  std::ostringstream s;
  s << "n=" << k.n << " " << k.h << "x" << k.w << "x" << k.c << " -> " << k.oc << " k=" << k.kh << "x" << k.kw
    << " s=" << k.p.stride_h << "," << k.p.stride_w << " d=" << k.p.dilation_h << "," << k.p.dilation_w
    << " pads=" << k.p.pad_top << "," << k.p.pad_left << "," << k.p.pad_bottom << "," << k.p.pad_right
    << " groups=" << k.groups;
  return s.str();
}

}  // namespace

TEST(fconv2d_matches_the_direct_convolution_on_every_isa) {
  auto g = rng(62);
  const size_t saved_threads = num_threads();
  for (int iter = 0; iter < 80; ++iter) {
    Case k = random_case(g);
    if (iter == 0) k = Case{1, 30, 30, 3, 64, 7, 7, 1, Conv2dParams{2, 2, 1, 1, 3, 3, 3, 3}};  // a stem
    if (iter == 1) k = Case{2, 9, 9, 64, 33, 1, 1, 1, Conv2dParams{}};                         // 1x1, direct
    if (iter == 2) k = Case{1, 9, 9, 64, 128, 1, 1, 1, Conv2dParams{2, 2, 1, 1, 0, 0, 0, 0}};  // 1x1 stride 2
    if (iter == 3) k = Case{2, 9, 8, 33, 33, 3, 3, 33, Conv2dParams{2, 1, 1, 2, 1, 2, 0, 1}};  // depthwise
    const size_t icg = k.c / k.groups;
    const std::vector<float> wt = uniform(g, k.oc * k.kh * k.kw * icg), x = uniform(g, k.n * k.h * k.w * k.c);
    const std::vector<float> bias = g() % 3 ? uniform(g, k.oc) : std::vector<float>();
    const bool clamped = g() % 2;
    const float lo = clamped ? -0.5f : -INFINITY, hi = clamped ? (g() % 2 ? 0.5f : INFINITY) : INFINITY;
    const auto packed = pack_fconv2d_weights(wt.data(), k.oc, k.kh, k.kw, icg, k.groups);
    const Conv2dShape s = fconv2d_shape(k.n, k.h, k.w, k.c, *packed, k.p);
    std::vector<double> want, magnitude;
    oracle(k, x, wt, bias, lo, hi, s, want, magnitude);
    const FEpilogue e{bias.empty() ? nullptr : bias.data(), lo, hi};
    set_num_threads(1 + g() % 2);
    for (Isa isa : supported_isas()) {
      set_isa(isa_name(isa));
      std::vector<float> got(want.size() + 1, kSentinel);
      fconv2d(x.data(), s, *packed, k.p, e, got.data());
      for (size_t i = 0; i < want.size(); ++i)
        CHECK(close(got[i], want[i], magnitude[i]), isa_name(isa)
                                                        << " iter " << iter << " " << describe(k) << " element " << i
                                                        << ": got " << got[i] << " want " << want[i]);
      CHECK(got.back() == kSentinel, isa_name(isa) << " wrote past the output");
    }
  }
  set_num_threads(saved_threads);
  set_isa(isa_name(supported_isas().back()));
}

TEST(fdense_matches_the_dot_products_on_every_isa) {
  auto g = rng(63);
  const size_t saved_threads = num_threads();
  for (size_t rows : {1, 2, 7, 16})
    for (size_t in_c : {1, 3, 17, 512})
      for (size_t oc : {1, 10, 33, 1000}) {
        const std::vector<float> wt = uniform(g, oc * in_c), x = uniform(g, rows * in_c), bias = uniform(g, oc);
        const auto packed = pack_fconv2d_weights(wt.data(), oc, 1, 1, in_c, 1);
        set_num_threads(1 + g() % 2);
        for (Isa isa : supported_isas()) {
          set_isa(isa_name(isa));
          std::vector<float> got(rows * oc + 1, kSentinel);
          fdense(x.data(), rows, in_c, *packed, FEpilogue{bias.data(), -2.0f, 2.0f}, got.data());
          for (size_t r = 0; r < rows; ++r)
            for (size_t c = 0; c < oc; ++c) {
              double acc = bias[c], mag = std::fabs(bias[c]);
              for (size_t i = 0; i < in_c; ++i) {
                const double v = double(x[r * in_c + i]) * wt[c * in_c + i];
                acc += v, mag += std::fabs(v);
              }
              CHECK(close(got[r * oc + c], clamp(acc, -2.0f, 2.0f), mag),
                    isa_name(isa) << " rows=" << rows << " in=" << in_c << " out=" << oc << " at " << r << "," << c
                                  << ": got " << got[r * oc + c] << " want " << clamp(acc, -2.0f, 2.0f));
            }
          CHECK(got.back() == kSentinel, isa_name(isa) << " wrote past the output");
        }
      }
  set_num_threads(saved_threads);
  set_isa(isa_name(supported_isas().back()));
}

namespace {

// Runs `f`; the error kind it throws and its message, or nothing.
template <typename F>
std::string thrown(F f, ErrorKind kind) {
  try {
    f();
  } catch (const Error& e) {
    return e.kind() == kind ? e.what() : std::string("wrong kind: ") + e.what();
  }
  return "";
}

}  // namespace

TEST(fconv_rejects_bad_geometry_and_clamps) {
  std::vector<float> w(6 * 3 * 3 * 2, 0.5f);
  std::string m = thrown([&] { pack_fconv2d_weights(w.data(), 5, 3, 3, 2, 2); }, ErrorKind::Shape);
  CHECK(m.find("do not divide into 2 groups") != std::string::npos, "got '" << m << "'");
  const auto packed = pack_fconv2d_weights(w.data(), 6, 3, 3, 2, 1);
  m = thrown([&] { fconv2d_shape(1, 8, 8, 3, *packed, Conv2dParams{}); }, ErrorKind::Shape);
  CHECK(m.find("input has 3 channels") != std::string::npos, "got '" << m << "'");
  m = thrown([&] { fconv2d_shape(1, 2, 8, 2, *packed, Conv2dParams{}); }, ErrorKind::Shape);
  CHECK(m.find("larger than the padded input height") != std::string::npos, "got '" << m << "'");
  const Conv2dShape s = fconv2d_shape(1, 4, 4, 2, *packed, Conv2dParams{});
  std::vector<float> x(4 * 4 * 2, 1.0f), y(2 * 2 * 6);
  m = thrown(
      [&] {
        fconv2d(x.data(), s, *packed, Conv2dParams{}, FEpilogue{nullptr, 1.0f, -1.0f}, y.data());
      },
      ErrorKind::Range);
  CHECK(m.find("must have lo <= hi") != std::string::npos, "got '" << m << "'");
  m = thrown([&] { fdense(x.data(), 1, 18, *packed, FEpilogue{}, y.data()); }, ErrorKind::Shape);
  CHECK(m.find("fdense needs weights packed as [O, I]") != std::string::npos, "got '" << m << "'");
}

TEST(fconv2d_gives_the_same_bits_for_any_thread_count) {
  // 3 x 7 x 7 = 147 pixels: the tiles differ between 1, 2 and 3 threads, and 147 % 6 leaves a tail.
  auto g = rng(64);
  const size_t saved_threads = num_threads();
  const std::vector<float> wt = uniform(g, 20 * 9 * 5), x = uniform(g, 3 * 7 * 7 * 5), bias = uniform(g, 20);
  const auto packed = pack_fconv2d_weights(wt.data(), 20, 3, 3, 5, 1);
  const Conv2dParams p{1, 1, 1, 1, 1, 1, 1, 1};
  const Conv2dShape s = fconv2d_shape(3, 7, 7, 5, *packed, p);
  for (Isa isa : supported_isas()) {
    set_isa(isa_name(isa));
    std::vector<float> one(3 * 7 * 7 * 20);
    set_num_threads(1);
    fconv2d(x.data(), s, *packed, p, FEpilogue{bias.data()}, one.data());
    for (size_t threads : {2, 3}) {
      set_num_threads(threads);
      std::vector<float> many(one.size());
      fconv2d(x.data(), s, *packed, p, FEpilogue{bias.data()}, many.data());
      CHECK(std::memcmp(one.data(), many.data(), one.size() * sizeof(float)) == 0,
            isa_name(isa) << ": " << threads << " threads differ from 1");
    }
  }
  set_num_threads(saved_threads);
  set_isa(isa_name(supported_isas().back()));
}
