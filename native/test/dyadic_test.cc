// dyadic_test.cc: to_dyadic keeps m in [2^30, 2^31 - 1], e in [0, 62], and the relative error
// within 2^-31, and refuses what has no dyadic form.
#include <cmath>
#include <limits>

#include "harness.h"
#include "lowbit/error.h"
#include "lowbit/quantize.h"

using namespace lowbit;
using lowbit::test::rng;

TEST(to_dyadic_error_bound_and_ranges) {
  auto g = rng(20);
  for (int i = 0; i < 200000; ++i) {
    // log-uniform over the whole accepted range [2^-32, 2^31)
    const double M = std::ldexp(std::uniform_real_distribution<double>(0.5, 1.0)(g), static_cast<int>(g() % 63) - 31);
    const Dyadic d = to_dyadic(M);
    CHECK(d.multiplier >= (1 << 30) && d.shift >= 0 && d.shift <= 62,
          "M=" << M << " m=" << d.multiplier << " e=" << d.shift);
    const long double approx = std::ldexp(static_cast<long double>(d.multiplier), -d.shift);
    CHECK(std::fabs(approx - M) / M <= std::ldexp(1.0L, -31), "M=" << M << " relative error too large");
  }
}

TEST(to_dyadic_edges) {
  CHECK(to_dyadic(1.0).multiplier == (1 << 30) && to_dyadic(1.0).shift == 30, "1.0");
  CHECK(to_dyadic(0.75).multiplier == 3 << 29 && to_dyadic(0.75).shift == 31, "0.75");
  // f * 2^31 rounds up to 2^31: the pair renormalises to (2^30, e - 1), the value of 1.0.
  const Dyadic up = to_dyadic(1.0 - std::ldexp(1.0, -40));
  CHECK(up.multiplier == (1 << 30) && up.shift == 30, "round-up renormalisation: " << up.multiplier << " " << up.shift);
  CHECK(to_dyadic(std::ldexp(1.0, -32)).shift == 62, "smallest accepted");
  CHECK(to_dyadic(std::ldexp(1.0, 31) * 0.99).shift == 0, "largest accepted");
  const double inf = std::numeric_limits<double>::infinity();
  for (double bad : {0.0, -1.0, -0.0, std::nan(""), inf, -inf, std::ldexp(1.0, 31), std::ldexp(1.0, -33)}) {
    bool refused = false;
    try {
      to_dyadic(bad);
    } catch (const Error& e) {
      refused = e.kind() == ErrorKind::Quantization;
    }
    CHECK(refused, "to_dyadic(" << bad << ") must throw a quantization error");
  }
}
