// eltwise_ops_test.cc: the operators built on the element-wise kernels (qadd, qclamp, the pools in
// lowbit/qops.h; the sign, unpack and boundary conversions of graph/elementwise.h) against oracles
// written from their definitions, on every supported ISA, on awkward shapes (channels 1, 3, 17, 31,
// 33, 65, 100; 1x1 images; stride 2; padding), both dtypes and extreme scales.
#include <cmath>
#include <cstring>
#include <limits>

#include "common/checked_math.h"
#include "cpu/dispatch.h"
#include "graph/elementwise.h"
#include "harness.h"
#include "integer/quantize.h"
#include "lowbit/qops.h"
#include "lowbit/quantize.h"

using namespace lowbit;
using lowbit::test::rng;

namespace {

const size_t kChannels[] = {1, 3, 17, 31, 33, 64, 65, 100};

int32_t value(uint8_t x, bool is_signed) { return is_signed ? static_cast<int8_t>(x) : x; }
int32_t clamp(int64_t v, int32_t lo, int32_t hi) { return static_cast<int32_t>(v < lo ? lo : (v > hi ? hi : v)); }

std::vector<uint8_t> random_bytes(std::mt19937_64& g, size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& x : v) x = static_cast<uint8_t>(g());
  return v;
}

QuantParams random_input(std::mt19937_64& g, bool is_signed, double scale) {
  const int32_t zp = is_signed ? static_cast<int32_t>(g() % 256) - 128 : static_cast<int32_t>(g() % 256);
  const int32_t ends[] = {is_signed ? -128 : 0, is_signed ? 127 : 255};
  return {scale, g() % 4 == 0 ? ends[g() % 2] : zp};
}

QuantOutput random_output(std::mt19937_64& g, double scale) {
  QuantOutput o;
  const bool is_signed = g() % 2;
  if (g() % 3 == 0) {
    o.lo = is_signed ? -8 : 0, o.hi = is_signed ? 7 : 15;
  } else {
    o.lo = is_signed ? -128 : 0, o.hi = is_signed ? 127 : 255;
  }
  o.q = {scale, o.lo + static_cast<int32_t>(g() % static_cast<uint64_t>(o.hi - o.lo + 1))};
  return o;
}

// A scale ratio 2^k with k in [lo, hi), times a random mantissa.
double random_ratio(std::mt19937_64& g, double lo, double hi) {
  return std::ldexp(std::uniform_real_distribution<double>(1.0, 2.0)(g),
                    static_cast<int>(lo + g() % static_cast<uint64_t>(hi - lo)));
}

// Runs body once per supported ISA, restoring the best one afterwards.
template <typename F>
void on_every_isa(F body) {
  for (Isa isa : supported_isas()) {
    set_isa(isa_name(isa));
    body(isa);
  }
  set_isa(isa_name(supported_isas().back()));
}

}  // namespace

TEST(eltwise_qadd_matches_its_definition_on_every_isa) {
  auto g = rng(301);
  const size_t lengths[] = {0, 1, 3, 17, 31, 33, 65, 100, 1000, 70001};
  on_every_isa([&](Isa isa) {
    for (size_t n : lengths)
      for (int round = 0; round < (n > 1000 ? 3 : 25); ++round) {
        const bool as = g() % 2, bs = g() % 2;
        // Ratios from 2^-32 (terms always 0) through 2^25 (the int64 path, shift < 10).
        const bool extreme = round % 3 == 0;
        const double ra = extreme ? random_ratio(g, -32, 26) : random_ratio(g, -3, 3);
        const double rb = extreme ? random_ratio(g, -32, 26) : random_ratio(g, -3, 3);
        const double os = std::uniform_real_distribution<double>(0.01, 1.0)(g);
        const QuantParams qa = random_input(g, as, ra * os), qb = random_input(g, bs, rb * os);
        const QuantOutput o = random_output(g, os);
        const auto a = random_bytes(g, n), b = random_bytes(g, n);
        std::vector<uint8_t> got(n + 1, 0xA5);
        qadd(a.data(), as, qa, b.data(), bs, qb, n, o, got.data());
        const Dyadic da = to_dyadic(qa.scale / o.q.scale), db = to_dyadic(qb.scale / o.q.scale);
        for (size_t i = 0; i < n; ++i) {
          const int64_t v = dyadic_rescale(value(a[i], as) - qa.zero_point, da.multiplier, da.shift) +
                            dyadic_rescale(value(b[i], bs) - qb.zero_point, db.multiplier, db.shift) + o.q.zero_point;
          const uint8_t want = static_cast<uint8_t>(clamp(v, o.lo, o.hi));
          CHECK(got[i] == want, "qadd " << isa_name(isa) << " n=" << n << " i=" << i << " ea=" << da.shift
                                        << " eb=" << db.shift << ": got " << int(got[i]) << " want " << int(want));
        }
        CHECK(got[n] == 0xA5, "qadd wrote past the end");
      }
  });
}

