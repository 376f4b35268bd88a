// mst_bench.cc: times bconv2d through an MST schedule against the dense bconv2d on the ResNet-18 3x3
// binary conv shapes (batch 1, one thread, active ISA), for weights whose channels are copies of an
// earlier channel with a fraction f of their bits flipped, and prints the cost model's prediction
// next to the measurement (the model's constants are fitted to these numbers).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <vector>

#include "lowbit/mst.h"
#include "lowbit/runtime.h"

using namespace lowbit;

namespace {

struct Shape {
  const char* name;
  size_t c, hw;
};
constexpr Shape kShapes[] = {
    {"conv3x3-c64-56", 64, 56}, {"conv3x3-c128-28", 128, 28}, {"conv3x3-c256-14", 256, 14}, {"conv3x3-c512-7", 512, 7}};

double median_seconds(const std::function<void()>& run) {
  const auto warm = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - warm < std::chrono::milliseconds(100)) run();
  std::vector<double> times;
  for (int r = 0; r < 15; ++r) {
    int reps = 0;
    const auto t0 = std::chrono::steady_clock::now();
    auto t1 = t0;
    do {
      run();
      ++reps;
      t1 = std::chrono::steady_clock::now();
    } while (t1 - t0 < std::chrono::milliseconds(3));
    times.push_back(std::chrono::duration<double>(t1 - t0).count() / reps);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  set_num_threads(argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1);
  std::mt19937_64 g(7);
  std::printf("%-16s %6s %8s %9s %9s %8s %9s\n", "layer", "f", "opratio", "dense ms", "mst ms", "speedup", "predicted");
  for (const Shape& sh : kShapes) {
    const size_t k = 9 * sh.c;
    std::vector<uint64_t> x(sh.hw * sh.hw * b1_words(sh.c));
    for (auto& v : x) v = g();
    std::vector<float> ones(sh.c, 1.f), zeros(sh.c, 0.f), out(sh.hw * sh.hw * sh.c);
    BinaryEpilogue e;
    e.scale = ones.data(), e.bias_f32 = zeros.data(), e.lo = -1e30f, e.hi = 1e30f;
    Conv2dParams p;
    p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
    for (double f : {0.5, 0.02, 0.05, 0.10, 0.20}) {
      std::vector<float> w(sh.c * k);
      for (size_t c = 0; c < sh.c; ++c) {
        float* row = w.data() + c * k;
        if (c == 0 || f >= 0.5) {
          for (size_t i = 0; i < k; ++i) row[i] = g() % 2 ? 1.f : -1.f;
          continue;
        }
        const float* from = w.data() + (g() % c) * k;
        std::copy(from, from + k, row);
        for (size_t n = 0; n < size_t(f * k + 0.5); ++n) row[g() % k] *= -1.f;  // ~f K distinct flips
      }
      auto wp = pack_binary_conv2d_weights_f32(w.data(), sh.c, 3, 3, sh.c, 1);
      auto s = build_mst(*wp, MstOptions{SIZE_MAX, true});
      auto plan = compile_mst(*s, *wp);
      const Conv2dShape shape = bconv2d_shape(1, sh.hw, sh.hw, sh.c, *wp, p);
      const double dense = median_seconds([&] { bconv2d(x.data(), shape, *wp, p, e, out.data()); });
      const double mst =
          median_seconds([&] { bconv2d_mst(x.data(), shape, *wp, *plan, p, e, out.data(), MstPolicy::Always); });
      const MstCost cost = mst_cost(*plan, sh.hw * sh.hw, num_threads(), active_isa());
      std::printf("%-16s %6.2f %8.2f %9.3f %9.3f %7.2fx %8.2fx\n", sh.name, f, s->op_ratio, dense * 1e3, mst * 1e3,
                  dense / mst, cost.dense / cost.mst);
    }
  }
}
