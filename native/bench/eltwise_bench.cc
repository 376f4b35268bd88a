// eltwise_bench.cc: times the operators built on the element-wise kernels (qadd, sign, the boundary
// conversions, the pools, clamp, unpack) on every supported ISA in one process, one thread, on the
// shapes of a Bi-Real Net-18 at batch 1 (224x224 input, 56x56x64 ... 7x7x512 stages). The ISAs
// alternate call by call; each line prints the median per ISA and the ratio to scalar.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common/checked_math.h"
#include "graph/elementwise.h"
#include "lowbit/qops.h"
#include "lowbit/quantize.h"
#include "lowbit/runtime.h"

namespace {

using namespace lowbit;

std::vector<uint8_t> random_bytes(std::mt19937_64& g, size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& x : v) x = static_cast<uint8_t>(g());
  return v;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Times f on every ISA: rounds of one call per ISA, in turn, until min_seconds of calls.
void bench(const std::string& name, const std::function<void()>& f) {
  const std::vector<Isa> isas = supported_isas();
  std::vector<std::vector<double>> times(isas.size());
  for (Isa isa : isas) {  // warm up
    set_isa(isa_name(isa));
    for (int i = 0; i < 3; ++i) f();
  }
  double total = 0;
  for (int round = 0; round < 2000 && (round < 15 || total < 1.5); ++round)
    for (size_t k = 0; k < isas.size(); ++k) {
      set_isa(isa_name(isas[k]));
      const auto t0 = std::chrono::steady_clock::now();
      f();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      times[k].push_back(s);
      total += s;
    }
  const double scalar = median(times[0]);
  std::printf("%-34s", name.c_str());
  for (size_t k = 0; k < isas.size(); ++k) {
    const double m = median(times[k]);
    std::printf("  %s %8.1f us", isa_name(isas[k]), m * 1e6);
    if (k > 0) std::printf(" (x%.2f)", scalar / m);
  }
  std::printf("\n");
  set_isa(isa_name(isas.back()));
}

}  // namespace

