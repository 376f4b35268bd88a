// f32_kernels_test.cc: every supported ISA's f32 element-wise kernels (eltwise_f32/kernels.h)
// against lowbit::ref, bit for bit, on every row length around the vector widths, with NaN, +-0,
// +-infinity and ties mixed in, sentinels past the row, and in place (out = the first operand).
#include <cmath>
#include <cstring>
#include <limits>

#include "common/checked_math.h"
#include "cpu/dispatch.h"
#include "eltwise_f32/kernels.h"
#include "harness.h"

using namespace lowbit;
using lowbit::test::rng;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr uint64_t kSentinel = 0xA5A5A5A5A5A5A5A5ull;

// Mostly ordinary values; some NaN, +-0, +-infinity, and values equal to `tie` (a threshold).
std::vector<float> values(std::mt19937_64& g, size_t n, const float* tie = nullptr) {
  const float special[] = {NAN, -NAN, 0.0f, -0.0f, kInf, -kInf, 1e-40f, -1e-40f};
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    const unsigned pick = g() % 16;
    if (pick == 0)
      v[i] = special[g() % 8];
    else if (pick == 1 && tie)
      v[i] = tie[i];
    else
      v[i] = std::uniform_real_distribution<float>(-10, 10)(g);
  }
  return v;
}

std::vector<float> finite(std::mt19937_64& g, size_t n, float lo, float hi) {
  std::vector<float> v(n);
  for (auto& x : v) x = std::uniform_real_distribution<float>(lo, hi)(g);
  return v;
}

// Bit for bit, except that any two NaNs match: which operand's payload a + b keeps when both are NaN
// is up to the instruction (and the compiler may swap the operands of a scalar add).
bool same(const std::vector<float>& a, const std::vector<float>& b, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0 && !(std::isnan(a[i]) && std::isnan(b[i]))) return false;
  return true;
}

// Row lengths: every one to 70, then a few long ones.
std::vector<size_t> lengths() {
  std::vector<size_t> n;
  for (size_t i = 1; i <= 70; ++i) n.push_back(i);
  for (size_t i : {127, 128, 129, 191, 200}) n.push_back(i);
  return n;
}

}  // namespace

TEST(f32_add_and_clamp_match_reference) {
  auto g = rng(901);
  const float los[] = {-kInf, 0.0f, -0.0f, -2.5f}, his[] = {kInf, 6.0f, 0.0f, 2.5f};
  for (Isa isa : supported_isas())
    for (size_t n : lengths()) {
      const F32Kernels& k = f32_kernels_for(isa);
      const auto a = values(g, n), b = values(g, n);
      const size_t bound = g() % 4;
      std::vector<float> want(n), got(n + 2, 123.f);
      ref::add_f32(n, a.data(), b.data(), los[bound], his[bound], want.data());
      k.add(n, a.data(), b.data(), los[bound], his[bound], got.data());
      CHECK(same(want, got, n), "add " << isa_name(isa) << " n=" << n);
      CHECK(got[n] == 123.f && got[n + 1] == 123.f, "add wrote past the row, n=" << n);
      std::vector<float> in_place = a;
      k.add(n, in_place.data(), b.data(), los[bound], his[bound], in_place.data());
      CHECK(same(want, in_place, n), "add in place " << isa_name(isa) << " n=" << n);

      ref::clamp_f32(n, a.data(), los[bound], his[bound], want.data());
      k.clamp(n, a.data(), los[bound], his[bound], got.data());
      CHECK(same(want, got, n), "clamp " << isa_name(isa) << " n=" << n);
      CHECK(got[n] == 123.f, "clamp wrote past the row, n=" << n);
    }
}

