// q_gemm_bench.cc: times the integer GEMMs (avx2 q8, q4, q7; avx512 q8, q4 where the CPU has
// AVX-512 VNNI) against the scalar table, single thread: conv-like tiles (64 rows against 4 panels of 16 channels, as
// the conv driver calls them) and a GEMV (1 row against 256 panels, weights streamed from memory).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu/dispatch.h"
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
  std::vector<uint8_t> a, q8, q4, q7;
};

Data make_data(const Shape& s, std::mt19937_64& g) {
  Data d;
  d.kp = q_padded_k(s.k);
  d.a.assign(s.m * d.kp, 0);
  for (size_t i = 0; i < s.m; ++i)
    for (size_t k = 0; k < s.k; ++k) d.a[i * d.kp + k] = static_cast<uint8_t>(g());
  const size_t n = s.panels * kQPanelChannels;
  std::vector<int8_t> w8(n * s.k), w4(n * s.k), w7(n * s.k);
  for (auto& v : w8) v = static_cast<int8_t>(static_cast<int>(g() % 255) - 127);
  for (auto& v : w4) v = static_cast<int8_t>(static_cast<int>(g() % 16) - 8);
  for (auto& v : w7) v = static_cast<int8_t>(static_cast<int>(g() % 129) - 64);
  d.q8.resize(s.panels * q8_panel_bytes(d.kp));
  d.q4.resize(s.panels * q4_panel_bytes(d.kp));
  d.q7.resize(s.panels * q8_panel_bytes(d.kp));
  for (size_t p = 0; p < s.panels; ++p) {
    const size_t first = p * kQPanelChannels * s.k;
    pack_q8_panel(w8.data() + first, kQPanelChannels, s.k, s.k, d.q8.data() + p * q8_panel_bytes(d.kp));
    pack_q4_panel(w4.data() + first, kQPanelChannels, s.k, s.k, d.q4.data() + p * q4_panel_bytes(d.kp));
    pack_q8_panel(w7.data() + first, kQPanelChannels, s.k, s.k, d.q7.data() + p * q8_panel_bytes(d.kp));
  }
  return d;
}

enum class Kind { Q8, Q4, Q7 };

struct Kernel {
  const char* name;
  const IntegerKernels* k;
  Kind kind;
  std::vector<int32_t> c;
  std::vector<double> times;
};

// The activations' XOR mask: 0x80 (uint8 tensors, as the conv driver passes them) unless
// LOWBIT_BENCH_MASK=0 (int8 tensors: the kernels that multiply a + 128 then XOR every byte).
uint8_t g_mask = 0x80;

