// block_bench.cc: a Bi-Real / ReActNet block run as a model, with the fused bconv2d epilogue (the
// residual add, RPReLU, clamp and the next layer's sign in the binary conv's output pass) against the
// same block as separate operators (bconv2d f32 hwc -> add -> prelu -> clamp -> sign). Both read an
// f32 hwc input and binarize it first. Batch 1 unless given; threads as given (default 1). With one
// thread the runs are timed in the thread's CPU time, which a busy shared machine disturbs less.
//   block_bench [threads] [batch]
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <vector>

#include "lowbit/binary.h"
#include "lowbit/model.h"
#include "lowbit/runtime.h"
#include "model_writer.h"

using namespace lowbit;
using lowbit::test::GraphWriter;

namespace {

struct Shape {
  const char* name;
  size_t c, hw;
};
constexpr Shape kShapes[] = {
    {"c32-32 (CIFAR)", 32, 32}, {"c64-56", 64, 56}, {"c128-28", 128, 28}, {"c256-14", 256, 14}, {"c512-7", 512, 7}};

bool g_cpu_time = true;  // one thread: the calling thread runs every node

double now() {
  if (!g_cpu_time) return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double median_seconds(const std::function<void()>& run) {
  const double warm = now();
  while (now() - warm < 0.1) run();
  std::vector<double> times;
  for (int r = 0; r < 15; ++r) {
    int reps = 0;
    const double t0 = now();
    double t1 = t0;
    do {
      run();
      ++reps;
      t1 = now();
    } while (t1 - t0 < 0.003);
    times.push_back((t1 - t0) / reps);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

std::shared_ptr<const Model> block(const Shape& s, bool fused) {
  std::mt19937_64 g(11);
  std::vector<float> signs(9 * s.c * s.c), per_channel(s.c);
  for (auto& v : signs) v = g() % 2 ? 1.f : -1.f;
  for (auto& v : per_channel) v = std::uniform_real_distribution<float>(-0.1f, 0.1f)(g);
  const auto w = pack_binary_conv2d_weights_f32(signs.data(), s.c, 3, 3, s.c, 1);
  GraphWriter m;
  const std::vector<size_t> shape{s.hw, s.hw, s.c};
  const auto x = m.tensor_hwc("x", shape), xb = m.tensor("xb", "b1", shape), y = m.tensor_hwc("y", shape);
  const auto bits = m.tensor("bits", "b1", shape);
  m.input("x", x), m.output("y", y);
  m.node("sign_in", "sign", {x}, xb);
  const std::string c = m.data(per_channel);
  const std::string attrs =
      "\"kernel\": [3, 3], \"stride\": [1, 1], \"dilation\": [1, 1], \"pads\": [1, 1, 1, 1], "
      "\"groups\": 1, \"pad_value\": \"zero\", \"weights\": " +
      m.data(w->bits) + ", \"scale\": " + c + ", \"bias\": " + c;
  if (fused) {
    m.node("conv", "bconv2d", {xb, x}, std::vector<uint32_t>{y, bits},
           attrs + ", \"prelu_slope\": " + c + ", \"prelu_input_bias\": " + c + ", \"prelu_output_bias\": " + c +
               ", \"clamp\": [-1.5, 1.5], \"sign_threshold\": " + c);
  } else {
    const auto y0 = m.tensor_hwc("y0", shape), y1 = m.tensor_hwc("y1", shape), y2 = m.tensor_hwc("y2", shape);
    m.node("conv", "bconv2d", {xb}, y0, attrs);
    m.node("residual", "add", {y0, x}, y1);
    m.node("rprelu", "prelu", {y1}, y2, "\"slope\": " + c + ", \"input_bias\": " + c + ", \"output_bias\": " + c);
    m.node("clamp", "clamp", {y2}, y, "\"clamp\": [-1.5, 1.5]");
    m.node("sign", "sign", {y}, bits, "\"threshold\": " + c);
  }
  const std::vector<uint8_t> f = m.file();
  return load_model(f.data(), f.size());
}

}  // namespace

int main(int argc, char** argv) {
  const size_t threads = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1;
  set_num_threads(threads);
  g_cpu_time = threads == 1;
  const size_t batch = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1;
  std::printf("%-16s %10s %10s %8s\n", "block", "separate", "fused", "speedup");
  for (const Shape& s : kShapes) {
    const auto fused = block(s, true), separate = block(s, false);
    std::vector<float> x(batch * s.hw * s.hw * s.c), y(x.size());
    std::mt19937_64 g(3);
    for (auto& v : x) v = std::uniform_real_distribution<float>(-1, 1)(g);
    const float* in[] = {x.data()};
    float* out[] = {y.data()};
    // Alternating rounds, each a median of short timings; the best round of each side, which on a
    // shared machine is the least disturbed one.
    double a = 1e9, b = 1e9;
    for (int round = 0; round < 7; ++round) {
      a = std::min(a, median_seconds([&] { separate->run(batch, in, out); }));
      b = std::min(b, median_seconds([&] { fused->run(batch, in, out); }));
    }
    std::printf("%-16s %8.3fms %8.3fms %7.2fx\n", s.name, a * 1e3, b * 1e3, a / b);
  }
}
