// fconv_test.cc: the float layers. Every ISA's f32 GEMM kernel against lowbit::ref (tile
// remainders, K tails, channel tails, strided rows, no write outside the n columns), and the
// fconv2d / fdense drivers on every ISA against a direct 7-loop convolution in double on random
// awkward shapes (1-17 input channels, channel tails, 1x1 images, strides, dilations, pads,
// groups incl. depthwise, batch > 1, 1 or 2 threads), bias and clamp included; the fused sign
// (fconv2d_sign) on the same cases, bits within rounding of a threshold excepted.
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

#include "common/checked_math.h"
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

namespace {

// A kernel call's A operand read in place: m row origins spread over a buffer (any alignment, rows
// overlapping as a convolution's windows do) and K cut into runs at random offsets, as a kernel row
// of a window.
struct Operand {
  std::vector<float> data;
  std::vector<const float*> rows;
  std::vector<FRun> runs;
  size_t k = 0;
  float at(size_t i, size_t kk) const {  // A[i][kk]
    for (const FRun& r : runs) {
      if (kk < r.length) return rows[i][r.offset + kk];
      kk -= r.length;
    }
    return NAN;
  }
};

Operand random_operand(std::mt19937_64& g, size_t m, size_t k) {
  Operand a;
  a.k = k;
  size_t offset = g() % 3, left = k;
  while (left > 0) {
    const size_t length = std::min<size_t>(left, g() % 3 == 0 ? k : 1 + g() % 9);
    a.runs.push_back({offset, length});
    offset += length + g() % 40;
    left -= length;
  }
  const size_t stride = g() % 2 ? 1 + g() % 5 : offset;
  a.data = uniform(g, (m - 1) * stride + offset);
  for (size_t i = 0; i < m; ++i) a.rows.push_back(a.data.data() + i * stride);
  return a;
}

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
        const size_t ldc = n + g() % 20;
        const Operand a = random_operand(g, m, k);
        const std::vector<float> wt = uniform(g, n * k);
        std::vector<float> panel(k * kFPanelChannels), bias(kFPanelChannels, 0.0f);
        pack_f32_panel(wt.data(), n, k, k, panel.data());
        const std::vector<float> b = uniform(g, n);
        std::copy(b.begin(), b.end(), bias.begin());
        const bool clamped = g() % 2;
        const float lo = clamped ? -0.5f * std::sqrt(float(k)) : -INFINITY, hi = clamped ? 0.25f : INFINITY;
        std::vector<float> want(m * ldc, kSentinel), got(m * ldc + 1, kSentinel);
        const F32GemmOut want_out{bias.data(), lo, hi, want.data(), ldc, nullptr, nullptr, 0};
        const F32GemmOut got_out{bias.data(), lo, hi, got.data(), ldc, nullptr, nullptr, 0};
        ref::f32_gemm(m, a.rows.data(), a.runs.data(), a.runs.size(), panel.data(), want_out, n);
        t.k->f32_gemm(m, a.rows.data(), a.runs.data(), a.runs.size(), panel.data(), got_out, n);
        for (size_t i = 0; i < m; ++i)
          for (size_t j = 0; j < ldc; ++j) {
            const size_t at = i * ldc + j;
            if (j >= n) {
              CHECK(got[at] == kSentinel, t.name << " m=" << m << " k=" << k << " n=" << n << " wrote column " << j);
              continue;
            }
            double magnitude = std::fabs(b[j]);
            for (size_t kk = 0; kk < k; ++kk) magnitude += std::fabs(double(a.at(i, kk)) * wt[j * k + kk]);
            CHECK(close(got[at], want[at], magnitude), t.name << " m=" << m << " k=" << k << " n=" << n << " row " << i
                                                              << " column " << j << ": got " << got[at] << " want "
                                                              << want[at]);
          }
        CHECK(got.back() == kSentinel, t.name << " wrote past the output");
      }
}