TEST(eltwise_prelu_8bit_matches_its_definition_on_every_isa) {
  auto g = rng(305);
  on_every_isa([&](Isa isa) {
    for (size_t c : kChannels)
      for (int round = 0; round < 8; ++round) {
        const size_t rows = 1 + g() % 5;
        std::vector<int32_t> mult_pos(c), mult_neg(c);
        std::vector<uint8_t> shift_pos(c), shift_neg(c);
        // Slopes from real ratios, negative ones too; every fourth layer with one shift below 10
        // (a ratio of at least 2^21), which takes the int64 path.
        for (size_t ch = 0; ch < c; ++ch) {
          const Dyadic pos = to_dyadic(random_ratio(g, -20, 4)), neg = to_dyadic(random_ratio(g, -20, 4));
          mult_pos[ch] = pos.multiplier, shift_pos[ch] = static_cast<uint8_t>(pos.shift);
          mult_neg[ch] = g() % 3 == 0 ? -neg.multiplier : neg.multiplier,
          shift_neg[ch] = static_cast<uint8_t>(neg.shift);
        }
        if (round % 4 == 3) shift_neg[g() % c] = static_cast<uint8_t>(g() % 10);
        const bool is_signed = g() % 2;
        const QuantOutput o = random_output(g, 1.0);
        PreluParams p{mult_pos.data(),
                      shift_pos.data(),
                      mult_neg.data(),
                      shift_neg.data(),
                      is_signed,
                      random_input(g, is_signed, 1.0).zero_point,
                      o.q.zero_point,
                      o.lo,
                      o.hi};
        const auto x = random_bytes(g, rows * c);
        std::vector<uint8_t> got(rows * c);
        prelu_8bit(x.data(), rows, c, p, got.data());
        for (size_t i = 0; i < rows * c; ++i) {
          const size_t ch = i % c;
          const int64_t v = value(x[i], is_signed) - p.in_zero_point;
          const int64_t y =
              v >= 0 ? dyadic_rescale(v, mult_pos[ch], shift_pos[ch]) : dyadic_rescale(v, mult_neg[ch], shift_neg[ch]);
          const uint8_t want = static_cast<uint8_t>(clamp(y + p.out_zero_point, p.lo, p.hi));
          CHECK(got[i] == want, "prelu_8bit " << isa_name(isa) << " c=" << c << " i=" << i << ": got " << int(got[i])
                                              << " want " << int(want));
        }
      }
  });
}

TEST(eltwise_qclamp_sign_unpack_match_their_definitions_on_every_isa) {
  auto g = rng(302);
  on_every_isa([&](Isa isa) {
    for (size_t c : kChannels)
      for (size_t rows : {1, 2, 7}) {
        const bool is_signed = g() % 2;
        const auto x = random_bytes(g, rows * c);
        const int32_t min = is_signed ? -128 : 0;
        int32_t lo = min + static_cast<int32_t>(g() % 256), hi = min + static_cast<int32_t>(g() % 256);
        if (lo > hi) std::swap(lo, hi);
        std::vector<uint8_t> clamped(rows * c);
        qclamp(x.data(), is_signed, rows * c, lo, hi, clamped.data());
        for (size_t i = 0; i < rows * c; ++i)
          CHECK(value(clamped[i], is_signed) == clamp(value(x[i], is_signed), lo, hi),
                "qclamp " << isa_name(isa) << " i=" << i);

        const int32_t zp = min + static_cast<int32_t>(g() % 256);
        const size_t words = words_for_bits(c);
        std::vector<uint64_t> bits(rows * words);
        sign_8bit(x.data(), is_signed, rows, c, zp, bits.data());
        for (size_t r = 0; r < rows; ++r)
          for (size_t w = 0; w < words; ++w) {
            uint64_t want = 0;
            for (size_t ch = 64 * w; ch < std::min(c, 64 * w + 64); ++ch)
              want |= uint64_t{value(x[r * c + ch], is_signed) < zp} << (ch % 64);
            CHECK(bits[r * words + w] == want, "sign_8bit " << isa_name(isa) << " c=" << c << " row " << r);
          }

        std::vector<int8_t> unpacked(rows * c);
        unpack_b1(bits.data(), rows, c, unpacked.data());
        for (size_t r = 0; r < rows; ++r)
          for (size_t ch = 0; ch < c; ++ch)
            CHECK(unpacked[r * c + ch] == (value(x[r * c + ch], is_signed) < zp ? -1 : 1),
                  "unpack_b1 " << isa_name(isa) << " c=" << c);
      }
  });
}

