// b1_gemm_bench.cc: times avx2 vs scalar b1_gemm on the ResNet-18 3x3 binary conv shapes, as the conv
// driver calls it (64-pixel tiles of A against all output channels of B).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "binary/kernels.h"

namespace {

struct Shape {
  size_t pixels, n, kw;  // output pixels, output channels, words per row (3x3xC / 64)
};
constexpr Shape kShapes[] = {{56 * 56, 64, 9}, {28 * 28, 128, 18}, {14 * 14, 256, 36}, {7 * 7, 512, 72}};
constexpr size_t kTile = 64;
constexpr int kRuns = 21;

struct Timing {
  double median, best;  // seconds per layer
};

Timing time_layer(lowbit::B1GemmFn gemm, const Shape& s, const std::vector<uint64_t>& a, const std::vector<uint64_t>& b,
                  std::vector<int32_t>& c) {
  const int32_t kbits = static_cast<int32_t>(s.kw * 64);
  auto layer = [&] {
    for (size_t p = 0; p < s.pixels; p += kTile)
      gemm(std::min(kTile, s.pixels - p), s.n, s.kw, a.data() + p * s.kw, s.kw, b.data(), s.kw, kbits,
           c.data() + p * s.n, s.n);
  };
  // Warm up caches and the core clock (the first shape read ~30% low with a single warm-up call).
  const auto warm_start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - warm_start < std::chrono::milliseconds(100)) layer();
  std::vector<double> times;
  for (int r = 0; r < kRuns; ++r) {
    // Repeat short layers so each timed sample is at least ~2 ms.
    int reps = 0;
    const auto t0 = std::chrono::steady_clock::now();
    auto t1 = t0;
    do {
      layer();
      ++reps;
      t1 = std::chrono::steady_clock::now();
    } while (t1 - t0 < std::chrono::milliseconds(2));
    times.push_back(std::chrono::duration<double>(t1 - t0).count() / reps);
  }
  std::sort(times.begin(), times.end());
  return {times[kRuns / 2], times[0]};
}

}  // namespace

int main() {
  std::mt19937_64 g(42);
  std::printf("Gop/s (2 ops per bit-MAC), median and best of %d runs; ratio of medians\n", kRuns);
  std::printf("%6s %4s %3s  %17s  %17s  %7s\n", "pixels", "n", "kw", "avx2 (best)", "scalar (best)", "ratio");
  for (const Shape& s : kShapes) {
    std::vector<uint64_t> a(s.pixels * s.kw), b(s.n * s.kw);
    for (auto& w : a) w = g();
    for (auto& w : b) w = g();
    std::vector<int32_t> c_avx2(s.pixels * s.n), c_scalar(s.pixels * s.n);
    const Timing avx2 = time_layer(lowbit::avx2::b1_gemm, s, a, b, c_avx2);
    const Timing scalar = time_layer(lowbit::scalar::b1_gemm, s, a, b, c_scalar);
    if (c_avx2 != c_scalar) {
      std::printf("MISMATCH between avx2 and scalar\n");
      return 1;
    }
    const double gops = 2e-9 * s.pixels * s.n * s.kw * 64;  // 2 ops per bit-MAC
    std::printf("%6zu %4zu %3zu  %7.1f (%7.1f)  %7.1f (%7.1f)  %6.2fx\n", s.pixels, s.n, s.kw, gops / avx2.median,
                gops / avx2.best, gops / scalar.median, gops / scalar.best, scalar.median / avx2.median);
  }
  return 0;
}