// A row's sum must not depend on the call's other rows: a sample served in a batch gets the bits it
// gets alone (lowbit serve stacks requests). Every m, so every tile height and remainder.
TEST(f32_gemm_kernels_sum_each_row_alike_for_any_m) {
  auto g = rng(67);
  for (const Table& t : tables())
    for (size_t m = 1; m <= 14; ++m)
      for (size_t k : {1, 5, 9, 64, 147, 513}) {
        const Operand a = random_operand(g, m, k);
        const std::vector<float> wt = uniform(g, kFPanelChannels * k);
        std::vector<float> panel(k * kFPanelChannels);
        pack_f32_panel(wt.data(), kFPanelChannels, k, k, panel.data());
        const std::vector<float> bias = uniform(g, kFPanelChannels);
        std::vector<float> all(m * kFPanelChannels), one(kFPanelChannels);
        t.k->f32_gemm(m, a.rows.data(), a.runs.data(), a.runs.size(), panel.data(),
                      {bias.data(), -INFINITY, INFINITY, all.data(), kFPanelChannels, nullptr, nullptr, 0},
                      kFPanelChannels);
        for (size_t i = 0; i < m; ++i) {
          t.k->f32_gemm(1, &a.rows[i], a.runs.data(), a.runs.size(), panel.data(),
                        {bias.data(), -INFINITY, INFINITY, one.data(), kFPanelChannels, nullptr, nullptr, 0},
                        kFPanelChannels);
          CHECK(std::memcmp(one.data(), &all[i * kFPanelChannels], sizeof(float) * kFPanelChannels) == 0,
                t.name << " m=" << m << " k=" << k << ": row " << i << " alone differs from the call's");
        }
      }
}

TEST(f32_gemm_kernels_write_sign_bits) {
  // The sign epilogue: bit j of row i's 16-bit mask = (clamp(v) < threshold[j]) for j < n, else 0.
  // Bits whose exact value lies within float rounding of the threshold may differ from ref's.
  auto g = rng(66);
  for (const Table& t : tables())
    for (size_t m : {1, 5, 6, 7, 13, 24})
      for (size_t k : {1, 3, 9, 20, 147}) {
        const size_t n = 1 + g() % 16, ldb = 1 + g() % 3;
        const Operand a = random_operand(g, m, k);
        const std::vector<float> wt = uniform(g, n * k);
        std::vector<float> panel(k * kFPanelChannels), bias(kFPanelChannels, 0.0f), threshold(kFPanelChannels);
        pack_f32_panel(wt.data(), n, k, k, panel.data());
        for (size_t j = 0; j < n; ++j) bias[j] = uniform(g, 1)[0];
        for (float& v : threshold) v = g() % 4 == 0 ? (g() % 2 ? INFINITY : -INFINITY) : uniform(g, 1, -0.5f, 0.5f)[0];
        const bool clamped = g() % 2;
        const float lo = clamped ? -0.25f : -INFINITY, hi = clamped ? 0.5f : INFINITY;
        std::vector<uint16_t> want(m * ldb, 0xAAAA), got(m * ldb + 1, 0xAAAA);
        const F32GemmOut want_out{bias.data(), lo, hi, nullptr, 0, threshold.data(), want.data(), ldb};
        const F32GemmOut got_out{bias.data(), lo, hi, nullptr, 0, threshold.data(), got.data(), ldb};
        ref::f32_gemm(m, a.rows.data(), a.runs.data(), a.runs.size(), panel.data(), want_out, n);
        t.k->f32_gemm(m, a.rows.data(), a.runs.data(), a.runs.size(), panel.data(), got_out, n);
        for (size_t i = 0; i < m * ldb; ++i) {
          if (i % ldb != 0) {
            CHECK(got[i] == 0xAAAA, t.name << " m=" << m << " k=" << k << " wrote between rows at " << i);
            continue;
          }
          CHECK(want[i] >> n == 0 && got[i] >> n == 0, t.name << " set bits past n=" << n);
          for (size_t j = 0; j < n; ++j) {
            double v = bias[j], magnitude = std::fabs(bias[j]);
            for (size_t kk = 0; kk < k; ++kk) {
              v += double(a.at(i / ldb, kk)) * wt[j * k + kk];
              magnitude += std::fabs(double(a.at(i / ldb, kk)) * wt[j * k + kk]);
            }
            if (close(threshold[j], clamp(v, lo, hi), magnitude)) continue;
            const bool bit = clamp(v, lo, hi) < threshold[j];
            CHECK(((want[i] >> j) & 1) == bit && ((got[i] >> j) & 1) == bit,
                  t.name << " m=" << m << " k=" << k << " n=" << n << " row " << i / ldb << " bit " << j << ": got "
                         << got[i] << " ref " << want[i]);
          }
        }
        CHECK(got.back() == 0xAAAA, t.name << " wrote past the output");
      }
}