TEST(eltwise_boundary_conversions_match_the_per_value_rules_on_every_isa) {
  auto g = rng(303);
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  on_every_isa([&](Isa isa) {
    for (size_t c : kChannels)
      for (size_t hw : {1, 5, 63, 64, 65, 200}) {
        const size_t batch = 1 + g() % 2;
        const float scale = g() % 4 == 0 ? 1e-30f : std::uniform_real_distribution<float>(0.001f, 2.0f)(g);
        const bool is_signed = g() % 2;
        const int32_t lo = is_signed ? -128 : 0, hi = is_signed ? 127 : 255;
        const int32_t zp = lo + static_cast<int32_t>(g() % 256);
        std::vector<float> x(batch * c * hw);
        for (auto& v : x)
          v = g() % 10 == 0 ? (g() % 2 ? nan : -inf)
                            : std::uniform_real_distribution<float>(-200.0f, 200.0f)(g) * scale;
        std::vector<uint8_t> q(batch * hw * c);
        quantize_chw_to_hwc(x.data(), batch, c, hw, scale, zp, lo, hi, q.data());
        for (size_t n = 0; n < batch; ++n)
          for (size_t p = 0; p < hw; ++p)
            for (size_t ch = 0; ch < c; ++ch) {
              const uint8_t want = quantize_value(x[(n * c + ch) * hw + p], scale, zp, lo, hi);
              CHECK(q[(n * hw + p) * c + ch] == want,
                    "quantize_chw_to_hwc " << isa_name(isa) << " c=" << c << " hw=" << hw << " p=" << p);
            }
        std::vector<float> back(batch * c * hw);
        dequantize_hwc_to_chw(q.data(), is_signed, batch, hw, c, scale, zp, back.data());
        for (size_t n = 0; n < batch; ++n)
          for (size_t p = 0; p < hw; ++p)
            for (size_t ch = 0; ch < c; ++ch) {
              const float want = dequantize_value(q[(n * hw + p) * c + ch], is_signed, scale, zp);
              CHECK(std::memcmp(&back[(n * c + ch) * hw + p], &want, 4) == 0,
                    "dequantize_hwc_to_chw " << isa_name(isa) << " c=" << c << " hw=" << hw);
            }
      }
  });
}

namespace {

struct PoolCase {
  size_t batch, h, w, c;
  Pool2dParams p;
};

std::vector<PoolCase> pool_cases(std::mt19937_64& g) {
  std::vector<PoolCase> cases;
  for (size_t c : kChannels) {
    Pool2dParams k2s2;
    k2s2.kernel_h = k2s2.kernel_w = k2s2.stride_h = k2s2.stride_w = 2;
    Pool2dParams k3s1p1;
    k3s1p1.kernel_h = k3s1p1.kernel_w = 3;
    k3s1p1.pad_top = k3s1p1.pad_left = k3s1p1.pad_bottom = k3s1p1.pad_right = 1;
    Pool2dParams k3s2p1 = k3s1p1;
    k3s2p1.stride_h = k3s2p1.stride_w = 2;
    Pool2dParams odd;  // asymmetric kernel, strides and pads
    odd.kernel_h = 2, odd.kernel_w = 3, odd.stride_h = 1, odd.stride_w = 2, odd.pad_top = 1, odd.pad_right = 2;
    cases.push_back({1, 1, 1, c, Pool2dParams{}});
    cases.push_back({static_cast<size_t>(1 + g() % 2), 6, 7, c, k2s2});
    cases.push_back({1, 5, 5, c, k3s1p1});
    cases.push_back({2, 7, 6, c, k3s2p1});
    cases.push_back({1, 4, 5, c, odd});
    cases.push_back({1, 13, 11, c, k2s2});  // the global pool's 143 taps cross the kernels' 64- and 128-tap runs
  }
  return cases;
}

inline void window(size_t o, size_t stride, size_t pad, size_t kernel, size_t in, size_t& a, size_t& b) {
  const long start = static_cast<long>(o * stride) - static_cast<long>(pad);
  a = static_cast<size_t>(std::max<long>(0, start));
  b = static_cast<size_t>(std::min<long>(static_cast<long>(in), start + static_cast<long>(kernel)));
}

}  // namespace

