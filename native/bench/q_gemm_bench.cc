// q_gemm_bench.cc: times the avx2 integer GEMMs (q8, q4) against the scalar
// table, single thread: conv-like tiles (64 rows against 4 panels of 16 channels, as the conv
// driver calls them) and a GEMV (1 row against 256 panels, weights streamed from memory).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "integer/kernels.h"

namespace {

using namespace lowbit;

struct Shape {
  const char* name;
  size_t m, k, panels;
};
constexpr Shape kShapes[] = {
    {"conv", 64, 576, 4}, {"conv", 64, 1152, 4}, {"conv", 64, 2304, 4}, {"conv", 64, 4608, 4}, {"gemv", 1, 4096, 256}};
constexpr int kRuns = 15;

struct Data {
  size_t kp;
  std::vector<uint8_t> a, q8, q4;
};

Data make_data(const Shape& s, std::mt19937_64& g) {
  Data d;
  d.kp = q_padded_k(s.k);
  d.a.assign(s.m * d.kp, 0);
  for (size_t i = 0; i < s.m; ++i)
    for (size_t k = 0; k < s.k; ++k) d.a[i * d.kp + k] = static_cast<uint8_t>(g());
  const size_t n = s.panels * kQPanelChannels;
  std::vector<int8_t> w8(n * s.k), w4(n * s.k);
  for (auto& v : w8) v = static_cast<int8_t>(static_cast<int>(g() % 255) - 127);
  for (auto& v : w4) v = static_cast<int8_t>(static_cast<int>(g() % 16) - 8);
  d.q8.resize(s.panels * q8_panel_bytes(d.kp));
  d.q4.resize(s.panels * q4_panel_bytes(d.kp));
  for (size_t p = 0; p < s.panels; ++p) {
    const size_t first = p * kQPanelChannels * s.k;
    pack_q8_panel(w8.data() + first, kQPanelChannels, s.k, s.k, d.q8.data() + p * q8_panel_bytes(d.kp));
    pack_q4_panel(w4.data() + first, kQPanelChannels, s.k, s.k, d.q4.data() + p * q4_panel_bytes(d.kp));
  }
  return d;
}

enum class Kind { Q8, Q4 };

struct Kernel {
  const IntegerKernels* k;
  Kind kind;
  std::vector<int32_t> c;
  std::vector<double> times;
};

void run_layer(const Kernel& kn, const Shape& s, const Data& d, int32_t* c) {
  const size_t ldc = s.panels * kQPanelChannels;
  for (size_t p = 0; p < s.panels; ++p) {
    int32_t* out = c + p * kQPanelChannels;
    if (kn.kind == Kind::Q4)
      kn.k->q4_gemm(s.m, d.kp, d.a.data(), d.kp, 0, d.q4.data() + p * q4_panel_bytes(d.kp), out, ldc);
    else
      kn.k->q8_gemm(s.m, d.kp, d.a.data(), d.kp, 0, d.q8.data() + p * q8_panel_bytes(d.kp), out, ldc);
  }
}

// Seconds per layer (all panels) of each kernel: kRuns samples of at least ~2 ms each, taken
// round-robin so that a burst of other load on the machine hits every kernel alike, each after
// one untimed layer (the previous kernel evicted its panels from L2); medians.
std::vector<double> time_layers(std::vector<Kernel>& kernels, const Shape& s, const Data& d) {
  const auto warm_start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - warm_start < std::chrono::milliseconds(100))
    for (Kernel& kn : kernels) run_layer(kn, s, d, kn.c.data());
  for (int r = 0; r < kRuns; ++r)
    for (Kernel& kn : kernels) {
      run_layer(kn, s, d, kn.c.data());  // untimed: brings this kernel's panels back into cache
      int reps = 0;
      const auto t0 = std::chrono::steady_clock::now();
      auto t1 = t0;
      do {
        run_layer(kn, s, d, kn.c.data());
        ++reps;
        t1 = std::chrono::steady_clock::now();
      } while (t1 - t0 < std::chrono::milliseconds(2));
      kn.times.push_back(std::chrono::duration<double>(t1 - t0).count() / reps);
    }
  std::vector<double> medians;
  for (Kernel& kn : kernels) {
    std::sort(kn.times.begin(), kn.times.end());
    medians.push_back(kn.times[kRuns / 2]);
  }
  return medians;
}

}  // namespace

int main() {
  std::mt19937_64 g(42);
  std::printf(
      "Gop/s (2 ops per MAC), single thread, median of %d round-robin runs; (x) = speed-up over the\n"
      "scalar table (q8 vs scalar q8, q4 vs scalar q4). Weights: q8 random in [-127, 127],\n"
      "q4 in [-8, 7]; activations random int8 (mask 0).\n",
      kRuns);
  std::printf("%-5s %3s %5s %6s  %16s %16s  %8s %8s\n", "shape", "m", "K", "panels", "avx2 q8", "avx2 q4", "scalar8",
              "scalar4");
  bool ok = true;
  for (const Shape& s : kShapes) {
    const Data d = make_data(s, g);
    const size_t out = s.m * s.panels * kQPanelChannels;
    std::vector<Kernel> kernels = {{&avx2::kIntegerKernels, Kind::Q8, std::vector<int32_t>(out), {}},
                                   {&avx2::kIntegerKernels, Kind::Q4, std::vector<int32_t>(out), {}},
                                   {&scalar::kIntegerKernels, Kind::Q8, std::vector<int32_t>(out), {}},
                                   {&scalar::kIntegerKernels, Kind::Q4, std::vector<int32_t>(out), {}}};
    const std::vector<double> t = time_layers(kernels, s, d);
    if (kernels[0].c != kernels[2].c || kernels[1].c != kernels[3].c) {
      std::printf("MISMATCH between avx2 and scalar (%s K=%zu)\n", s.name, s.k);
      ok = false;
    }
    const double gop = 2e-9 * s.m * s.k * s.panels * kQPanelChannels;
    std::printf("%-5s %3zu %5zu %6zu  %7.1f (%5.1fx) %7.1f (%5.1fx)  %8.1f %8.1f\n", s.name, s.m, s.k, s.panels,
                gop / t[0], t[2] / t[0], gop / t[1], t[3] / t[1], gop / t[2], gop / t[3]);
  }
  return ok ? 0 : 1;
}
