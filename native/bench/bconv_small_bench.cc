// bconv_small_bench.cc: times whole bconv2d calls (one thread, the active ISA) on binary convs with
// few channels: CIFAR ResNet-20, VGG-Small and the shipped Fashion-MNIST CNN. For profiling with
// perf or callgrind: `bconv_small_bench [name-substring] [seconds]`; a negative `seconds` -n runs
// each layer exactly n times and prints the cycles per call (rdtsc-free: perf stat divides by n).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "lowbit/binary.h"
#include "lowbit/runtime.h"

namespace {

struct Layer {
  const char* name;
  size_t batch, h, w, cin, cout, stride;
  lowbit::PadValue pad;
  lowbit::OutputKind out;
};
using lowbit::OutputKind;
using lowbit::PadValue;
constexpr Layer kLayers[] = {
    {"r20-c16-32", 1, 32, 32, 16, 16, 1, PadValue::One, OutputKind::F32},
    {"r20-c32-16", 1, 16, 16, 32, 32, 1, PadValue::One, OutputKind::F32},
    {"r20-c64-8", 1, 8, 8, 64, 64, 1, PadValue::One, OutputKind::F32},
    {"r20s2-c16-32", 1, 32, 32, 16, 32, 2, PadValue::One, OutputKind::F32},
    {"r20s2-c32-16", 1, 16, 16, 32, 64, 2, PadValue::One, OutputKind::F32},
    {"vgg-c128-32", 1, 32, 32, 128, 128, 1, PadValue::One, OutputKind::F32},
    {"fashion2-b64", 64, 14, 14, 32, 64, 1, PadValue::Zero, OutputKind::S8},
    {"fashion3-b64", 64, 7, 7, 64, 64, 1, PadValue::Zero, OutputKind::B1},
    {"fashion4-b64", 64, 7, 7, 64, 128, 1, PadValue::Zero, OutputKind::B1},
};

}  // namespace

int main(int argc, char** argv) {
  const char* filter = argc > 1 ? argv[1] : "";
  const double seconds = argc > 2 ? std::atof(argv[2]) : 0.3;
  lowbit::set_num_threads(1);
  std::mt19937_64 rng(1);
  std::printf("isa %s\n", lowbit::isa_name(lowbit::active_isa()));
  for (const Layer& l : kLayers) {
    if (!std::strstr(l.name, filter)) continue;
    std::vector<float> wf(l.cout * 9 * l.cin);
    for (float& v : wf) v = (rng() & 1) ? 1.0f : -1.0f;
    auto w = lowbit::pack_binary_conv2d_weights_f32(wf.data(), l.cout, 3, 3, l.cin, 1);
    lowbit::Conv2dParams p;
    p.stride_h = p.stride_w = l.stride;
    p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
    p.pad_value = l.pad;
    const lowbit::Conv2dShape s = lowbit::bconv2d_shape(l.batch, l.h, l.w, l.cin, *w, p);
    std::vector<uint64_t> x(l.batch * l.h * l.w * lowbit::b1_words(l.cin));
    const uint64_t tail = l.cin % 64 ? (uint64_t{1} << (l.cin % 64)) - 1 : ~uint64_t{0};
    for (size_t i = 0; i < x.size(); ++i) x[i] = rng() & ((i + 1) % lowbit::b1_words(l.cin) == 0 ? tail : ~0ull);
    lowbit::OwnedBinaryEpilogue e;
    e.kind = l.out;
    e.scale.assign(l.cout, 0.01f), e.bias_f32.assign(l.cout, 0.5f), e.lo = -1e9f, e.hi = 1e9f;
    e.mult.assign(l.cout, 1 << 20), e.shift.assign(l.cout, 24), e.bias_s32.assign(l.cout, 0);
    e.threshold.assign(l.cout, 0), e.flip.assign(l.cout, 0);
    const size_t pixels = l.batch * s.out_h * s.out_w;
    std::vector<uint64_t> y(lowbit::binary_output_size(l.out, pixels, l.cout));
    const lowbit::BinaryEpilogue ev = e.view();
    auto run = [&] { lowbit::bconv2d(x.data(), s, *w, p, ev, y.data()); };
    if (seconds < 0) {
      for (int i = 0; i < -seconds; ++i) run();
      std::printf("%-14s %d runs\n", l.name, static_cast<int>(-seconds));
      continue;
    }
    for (int i = 0; i < 10; ++i) run();
    std::vector<double> times;
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds) {
      const auto t0 = std::chrono::steady_clock::now();
      run();
      times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(times.begin(), times.end());
    const double med = times[times.size() / 2];
    const double macs = double(pixels) * l.cout * 9 * l.cin;
    std::printf("%-14s median %8.4f ms  min %8.4f ms  %7.1f Gop/s  (%zu runs)\n", l.name, med * 1e3, times[0] * 1e3,
                2 * macs / med * 1e-9, times.size());
  }
  return 0;
}
