// output_kernels_test.cc: every supported ISA's output transforms (epilogue/kernels.h) against
// lowbit::ref, bit for bit, on every row length around the vector widths and at extreme values,
// with sentinels past the row.
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "common/checked_math.h"
#include "cpu/dispatch.h"
#include "eltwise/kernels.h"
#include "eltwise_f32/kernels.h"
#include "epilogue/kernels.h"
#include "harness.h"
#include "lowbit/quantize.h"

using namespace lowbit;
using lowbit::test::rng;

namespace {

constexpr uint64_t kSentinel = 0xA5A5A5A5A5A5A5A5ull;

std::vector<Isa> isas() { return supported_isas(); }

}  // namespace

TEST(output_f32_matches_reference) {
  auto g = rng(4);
  for (Isa isa : isas())
    for (size_t n = 1; n <= 70; ++n) {
      std::vector<int32_t> y(n);
      std::vector<float> scale(n), bias(n);
      for (size_t c = 0; c < n; ++c) {
        y[c] = static_cast<int32_t>(g() % 20001) - 10000;
        scale[c] = std::uniform_real_distribution<float>(-3, 3)(g);
        bias[c] = std::uniform_real_distribution<float>(-100, 100)(g);
      }
      const float inf = std::numeric_limits<float>::infinity();
      const float los[] = {-inf, 0.f, -50.f}, his[] = {inf, 6.f, 50.f};
      const size_t clamp = g() % 3;
      OutputF32Params p{scale.data(), bias.data(), los[clamp], his[clamp]};
      std::vector<float> want(n), got(n + 2, 123.f);
      ref::output_f32(n, y.data(), p, want.data());
      output_kernels_for(isa).output_f32(n, y.data(), p, got.data());
      CHECK(std::memcmp(want.data(), got.data(), n * sizeof(float)) == 0, "output_f32 " << isa_name(isa) << " n=" << n);
      CHECK(got[n] == 123.f && got[n + 1] == 123.f, "output_f32 wrote past the row, n=" << n);
    }
}

