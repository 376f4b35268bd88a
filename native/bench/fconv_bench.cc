// fconv_bench.cc: times fconv2d (float output) and fconv2d_sign (the fused sign, bits output) on
// the float layers of the shipped Fashion-MNIST CNN (batch 64, 28x28x1 -> 32, 3x3 pad 1) and of
// binary ImageNet / CIFAR networks (the 7x7 stride-2 stem, the CIFAR stem), the best ISA. Prints the
// median wall and calling-thread CPU time per call and Gop/s (2 x MACs / wall time).
// Usage: fconv_bench [name filter] [threads, default 1].
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common/checked_math.h"
#include "lowbit/fconv.h"
#include "lowbit/runtime.h"

namespace {

using namespace lowbit;

// This thread's CPU time: a shared machine's other work stretches wall time, not the time this
// thread runs (this VM has no cycle counter).
double thread_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// Median wall and thread-CPU seconds per call.
struct Timing {
  double wall, cpu;
};

Timing median_call(const std::function<void()>& f) {
  for (int i = 0; i < 3; ++i) f();
  std::vector<double> wall, cpu;
  double total = 0;
  for (int round = 0; round < 5000 && (round < 20 || total < 1.0); ++round) {
    const double c0 = thread_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    f();
    wall.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    cpu.push_back(thread_seconds() - c0);
    total += wall.back();
  }
  std::sort(wall.begin(), wall.end());
  std::sort(cpu.begin(), cpu.end());
  return {wall[wall.size() / 2], cpu[cpu.size() / 2]};
}

struct Layer {
  const char* name;
  size_t n, h, w, c, oc, k, stride, pad;
};

}  // namespace

int main(int argc, char** argv) {
  const std::string only = argc > 1 ? argv[1] : "";  // a name filter
  set_num_threads(argc > 2 ? std::stoul(argv[2]) : 1);
  std::mt19937_64 g(1);
  std::uniform_real_distribution<float> u(-1, 1);
  const Layer layers[] = {
      {"fashion conv1 b64 28x28x1->32 3x3", 64, 28, 28, 1, 32, 3, 1, 1},
      {"stem 224x224x3->64 7x7 s2", 1, 224, 224, 3, 64, 7, 2, 3},
      {"cifar stem 32x32x3->16 3x3", 1, 32, 32, 3, 16, 3, 1, 1},
      {"cifar stem 32x32x3->128 3x3", 1, 32, 32, 3, 128, 3, 1, 1},
  };
  std::printf("isa %s, %zu thread(s)\n", isa_name(active_isa()), num_threads());
  for (const Layer& l : layers) {
    if (std::string(l.name).find(only) == std::string::npos) continue;
    std::vector<float> x(l.n * l.h * l.w * l.c), wt(l.oc * l.k * l.k * l.c), bias(l.oc), threshold(l.oc);
    for (auto* v : {&x, &wt, &bias, &threshold})
      for (float& f : *v) f = u(g);
    const auto packed = pack_fconv2d_weights(wt.data(), l.oc, l.k, l.k, l.c, 1);
    const Conv2dParams p{l.stride, l.stride, 1, 1, l.pad, l.pad, l.pad, l.pad};
    const Conv2dShape s = fconv2d_shape(l.n, l.h, l.w, l.c, *packed, p);
    const size_t pixels = l.n * s.out_h * s.out_w;
    std::vector<float> y(pixels * l.oc);
    std::vector<uint64_t> bits(pixels * words_for_bits(l.oc));
    const double ops = 2.0 * pixels * l.oc * l.k * l.k * l.c;
    const FEpilogue e{bias.data()};
    const Timing t_float = median_call([&] { fconv2d(x.data(), s, *packed, p, e, y.data()); });
    const Timing t_sign = median_call([&] { fconv2d_sign(x.data(), s, *packed, p, e, threshold.data(), bits.data()); });
    std::printf("%-36s float %7.3f ms (cpu %7.3f) %6.1f Gop/s   sign %7.3f ms (cpu %7.3f) %6.1f Gop/s\n", l.name,
                t_float.wall * 1e3, t_float.cpu * 1e3, ops / t_float.wall * 1e-9, t_sign.wall * 1e3, t_sign.cpu * 1e3,
                ops / t_sign.wall * 1e-9);
  }
}
