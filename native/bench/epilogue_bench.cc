// epilogue_bench.cc: times the integer conv's requantizer the way qconv2d calls it (tiles of 96
// output pixels x 16-channel panels, the accumulators in cache, the bytes written at the layer's
// stride) on the output shapes of ResNet-18 at 224x224, batch 1, one thread, on every supported
// ISA: output_s8 alone, output_s8 then the qadd kernel over the layer (the unfused block end), and
// output_s8_add (the fused one). Variants and ISAs alternate call by call; medians.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cpu/dispatch.h"
#include "eltwise/kernels.h"
#include "epilogue/kernels.h"

namespace {

using namespace lowbit;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Times each variant on every ISA: rounds of one call of each (variant, ISA) in turn, until 2 s
// of calls, so that the load of a shared machine falls on all alike; prints the medians.
void bench(const std::string& shape, const std::vector<std::pair<std::string, std::function<void(Isa)>>>& variants) {
  const std::vector<Isa> isas = supported_isas();
  std::vector<std::vector<double>> times(variants.size() * isas.size());
  for (const auto& v : variants)
    for (Isa isa : isas) v.second(isa);  // warm up
  double total = 0;
  for (int round = 0; round < 2000 && (round < 15 || total < 2); ++round)
    for (size_t j = 0; j < variants.size(); ++j)
      for (size_t k = 0; k < isas.size(); ++k) {
        const auto t0 = std::chrono::steady_clock::now();
        variants[j].second(isas[k]);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        times[j * isas.size() + k].push_back(s);
        total += s;
      }
  for (size_t j = 0; j < variants.size(); ++j) {
    std::printf("%-18s %-12s", variants[j].first.c_str(), shape.c_str());
    for (size_t k = 0; k < isas.size(); ++k)
      std::printf("  %s %7.1f us", isa_name(isas[k]), median(times[j * isas.size() + k]) * 1e6);
    std::printf("\n");
  }
}

}  // namespace

int main() {
  std::mt19937_64 g(7);
  constexpr size_t kTile = 96, kPanel = 16;
  struct Layer {
    size_t hw, c;
    bool rows = false;  // one call per output line of hw pixels x c channels
  };
  // ResNet-18's block outputs, then MobileNetV2 depthwise outputs (rows of a whole output line,
  // n = all channels: how qconv2d calls the requantizer on depthwise and short-reduction layers).
  for (const Layer l :
       {Layer{56, 64}, Layer{28, 128}, Layer{14, 256}, Layer{7, 512}, Layer{56, 144, true}, Layer{14, 576, true}}) {
    const size_t pixels = l.hw * l.hw, c = l.c;
    std::vector<int32_t> acc(l.rows ? l.hw * c : kTile * kPanel), mult(c), bias(c);
    std::vector<uint8_t> shift(c), residual(pixels * c), out(pixels * c), sum(pixels * c);
    for (auto& v : acc) v = static_cast<int32_t>(g() % 200001) - 100000;
    for (size_t k = 0; k < c; ++k) {
      mult[k] = static_cast<int32_t>(g() % (1u << 30)) + (1 << 30);
      shift[k] = static_cast<uint8_t>(40 + g() % 4);  // a ResNet's: the 32-bit lanes
      bias[k] = static_cast<int32_t>(g() % 41) - 20;
    }
    for (auto& v : residual) v = static_cast<uint8_t>(g());
    // The conv's output and the residual uint8 (ReLU before), the sum uint8 with the block's ReLU.
    QAddParams q{{0, 0, 0, 1}, {0, 0, 0, 1}, 0, 0, 255};
    qadd_term_for(false, 0, 1 << 30, 31, &q.a);
    qadd_term_for(false, 0, 1 << 30, 30, &q.b);
    const ResidualAddParams r{q.a, q.b, residual.data(), c, q.out_zero, q.lo, q.hi};
    auto layer = [&](Isa isa, bool add) {
      const OutputKernels& k = output_kernels_for(isa);
      if (l.rows) {
        for (size_t p0 = 0; p0 < pixels; p0 += l.hw) {
          const RequantizeParams p{mult.data(), shift.data(), bias.data(), 0, 255};
          int8_t* dst = reinterpret_cast<int8_t*>(out.data() + p0 * c);
          ResidualAddParams rr = r;
          rr.residual += p0 * c;
          if (add)
            k.output_s8_add(l.hw, c, acc.data(), c, p, rr, dst, c);
          else
            k.output_s8(l.hw, c, acc.data(), c, p, dst, c);
        }
        return;
      }
      for (size_t p0 = 0; p0 < pixels; p0 += kTile)
        for (size_t c0 = 0; c0 < c; c0 += kPanel) {
          const size_t m = std::min(kTile, pixels - p0), at = p0 * c + c0;
          const RequantizeParams p{mult.data() + c0, shift.data() + c0, bias.data() + c0, 0, 255};
          int8_t* dst = reinterpret_cast<int8_t*>(out.data() + at);
          if (add) {
            ResidualAddParams rr = r;
            rr.residual += at;
            k.output_s8_add(m, kPanel, acc.data(), kPanel, p, rr, dst, c);
          } else {
            k.output_s8(m, kPanel, acc.data(), kPanel, p, dst, c);
          }
        }
    };
    const std::string shape = std::to_string(l.hw) + "x" + std::to_string(l.hw) + "x" + std::to_string(c);
    bench(shape, {{"output_s8", [&](Isa isa) { layer(isa, false); }},
                  {"output_s8 + qadd",
                   [&](Isa isa) {
                     layer(isa, false);
                     eltwise_kernels_for(isa).qadd(pixels * c, out.data(), residual.data(), q, sum.data());
                   }},
                  {"output_s8_add", [&](Isa isa) { layer(isa, true); }}});
  }
}