// Rows 1-3 with padded strides (gaps untouched), n 1..130. Half the rounds keep every shift in
// [33, 62] and |bias| <= 2^30 (the SIMD kernels' 32-bit lanes, requantize32_ok), half draw any
// shift and int32 biases (the 64-bit lanes); int32 extremes of y, mult and bias in both.
TEST(output_s8_matches_reference_at_extremes) {
  auto g = rng(5);
  const int32_t ys[] = {INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX, INT32_MAX - 1, 1 << 24, -(1 << 24)};
  const int32_t mults[] = {INT32_MAX, -INT32_MAX, 1, -1, 0, 1 << 30, -(1 << 30), 12345};
  const uint8_t shifts[] = {0, 1, 2, 15, 31, 32, 33, 34, 61, 62};
  const int32_t biases32[] = {1 << 30, -(1 << 30), (1 << 30) - 1, 0};
  for (Isa isa : isas())
    for (size_t n = 1; n <= 130; n += (n < 20 ? 1 : (n < 70 ? 7 : 13))) {
      for (int round = 0; round < 40; ++round) {
        const bool narrow = round % 2 == 0;  // every channel within requantize32_ok
        const size_t m = 1 + g() % 3, ldy = n + g() % 3, ldo = n + g() % 5;
        std::vector<int32_t> y(m * ldy), mult(n), bias(n);
        std::vector<uint8_t> shift(n);
        for (auto& v : y) v = g() % 2 ? ys[g() % 9] : static_cast<int32_t>(g() % 4001) - 2000;
        for (size_t c = 0; c < n; ++c) {
          const bool extreme = g() % 2;
          mult[c] = extreme ? mults[g() % 8] : static_cast<int32_t>(g());
          if (mult[c] == INT32_MIN) mult[c] = INT32_MAX;
          if (narrow) {
            shift[c] = extreme ? shifts[6 + g() % 4] : static_cast<uint8_t>(33 + g() % 30);
            bias[c] = g() % 3 == 0 ? biases32[g() % 4] : static_cast<int32_t>(g() % 301) - 150;
          } else {
            shift[c] = extreme ? shifts[g() % 10] : static_cast<uint8_t>(g() % 63);
            bias[c] = g() % 3 == 0 ? (g() % 2 ? INT32_MAX : INT32_MIN) : static_cast<int32_t>(g() % 301) - 150;
          }
        }
        // Signed ranges (s8, s4) and unsigned ones (u8, u4), whose bytes read as uint8.
        const bool is_unsigned = g() % 2;
        const int32_t lo = is_unsigned ? static_cast<int32_t>(g() % 2) * 3 : -128 + static_cast<int32_t>(g() % 3) * 64;
        const int32_t hi = is_unsigned ? (g() % 2 ? 255 : 15) : 127 - static_cast<int32_t>(g() % 3) * 32;
        RequantizeParams p{mult.data(), shift.data(), bias.data(), lo, hi};
        CHECK(!narrow || requantize32_ok(0, n, p), "narrow round outside requantize32_ok");
        std::vector<int8_t> want(m * ldo + 3, 99), got(m * ldo + 3, 99);
        ref::output_s8(m, n, y.data(), ldy, p, want.data(), ldo);
        output_kernels_for(isa).output_s8(m, n, y.data(), ldy, p, got.data(), ldo);
        for (size_t i = 0; i < m; ++i)
          for (size_t c = 0; c < n; ++c) {
            const size_t k = i * ldo + c;
            CHECK(got[k] == want[k], "output_s8 " << isa_name(isa) << " n=" << n << " row=" << i << " c=" << c
                                                  << " y=" << y[i * ldy + c] << " mult=" << mult[c]
                                                  << " shift=" << int(shift[c]) << " bias=" << bias[c] << " [" << lo
                                                  << "," << hi << "]: got " << int(got[k]) << " want " << int(want[k]));
          }
        for (size_t k = 0; k < got.size(); ++k)
          if (k >= (m - 1) * ldo + n || k % ldo >= n) CHECK(got[k] == 99, "output_s8 wrote a gap, n=" << n);
      }
    }
}

// The 32-bit lanes at every shift they take, on the int32 extremes of y and mult: all 900 pairs
// of 30 values each, 8 channels (the vectors) plus a tail channel.
TEST(output_s8_32bit_lanes_every_shift) {
  const int32_t vals[] = {INT32_MIN,
                          INT32_MIN + 1,
                          INT32_MIN + 2,
                          -(1 << 30) - 1,
                          -(1 << 30),
                          -65537,
                          -65536,
                          -32769,
                          -2,
                          -1,
                          0,
                          1,
                          2,
                          32767,
                          32768,
                          65535,
                          65536,
                          (1 << 30) - 1,
                          1 << 30,
                          (1 << 30) + 1,
                          INT32_MAX - 2,
                          INT32_MAX - 1,
                          INT32_MAX,
                          3,
                          -3,
                          12345,
                          -12345,
                          0x55555555,
                          -0x55555555,
                          0x2AAAAAAA};
  constexpr size_t n = 9;
  for (Isa isa : isas())
    for (int e = 33; e <= 62; ++e)
      for (int32_t yv : vals) {
        std::vector<int32_t> y(n, yv), mult(n), bias(n);
        std::vector<uint8_t> shift(n, static_cast<uint8_t>(e));
        for (size_t k = 0; k < 30; k += n) {
          for (size_t c = 0; c < n; ++c) {
            mult[c] = vals[(k + c) % 30] == INT32_MIN ? -INT32_MAX : vals[(k + c) % 30];
            bias[c] = static_cast<int32_t>(c % 3) - 1;
          }
          // The widest clamps that still write a byte, signed and unsigned.
          for (int32_t lo : {-128, 0}) {
            const RequantizeParams p{mult.data(), shift.data(), bias.data(), lo, lo < 0 ? 127 : 255};
            int8_t want[n], got[n];
            ref::output_s8(1, n, y.data(), n, p, want, n);
            output_kernels_for(isa).output_s8(1, n, y.data(), n, p, got, n);
            CHECK(std::memcmp(want, got, n) == 0, "output_s8 32-bit " << isa_name(isa) << " e=" << e << " y=" << yv);
          }
        }
      }
}