TEST(f32_gemm_kernels_pass_nan_through_the_clamp) {
  std::vector<float> a(6 * 5, 1.0f), panel(5 * kFPanelChannels, 0.5f), bias(kFPanelChannels, 0.0f);
  std::vector<float> threshold(kFPanelChannels, INFINITY);
  a[2 * 5 + 3] = NAN;  // row 2 only
  const FRun run{0, 5};
  for (const Table& t : tables())
    for (size_t m : {size_t{1}, size_t{6}}) {
      std::vector<const float*> rows;
      for (size_t i = 0; i < m; ++i) rows.push_back(m == 1 ? a.data() + 2 * 5 : a.data() + i * 5);
      std::vector<float> c(m * 16, 0.0f);
      std::vector<uint16_t> bits(m, 0);
      t.k->f32_gemm(m, rows.data(), &run, 1, panel.data(),
                    F32GemmOut{bias.data(), -1.0f, 1.0f, c.data(), 16, nullptr, nullptr, 0}, 16);
      t.k->f32_gemm(m, rows.data(), &run, 1, panel.data(),
                    F32GemmOut{bias.data(), -1.0f, 1.0f, nullptr, 0, threshold.data(), bits.data(), 1}, 16);
      for (size_t i = 0; i < m; ++i) {
        const bool nan_row = m == 1 || i == 2;
        // A NaN compares false: bit 0 (+1) even below an infinite threshold.
        CHECK(bits[i] == (nan_row ? 0 : 0xFFFF), t.name << " m=" << m << " row " << i << ": bits " << bits[i]);
        for (size_t j = 0; j < 16; ++j)
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
    if (iter == 4) k = Case{3, 28, 28, 1, 32, 3, 3, 1, Conv2dParams{1, 1, 1, 1, 1, 1, 1, 1}};  // Fashion's conv1
    if (iter == 5) k = Case{2, 5, 7, 4, 40, 3, 3, 2, Conv2dParams{2, 2, 1, 1, 1, 1, 1, 1}};    // 20 a group
    if (iter == 6) k = Case{1, 6, 6, 2, 64, 3, 3, 2, Conv2dParams{1, 1, 1, 1, 1, 0, 0, 1}};    // 32 a group
    if (iter == 7) k = Case{2, 1, 1, 3, 130, 3, 3, 1, Conv2dParams{1, 1, 1, 1, 1, 1, 1, 1}};   // 1x1 image
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
    // The fused sign: thresholds near the outputs, some infinite.
    std::vector<float> threshold = uniform(g, k.oc, -0.3f, 0.3f);
    for (float& t : threshold) t = g() % 8 == 0 ? (g() % 2 ? INFINITY : -INFINITY) : t;
    const size_t words = words_for_bits(k.oc), pixels = want.size() / k.oc;
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
      std::vector<uint64_t> bits(pixels * words + 1, 0x5555555555555555ull);
      fconv2d_sign(x.data(), s, *packed, k.p, e, threshold.data(), bits.data());
      for (size_t i = 0; i < pixels; ++i)
        for (size_t c = 0; c < words * 64; ++c) {
          const bool bit = (bits[i * words + c / 64] >> (c % 64)) & 1;
          if (c >= k.oc) {
            CHECK(!bit,
                  isa_name(isa) << " iter " << iter << " " << describe(k) << " pixel " << i << ": tail bit " << c);
            continue;
          }
          const size_t at = i * k.oc + c;
          if (close(threshold[c], want[at], magnitude[at])) continue;  // within rounding of the threshold
          CHECK(bit == (want[at] < threshold[c]), isa_name(isa) << " iter " << iter << " " << describe(k) << " pixel "
                                                                << i << " channel " << c << ": bit " << bit << " for "
                                                                << want[at] << " vs " << threshold[c]);
        }
      CHECK(bits.back() == 0x5555555555555555ull, isa_name(isa) << " wrote past the bits");
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
    std::vector<uint64_t> one_bits(3 * 7 * 7);
    fconv2d_sign(x.data(), s, *packed, p, FEpilogue{bias.data()}, bias.data(), one_bits.data());
    for (size_t threads : {2, 3}) {
      set_num_threads(threads);
      std::vector<float> many(one.size());
      fconv2d(x.data(), s, *packed, p, FEpilogue{bias.data()}, many.data());
      CHECK(std::memcmp(one.data(), many.data(), one.size() * sizeof(float)) == 0,
            isa_name(isa) << ": " << threads << " threads differ from 1");
      std::vector<uint64_t> many_bits(one_bits.size());
      fconv2d_sign(x.data(), s, *packed, p, FEpilogue{bias.data()}, bias.data(), many_bits.data());
      CHECK(one_bits == many_bits, isa_name(isa) << ": " << threads << " threads give other sign bits");
    }
  }
  set_num_threads(saved_threads);
  set_isa(isa_name(supported_isas().back()));
}