TEST(eltwise_pools_match_their_definitions_on_every_isa) {
  auto g = rng(304);
  const auto cases = pool_cases(g);
  on_every_isa([&](Isa isa) {
    for (const PoolCase& pc : cases) {
      const bool is_signed = g() % 2;
      const Conv2dShape s = qpool2d_shape(pc.batch, pc.h, pc.w, pc.c, pc.p);
      const auto x = random_bytes(g, pc.batch * pc.h * pc.w * pc.c);
      const size_t out_size = s.batch * s.out_h * s.out_w * pc.c;
      std::vector<uint8_t> maxed(out_size), avg(out_size);
      qmaxpool2d(x.data(), is_signed, s, pc.p, maxed.data());
      const bool include_pad = g() % 2;
      const QuantParams in_q = random_input(g, is_signed, std::uniform_real_distribution<double>(0.01, 1.0)(g));
      const QuantOutput o = random_output(g, in_q.scale * (g() % 3 == 0 ? random_ratio(g, -12, 12) : 1.0));
      qavgpool2d(x.data(), is_signed, s, pc.p, include_pad, in_q, o, avg.data());
      for (size_t n = 0; n < s.batch; ++n)
        for (size_t oy = 0; oy < s.out_h; ++oy)
          for (size_t ox = 0; ox < s.out_w; ++ox) {
            size_t y0, y1, x0, x1;
            window(oy, pc.p.stride_h, pc.p.pad_top, pc.p.kernel_h, pc.h, y0, y1);
            window(ox, pc.p.stride_w, pc.p.pad_left, pc.p.kernel_w, pc.w, x0, x1);
            const size_t count = include_pad ? pc.p.kernel_h * pc.p.kernel_w : (y1 - y0) * (x1 - x0);
            const Dyadic d = to_dyadic(in_q.scale / (o.q.scale * static_cast<double>(count)));
            for (size_t ch = 0; ch < pc.c; ++ch) {
              int32_t max = -1000;
              int64_t sum = 0;
              for (size_t iy = y0; iy < y1; ++iy)
                for (size_t ix = x0; ix < x1; ++ix) {
                  const int32_t v = value(x[((n * pc.h + iy) * pc.w + ix) * pc.c + ch], is_signed);
                  max = std::max(max, v);
                  sum += v - in_q.zero_point;
                }
              const size_t at = ((n * s.out_h + oy) * s.out_w + ox) * pc.c + ch;
              CHECK(value(maxed[at], is_signed) == max,
                    "qmaxpool2d " << isa_name(isa) << " c=" << pc.c << " at " << at);
              const uint8_t want =
                  static_cast<uint8_t>(clamp(dyadic_rescale(sum, d.multiplier, d.shift) + o.q.zero_point, o.lo, o.hi));
              CHECK(avg[at] == want, "qavgpool2d " << isa_name(isa) << " c=" << pc.c << " at " << at << ": got "
                                                   << int(avg[at]) << " want " << int(want));
            }
          }

      std::vector<uint8_t> global(pc.batch * pc.c);
      qglobalavgpool(x.data(), is_signed, pc.batch, pc.h, pc.w, pc.c, in_q, o, global.data());
      const Dyadic d = to_dyadic(in_q.scale / (o.q.scale * static_cast<double>(pc.h * pc.w)));
      for (size_t n = 0; n < pc.batch; ++n)
        for (size_t ch = 0; ch < pc.c; ++ch) {
          int64_t sum = 0;
          for (size_t i = 0; i < pc.h * pc.w; ++i)
            sum += value(x[(n * pc.h * pc.w + i) * pc.c + ch], is_signed) - in_q.zero_point;
          const uint8_t want =
              static_cast<uint8_t>(clamp(dyadic_rescale(sum, d.multiplier, d.shift) + o.q.zero_point, o.lo, o.hi));
          CHECK(global[n * pc.c + ch] == want, "qglobalavgpool " << isa_name(isa) << " c=" << pc.c);
        }
    }
  });
}