TEST(dyadic_rescale_rounds_half_up) {
  // 3 * 1 / 2 = 1.5 -> 2; -3 / 2 = -1.5 -> -1 (half up, toward +inf); 5 / 4 = 1.25 -> 1.
  CHECK(requantize_value(3, 1, 1, 0, -128, 127) == 2, "1.5");
  CHECK(requantize_value(-3, 1, 1, 0, -128, 127) == -1, "-1.5");
  CHECK(requantize_value(5, 1, 2, 0, -128, 127) == 1, "1.25");
  CHECK(requantize_value(INT32_MIN, INT32_MAX, 0, 0, -128, 127) == -128, "saturates low");
  CHECK(requantize_value(7, -2, 0, 100, -128, 127) == 86, "negative multiplier");
}

TEST(output_b1_matches_reference) {
  auto g = rng(6);
  for (Isa isa : isas())
    for (size_t n : {1, 7, 8, 9, 31, 63, 64, 65, 100, 128, 129, 200, 512}) {
      std::vector<int32_t> y(n), threshold(n);
      std::vector<uint8_t> flip(n);
      for (size_t c = 0; c < n; ++c) {
        y[c] = static_cast<int32_t>(g() % 201) - 100;
        threshold[c] = g() % 5 == 0 ? (g() % 2 ? INT32_MIN : INT32_MAX) : y[c] + static_cast<int32_t>(g() % 3) - 1;
        flip[c] = g() % 2;
      }
      OutputB1Params p{threshold.data(), flip.data()};
      const size_t words = words_for_bits(n);
      std::vector<uint64_t> want(words), got(words + 1, kSentinel);
      ref::output_b1(n, y.data(), p, want.data());
      output_kernels_for(isa).output_b1(n, y.data(), p, got.data());
      for (size_t w = 0; w < words; ++w)
        CHECK(got[w] == want[w], "output_b1 " << isa_name(isa) << " n=" << n << " word " << w << std::hex << ": got "
                                              << got[w] << " want " << want[w]);
      CHECK(got[words] == kSentinel, "output_b1 wrote past the row");
    }
}