void run_layer(const Kernel& kn, const Shape& s, const Data& d, int32_t* c) {
  const size_t ldc = s.panels * kQPanelChannels;
  for (size_t p = 0; p < s.panels; ++p) {
    int32_t* out = c + p * kQPanelChannels;
    if (kn.kind == Kind::Q4)
      kn.k->q4_gemm(s.m, d.kp, d.a.data(), d.kp, g_mask, d.q4.data() + p * q4_panel_bytes(d.kp), out, ldc);
    else if (kn.kind == Kind::Q7)
      kn.k->q7_gemm(s.m, d.kp, d.a.data(), d.kp, g_mask, d.q7.data() + p * q8_panel_bytes(d.kp), out, ldc);
    else
      kn.k->q8_gemm(s.m, d.kp, d.a.data(), d.kp, g_mask, d.q8.data() + p * q8_panel_bytes(d.kp), out, ldc);
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
  if (const char* env = std::getenv("LOWBIT_BENCH_MASK")) g_mask = static_cast<uint8_t>(std::strtoul(env, nullptr, 0));
  std::mt19937_64 g(42);
  const std::vector<Isa> isas = supported_isas();
  const bool avx512 = std::find(isas.begin(), isas.end(), Isa::Avx512) != isas.end();
  std::printf(
      "Gop/s (2 ops per MAC), single thread, median of %d round-robin runs; (x) = speed-up over the\n"
      "scalar table (q8 and q7 vs scalar q8, q4 vs scalar q4). Weights: q8 random in [-127, 127],\n"
      "q7 in [-64, 64], q4 in [-8, 7]; activations random bytes, mask 0x%02x.\n",
      kRuns, g_mask);
  std::vector<Kernel> kinds = {{"avx2 q8", &avx2::kIntegerKernels, Kind::Q8, {}, {}},
                               {"avx2 q7", &avx2::kIntegerKernels, Kind::Q7, {}, {}},
                               {"avx2 q4", &avx2::kIntegerKernels, Kind::Q4, {}, {}}};
  if (avx512) {
    kinds.push_back({"avx512 q8", &avx512::kIntegerKernels, Kind::Q8, {}, {}});
    kinds.push_back({"avx512 q4", &avx512::kIntegerKernels, Kind::Q4, {}, {}});
  }
  kinds.push_back({"scalar q8", &scalar::kIntegerKernels, Kind::Q8, {}, {}});
  kinds.push_back({"scalar q4", &scalar::kIntegerKernels, Kind::Q4, {}, {}});
  // LOWBIT_BENCH_ONLY=name: time only that kernel (tuning; no check against scalar).
  if (const char* only = std::getenv("LOWBIT_BENCH_ONLY"))
    kinds.erase(
        std::remove_if(kinds.begin(), kinds.end(), [&](const Kernel& kn) { return kn.name != std::string(only); }),
        kinds.end());
  std::printf("%-5s %3s %5s %6s", "shape", "m", "K", "panels");
  for (const Kernel& kn : kinds) std::printf(" %16s", kn.name);
  std::printf("\n");
  bool ok = true;
  for (const Shape& s : kShapes) {
    const Data d = make_data(s, g);
    const size_t out = s.m * s.panels * kQPanelChannels;
    std::vector<Kernel> kernels = kinds;
    for (Kernel& kn : kernels) kn.c.assign(out, 0);
    const std::vector<double> t = time_layers(kernels, s, d);
    const size_t n = kernels.size();
    if (n == 1) {
      std::printf("%-5s %3zu %5zu %6zu %16.1f\n", s.name, s.m, s.k, s.panels,
                  2e-9 * s.m * s.k * s.panels * kQPanelChannels / t[0]);
      continue;
    }
    const Kernel &s8 = kernels[n - 2], &s4 = kernels[n - 1];
    // Q7 weights differ from Q8's: the scalar Q8 kernel on the Q7 panels is its reference.
    std::vector<int32_t> want7(out);
    for (size_t p = 0; p < s.panels; ++p)
      scalar::q8_gemm(s.m, d.kp, d.a.data(), d.kp, g_mask, d.q7.data() + p * q8_panel_bytes(d.kp),
                      want7.data() + p * kQPanelChannels, s.panels * kQPanelChannels);
    const double gop = 2e-9 * s.m * s.k * s.panels * kQPanelChannels;
    std::printf("%-5s %3zu %5zu %6zu", s.name, s.m, s.k, s.panels);
    for (size_t i = 0; i < n; ++i) {
      const Kernel& kn = kernels[i];
      const std::vector<int32_t>& want = kn.kind == Kind::Q7 ? want7 : kn.kind == Kind::Q4 ? s4.c : s8.c;
      if (kn.c != want) {
        std::printf("\nMISMATCH: %s vs scalar (%s K=%zu)\n", kn.name, s.name, s.k);
        ok = false;
      }
      const double base = kn.kind == Kind::Q4 ? t[n - 1] : t[n - 2];
      if (i + 2 < n)
        std::printf(" %7.1f (%5.1fx)", gop / t[i], base / t[i]);
      else
        std::printf(" %16.1f", gop / t[i]);
    }
    std::printf("\n");
  }
  return ok ? 0 : 1;
}