int main() {
  set_num_threads(1);
  std::mt19937_64 g(7);
  std::printf("one thread, median per call; (xN) = scalar median / this ISA's median\n");

  for (size_t hw : {56 * 56, 7 * 7})
    for (size_t c : {size_t{64}, size_t{512}}) {
      if ((hw == 56 * 56) != (c == 64)) continue;
      const size_t n = hw * c;
      const auto a = random_bytes(g, n), b = random_bytes(g, n);
      std::vector<uint8_t> out(n);
      QuantOutput o;
      o.q = {0.05, 3};
      const std::string shape = std::to_string(hw) + "x" + std::to_string(c);
      bench("qadd s8+s8->s8 " + shape, [&] {
        qadd(a.data(), true, {0.04, -5}, b.data(), true, {0.07, 2}, n, o, out.data());
      });
      std::vector<uint64_t> bits(hw * words_for_bits(c));
      bench("sign_8bit s8 " + shape, [&] { sign_8bit(a.data(), true, hw, c, 3, bits.data()); });
      std::vector<int8_t> unpacked(n);
      bench("unpack_b1 " + shape, [&] { unpack_b1(bits.data(), hw, c, unpacked.data()); });
      std::vector<int32_t> mult_pos(c), mult_neg(c);
      std::vector<uint8_t> shift_pos(c), shift_neg(c);
      for (size_t ch = 0; ch < c; ++ch) {
        const Dyadic pos = to_dyadic(0.5 + 0.01 * static_cast<double>(ch)),
                     neg = to_dyadic(0.1 + 0.001 * static_cast<double>(ch));
        mult_pos[ch] = pos.multiplier, shift_pos[ch] = static_cast<uint8_t>(pos.shift);
        mult_neg[ch] = neg.multiplier, shift_neg[ch] = static_cast<uint8_t>(neg.shift);
      }
      const PreluParams prelu{
          mult_pos.data(), shift_pos.data(), mult_neg.data(), shift_neg.data(), true, 0, 0, -128, 127};
      bench("prelu_8bit s8 " + shape, [&] { prelu_8bit(a.data(), hw, c, prelu, out.data()); });
      bench("qclamp s8 " + shape, [&] { qclamp(a.data(), true, n, 0, 100, out.data()); });
    }

  {
    // CIFAR ResNet-20's first stage: 32x32x16.
    const size_t hw = 32 * 32, c = 16;
    const auto a = random_bytes(g, hw * c);
    std::vector<uint64_t> bits(hw);
    bench("sign_8bit s8 1024x16", [&] { sign_8bit(a.data(), true, hw, c, 3, bits.data()); });
    Pool2dParams p;
    p.kernel_h = p.kernel_w = p.stride_h = p.stride_w = 2;
    const Conv2dShape s = qpool2d_shape(1, 32, 32, c, p);
    std::vector<uint8_t> out(s.out_h * s.out_w * c);
    QuantOutput o;
    o.q = {0.05, 0};
    bench("qavgpool2d 2x2/2 32x32x16", [&] { qavgpool2d(a.data(), true, s, p, true, {0.05, 0}, o, out.data()); });
    bench("qmaxpool2d 2x2/2 32x32x16", [&] { qmaxpool2d(a.data(), true, s, p, out.data()); });
  }
  {
    const size_t c = 3, hw = 224 * 224;
    std::vector<float> x(c * hw);
    for (auto& v : x) v = std::uniform_real_distribution<float>(-2.5f, 2.5f)(g);
    std::vector<uint8_t> q(c * hw);
    bench("quantize_f32 150528", [&] { quantize_f32(x.data(), c * hw, 0.02f, 0, -128, 127, q.data()); });
    bench("quantize_chw_to_hwc 3x224x224",
          [&] { quantize_chw_to_hwc(x.data(), 1, c, hw, 0.02f, 0, -128, 127, q.data()); });
    std::vector<float> back(c * hw);
    bench("dequantize_hwc_to_chw 224x224x3",
          [&] { dequantize_hwc_to_chw(q.data(), true, 1, hw, c, 0.02f, 0, back.data()); });
  }
  {
    // A classifier's logits at batch 64: [64, 1000, 1, 1], the layouts coincide.
    const size_t batch = 64, c = 1000;
    std::vector<float> x(batch * c);
    for (auto& v : x) v = std::uniform_real_distribution<float>(-2.5f, 2.5f)(g);
    std::vector<uint8_t> q(batch * c);
    bench("quantize_chw_to_hwc 64x1000x1x1",
          [&] { quantize_chw_to_hwc(x.data(), batch, c, 1, 0.02f, 0, -128, 127, q.data()); });
    bench("dequantize_hwc_to_chw 64x1x1x1000",
          [&] { dequantize_hwc_to_chw(q.data(), true, batch, 1, c, 0.02f, 0, x.data()); });
  }
  {
    const size_t c = 64, hw = 56 * 56;
    std::vector<float> x(c * hw);
    for (auto& v : x) v = std::uniform_real_distribution<float>(-2.5f, 2.5f)(g);
    std::vector<uint8_t> q(c * hw);
    bench("quantize_chw_to_hwc 64x56x56",
          [&] { quantize_chw_to_hwc(x.data(), 1, c, hw, 0.02f, 0, -128, 127, q.data()); });
  }
  {
    const auto x = random_bytes(g, 112 * 112 * 64);
    Pool2dParams p;
    p.kernel_h = p.kernel_w = 3, p.stride_h = p.stride_w = 2, p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
    const Conv2dShape s = qpool2d_shape(1, 112, 112, 64, p);
    std::vector<uint8_t> out(s.out_h * s.out_w * 64);
    bench("qmaxpool2d 3x3/2 112x112x64", [&] { qmaxpool2d(x.data(), true, s, p, out.data()); });
  }
  for (size_t c : {size_t{64}, size_t{128}, size_t{256}}) {
    const size_t h = 56 * 64 / c;  // the downsample average pools of the stages
    const auto x = random_bytes(g, h * h * c);
    Pool2dParams p;
    p.kernel_h = p.kernel_w = p.stride_h = p.stride_w = 2;
    const Conv2dShape s = qpool2d_shape(1, h, h, c, p);
    std::vector<uint8_t> out(s.out_h * s.out_w * c);
    QuantOutput o;
    o.q = {0.05, 0};
    bench("qavgpool2d 2x2/2 " + std::to_string(h) + "x" + std::to_string(h) + "x" + std::to_string(c), [&] {
      qavgpool2d(x.data(), true, s, p, true, {0.05, 0}, o, out.data());
    });
  }
  {
    const auto x = random_bytes(g, 7 * 7 * 512);
    std::vector<uint8_t> out(512);
    QuantOutput o;
    o.q = {0.05, 0};
    bench("qglobalavgpool 7x7x512", [&] { qglobalavgpool(x.data(), true, 1, 7, 7, 512, {0.05, 0}, o, out.data()); });
  }
  return 0;
}