TEST(output_f32_fused_matches_reference_and_the_separate_operators) {
  // Every combination of residual, RPReLU and sign, against ref bit for bit, on 1 to 3 rows with
  // padded strides (the gaps must stay untouched), and ref against the unfused chain (output_f32
  // without clamp, then add, prelu, clamp, sign of eltwise_f32/kernels.h).
  auto g = rng(906);
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<size_t> lengths;
  for (size_t n = 1; n <= 70; ++n) lengths.push_back(n);
  for (size_t n : {127, 128, 130, 200}) lengths.push_back(n);
  for (Isa isa : isas())
    for (size_t n : lengths)
      for (int options = 0; options < 8; ++options) {
        const bool residual = options & 1, prelu = options & 2, sign = options & 4;
        const size_t m = 1 + g() % 3, words = words_for_bits(n);
        const size_t ldy = n + g() % 3, ldo = n + g() % 3, ldr = n + g() % 3, ldbits = words + g() % 2;
        auto real = [&](size_t count, float lo, float hi) {
          std::vector<float> v(count);
          for (auto& x : v) x = std::uniform_real_distribution<float>(lo, hi)(g);
          return v;
        };
        std::vector<int32_t> y(m * ldy);
        for (auto& v : y) v = static_cast<int32_t>(g() % 401) - 200;
        const auto scale = real(n, -0.05f, 0.05f), bias = real(n, -2, 2), slope = real(n, -0.5f, 1),
                   ib = real(n, -1, 1), ob = real(n, -1, 1);
        auto res = real(m * ldr, -3, 3), thr = real(n, -1, 1);
        for (size_t c = 0; c < m * ldr; c += 7) res[c] = c % 2 ? NAN : -0.0f;  // NaN and -0 through every step
        if (n > 2) thr[2] = -inf;
        const float lo = g() % 2 ? -inf : -1.5f, hi = g() % 2 ? inf : 1.5f;
        const OutputF32FusedParams p{scale.data(),
                                     bias.data(),
                                     residual ? res.data() : nullptr,
                                     prelu ? slope.data() : nullptr,
                                     prelu ? ib.data() : nullptr,
                                     prelu ? ob.data() : nullptr,
                                     lo,
                                     hi,
                                     sign ? thr.data() : nullptr,
                                     ldr};
        std::vector<float> want(m * ldo, 123.f), got(m * ldo + 1, 123.f);
        std::vector<uint64_t> want_bits(m * ldbits, kSentinel), got_bits(m * ldbits + 1, kSentinel);
        ref::output_f32_fused(m, n, y.data(), ldy, p, want.data(), ldo, want_bits.data(), ldbits);
        output_kernels_for(isa).output_f32_fused(m, n, y.data(), ldy, p, got.data(), ldo,
                                                 sign ? got_bits.data() : nullptr, ldbits);
        const std::string what = std::string(isa_name(isa)) + " m=" + std::to_string(m) + " n=" + std::to_string(n) +
                                 " options=" + std::to_string(options);
        CHECK(std::memcmp(want.data(), got.data(), m * ldo * 4) == 0, "output_f32_fused " << what);
        CHECK(got[m * ldo] == 123.f, "wrote past the rows, " << what);
        CHECK(std::memcmp(want_bits.data(), got_bits.data(), m * ldbits * 8) == 0, "output_f32_fused bits " << what);
        CHECK(got_bits[m * ldbits] == kSentinel, "bits past the rows, " << what);
        if (isa != Isa::Scalar) continue;
        // The separate operators, one after another, row by row.
        for (size_t i = 0; i < m; ++i) {
          std::vector<float> chain(n);
          ref::output_f32(n, y.data() + i * ldy, OutputF32Params{scale.data(), bias.data(), -inf, inf}, chain.data());
          if (residual) ref::add_f32(n, chain.data(), res.data() + i * ldr, -inf, inf, chain.data());
          if (prelu) ref::prelu_f32(n, chain.data(), slope.data(), ib.data(), ob.data(), chain.data());
          ref::clamp_f32(n, chain.data(), lo, hi, chain.data());
          CHECK(std::memcmp(want.data() + i * ldo, chain.data(), n * 4) == 0, "fused != the chain, " << what);
          if (sign) {
            std::vector<uint64_t> chain_bits(words);
            ref::sign_f32(n, chain.data(), thr.data(), chain_bits.data());
            CHECK(std::memcmp(chain_bits.data(), want_bits.data() + i * ldbits, words * 8) == 0,
                  "fused bits != sign of the chain, " << what);
          }
        }
      }
}