TEST(f32_prelu_matches_reference) {
  auto g = rng(902);
  for (Isa isa : supported_isas())
    for (size_t n : lengths()) {
      const auto slope = finite(g, n, -0.5f, 1.5f), input_bias = finite(g, n, -1, 1), output_bias = finite(g, n, -1, 1);
      auto x = values(g, n, input_bias.data());  // some v = x - input_bias are exactly 0
      std::vector<float> want(n), got(n + 1, 123.f);
      ref::prelu_f32(n, x.data(), slope.data(), input_bias.data(), output_bias.data(), want.data());
      f32_kernels_for(isa).prelu(n, x.data(), slope.data(), input_bias.data(), output_bias.data(), got.data());
      CHECK(same(want, got, n), "prelu " << isa_name(isa) << " n=" << n);
      CHECK(got[n] == 123.f, "prelu wrote past the row, n=" << n);
      const std::vector<float> zeros(n, 0.0f);  // the default biases: -0 + 0 is +0
      ref::prelu_f32(n, x.data(), slope.data(), zeros.data(), zeros.data(), want.data());
      f32_kernels_for(isa).prelu(n, x.data(), slope.data(), zeros.data(), zeros.data(), got.data());
      CHECK(same(want, got, n), "prelu without biases " << isa_name(isa) << " n=" << n);
    }
}

TEST(f32_pool_taps_and_div_match_reference) {
  auto g = rng(903);
  for (Isa isa : supported_isas())
    for (size_t n : lengths())
      for (size_t taps : {1, 2, 4, 9, 49}) {
        const F32Kernels& k = f32_kernels_for(isa);
        // Each tap a row of its own; every other tap ties the first (max's x > m must keep m).
        std::vector<std::vector<float>> rows;
        for (size_t t = 0; t < taps; ++t) rows.push_back(t % 2 == 1 ? rows[0] : values(g, n));
        std::vector<const float*> src;
        for (const auto& row : rows) src.push_back(row.data());
        std::vector<float> want(n), got(n + 1, 123.f);
        ref::max_taps_f32(n, src.data(), taps, want.data());
        k.max_taps(n, src.data(), taps, got.data());
        CHECK(same(want, got, n), "max_taps " << isa_name(isa) << " n=" << n << " taps=" << taps);
        CHECK(got[n] == 123.f, "max_taps wrote past the row, n=" << n);
        for (float d : {1.0f, 3.0f, 9.0f, 49.0f, 16777217.0f}) {
          ref::avg_taps_f32(n, src.data(), taps, d, want.data());
          k.avg_taps(n, src.data(), taps, d, got.data());
          CHECK(same(want, got, n), "avg_taps / " << d << " " << isa_name(isa) << " n=" << n << " taps=" << taps);
          CHECK(got[n] == 123.f, "avg_taps wrote past the row, n=" << n);
        }
        const auto x = values(g, n);
        ref::div_f32(n, x.data(), 7.0f, want.data());
        std::vector<float> div = x;
        k.div(n, div.data(), 7.0f, div.data());
        CHECK(same(want, div, n), "div in place " << isa_name(isa) << " n=" << n);
      }
}

TEST(f32_sign_matches_reference) {
  auto g = rng(904);
  for (Isa isa : supported_isas())
    for (size_t n : lengths()) {
      auto threshold = finite(g, n, -2, 2);
      if (n > 3) threshold[1] = 0.0f, threshold[2] = -kInf, threshold[3] = kInf;
      const auto x = values(g, n, threshold.data());
      const size_t words = words_for_bits(n);
      std::vector<uint64_t> want(words), got(words + 1, kSentinel);
      ref::sign_f32(n, x.data(), threshold.data(), want.data());
      f32_kernels_for(isa).sign(n, x.data(), threshold.data(), got.data());
      CHECK(std::memcmp(want.data(), got.data(), words * 8) == 0, "sign " << isa_name(isa) << " n=" << n);
      CHECK(got[words] == kSentinel, "sign wrote past the row, n=" << n);
      // The rule itself: bit = x < threshold, so NaN and ties give 0 (+1); tail bits zero.
      for (size_t c = 0; c < n; ++c)
        CHECK(((want[c / 64] >> (c % 64)) & 1) == static_cast<uint64_t>(x[c] < threshold[c]), "ref bit " << c);
      if (n % 64) CHECK((want[words - 1] >> (n % 64)) == 0, "tail bits, n=" << n);
    }
}