// output_s8_add on every ISA against ref, bit for bit, and ref against the chain it replaces
// (ref::output_s8, then the eltwise ref::qadd reading those bytes): rows of 1 to 3 with padded
// strides (the gaps untouched), n 1..70 and a few long rows (1030: the scalar kernel's tables),
// int8 and uint8 on every side, clamps like a fused ReLU, dyadic ratios from 2^-31 (a zero term)
// to 2^3, both lane widths of the requantizer.
TEST(output_s8_add_matches_reference_and_the_two_operators) {
  auto g = rng(907);
  std::vector<size_t> lengths;
  for (size_t n = 1; n <= 70; ++n) lengths.push_back(n);
  for (size_t n : {127, 128, 130, 200, 1030}) lengths.push_back(n);  // 1030: scalar's tables
  auto range = [](bool is_signed) { return std::make_pair(is_signed ? -128 : 0, is_signed ? 127 : 255); };
  auto pick = [&](int32_t lo, int32_t hi) {
    return lo + static_cast<int32_t>(g() % static_cast<uint64_t>(hi - lo + 1));
  };
  // A term of qadd's 32-bit form for an input of this type: a ratio 2^u, u in [-31, 3].
  auto term = [&](bool is_signed, int32_t zero, QAddTerm* t) {
    for (;;) {
      const double ratio =
          std::ldexp(0.5 + std::uniform_real_distribution<double>(0, 1)(g), -static_cast<int>(g() % 35) + 3);
      const Dyadic d = to_dyadic(ratio);
      if (qadd_term_for(is_signed, zero, d.multiplier, d.shift, t)) return;
    }
  };
  for (Isa isa : isas())
    for (size_t n : lengths)
      for (int round = 0; round < 6; ++round) {
        const size_t m = 1 + g() % 3, ldy = n + g() % 3, ldo = n + g() % 3, ldr = n + g() % 3;
        const bool narrow = round % 2 == 0;  // requantize32_ok: the 32-bit lanes
        std::vector<int32_t> y(m * ldy), mult(n), bias(n);
        std::vector<uint8_t> shift(n), res(m * ldr);
        for (auto& v : y) v = static_cast<int32_t>(g() % 200001) - 100000;
        for (auto& v : res) v = static_cast<uint8_t>(g());
        for (size_t c = 0; c < n; ++c) {
          mult[c] = static_cast<int32_t>(g() % (1u << 30)) + (1 << 30);
          shift[c] = static_cast<uint8_t>(narrow ? 40 + g() % 10 : 10 + g() % 12);
          bias[c] = static_cast<int32_t>(g() % 41) - 20;
        }
        // The conv's output: its type, zero point and clamp (half the time a fused ReLU: lo = zero).
        const bool self_signed = g() % 2, res_signed = g() % 2, out_signed = g() % 2;
        const auto [smin, smax] = range(self_signed);
        const int32_t self_zero = pick(smin, smax), res_zero = pick(range(res_signed).first, range(res_signed).second);
        const int32_t lo = g() % 2 ? self_zero : smin, hi = g() % 4 ? smax : pick(lo, smax);
        const RequantizeParams p{mult.data(), shift.data(), bias.data(), lo, hi};
        CHECK(!narrow || requantize32_ok(0, n, p), "narrow round outside requantize32_ok");
        // The add: qadd's terms of the conv's bytes (through its type's mask) and the residual's.
        const auto [omin, omax] = range(out_signed);
        const int32_t out_zero = pick(omin, omax);
        QAddParams q{{}, {}, out_zero, g() % 2 ? out_zero : omin, omax};
        term(self_signed, self_zero, &q.a);
        term(res_signed, res_zero, &q.b);
        ResidualAddParams r{q.a, q.b, res.data(), ldr, q.out_zero, q.lo, q.hi};
        r.self.zero = self_zero, r.self.mask = 0;  // the value's own reading
        std::vector<int8_t> want(m * ldo + 3, 99), got(m * ldo + 3, 99);
        ref::output_s8_add(m, n, y.data(), ldy, p, r, want.data(), ldo);
        output_kernels_for(isa).output_s8_add(m, n, y.data(), ldy, p, r, got.data(), ldo);
        const std::string what = std::string(isa_name(isa)) + " m=" + std::to_string(m) + " n=" + std::to_string(n) +
                                 (narrow ? " 32-bit" : " 64-bit");
        CHECK(std::memcmp(want.data(), got.data(), want.size()) == 0, "output_s8_add " << what);
        for (size_t k = 0; k < got.size(); ++k)
          if (k >= (m - 1) * ldo + n || k % ldo >= n) CHECK(got[k] == 99, "output_s8_add wrote a gap, " << what);
        if (isa != Isa::Scalar) continue;
        std::vector<int8_t> conv(n);
        std::vector<uint8_t> chain(n);
        for (size_t i = 0; i < m; ++i) {
          ref::output_s8(1, n, y.data() + i * ldy, n, p, conv.data(), n);
          ref::qadd(n, reinterpret_cast<const uint8_t*>(conv.data()), res.data() + i * ldr, q, chain.data());
          CHECK(std::memcmp(chain.data(), want.data() + i * ldo, n) == 0, "fused != the chain, " << what);
        }
      }
}
