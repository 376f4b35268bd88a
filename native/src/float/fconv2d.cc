// fconv2d.cc: float32 convolution driver. Packs weights into 16-channel K-major panels once,
// gathers a tile of output pixels into float patch rows (im2col) in a per-thread scratch, or reads
// the input itself for 1x1 stride-1 unpadded layers, and runs the ISA's GEMM kernel panel by panel
// with the bias and clamp fused. Work is split over (pixel tile, panel chunk) tasks, as qconv2d does.
// Depthwise layers run per pixel over all channels (tap-major weights), split by output rows.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "common/checked_math.h"
#include "common/conv_taps.h"
#include "cpu/dispatch.h"
#include "lowbit/error.h"
#include "lowbit/fconv.h"
#include "lowbit/runtime.h"
#include "runtime/thread_pool.h"

namespace lowbit {
namespace {

// Per-thread patch rows, reused across calls so a steady stream of calls allocates nothing.
thread_local AlignedBuffer<float> t_patches;

// A tile's patch rows (tile x K floats) stay in L2 while the panels (K x 16 floats) stream past
// from L1: this many bytes of patches per tile.
constexpr size_t kTilePatchBytes = 128 * 1024;
constexpr size_t kMaxTile = 240;  // a multiple of kFRowBlock

struct Plan {
  const Conv2dShape& s;
  const FConv2dWeights& w;
  const Conv2dParams& p;
  F32GemmFn gemm;
  const float* bias;  // panel-padded: 16 per panel
  float lo, hi;
  size_t pixels = 0, tile = 0, panels = 0, chunk = 0, chunks = 0, oc_per_group = 0;
  bool direct = false;  // 1x1, stride 1, no padding: a pixel's input channels are its patch row
};

// Copies n floats; kernel-row runs of small-channel layers (21 floats for a 7x7 tap row of 3
// channels) are shorter than what a libc memcpy call costs.
inline void copy_floats(float* dst, const float* src, size_t n) {
  if (n >= 64) {
    std::memcpy(dst, src, n * sizeof(float));
    return;
  }
  // Fixed-size copies become plain vector moves; a loop of unknown length did not (GCC 12: a
  // 3-channel stem spent a quarter of its time copying 9-float runs).
  size_t i = 0;
  for (; i + 8 <= n; i += 8) std::memcpy(dst + i, src + i, 8 * sizeof(float));
  if (i + 4 <= n) std::memcpy(dst + i, src + i, 4 * sizeof(float)), i += 4;
  for (; i < n; ++i) dst[i] = src[i];
}

// An output pixel's coordinates, stepped along a tile without three divisions per pixel (a tenth
// of a 3-channel stem's time).
struct PixelCursor {
  size_t n, oh, ow;
  PixelCursor(const Conv2dShape& s, size_t pixel)
      : n(pixel / (s.out_h * s.out_w)), oh(pixel / s.out_w % s.out_h), ow(pixel % s.out_w) {}
  void next(const Conv2dShape& s) {
    if (++ow < s.out_w) return;
    ow = 0;
    if (++oh < s.out_h) return;
    oh = 0, ++n;
  }
};

// The patch row (K floats) of one output pixel for group g; padded taps read 0.
void im2col_row(const Plan& plan, const float* input, const PixelCursor& at, size_t g, float* row) {
  const Conv2dShape& s = plan.s;
  const Conv2dParams& p = plan.p;
  const FConv2dWeights& w = plan.w;
  const size_t icg = w.in_channels_per_group;
  const size_t n = at.n, oh = at.oh, ow = at.ow;
  const float* image = input + n * s.in_h * s.in_w * s.in_c;
  if (w.groups == 1 && p.dilation_w == 1 && window_inside(s, w.kernel_h, w.kernel_w, p, oh, ow)) {
    // The kernel_w taps of one kernel row are adjacent pixels: one contiguous run.
    const size_t run = w.kernel_w * s.in_c;
    const size_t iy0 = oh * p.stride_h - p.pad_top, ix0 = ow * p.stride_w - p.pad_left;
    for (size_t ky = 0; ky < w.kernel_h; ++ky)
      copy_floats(row + ky * run, image + ((iy0 + ky * p.dilation_h) * s.in_w + ix0) * s.in_c, run);
    return;
  }
  for_each_tap(w.kernel_h, w.kernel_w, p, oh, ow, [&](size_t t, ptrdiff_t iy, ptrdiff_t ix) {
    if (inside(s, iy, ix))
      copy_floats(row + t * icg, image + (iy * s.in_w + ix) * s.in_c + g * icg, icg);
    else
      std::fill(row + t * icg, row + (t + 1) * icg, 0.0f);
  });
}

void run_task(const Plan& plan, const float* input, size_t task, float* output) {
  const FConv2dWeights& w = plan.w;
  const size_t out_c = plan.s.out_c, in_c = plan.s.in_c;
  const size_t tile_index = task / plan.chunks, chunk_index = task % plan.chunks;
  const size_t p0 = tile_index * plan.tile, pn = std::min(plan.tile, plan.pixels - p0);
  const size_t q0 = chunk_index * plan.chunk, q1 = std::min(plan.panels, q0 + plan.chunk);
  if (!plan.direct) t_patches.resize(pn * w.k);
  size_t patches_group = SIZE_MAX;
  const float* a = nullptr;
  const size_t lda = plan.direct ? in_c : w.k;
  for (size_t q = q0; q < q1; ++q) {
    const size_t g = q / w.panels_per_group, first = (q % w.panels_per_group) * kFPanelChannels;
    if (g != patches_group) {  // a group's panels share its patch rows
      if (plan.direct) {
        a = input + p0 * in_c + g * w.in_channels_per_group;
      } else {
        PixelCursor at(plan.s, p0);
        for (size_t i = 0; i < pn; ++i, at.next(plan.s)) im2col_row(plan, input, at, g, t_patches.data() + i * w.k);
        a = t_patches.data();
      }
      patches_group = g;
    }
    const size_t n = std::min(kFPanelChannels, plan.oc_per_group - first);
    plan.gemm(pn, w.k, a, lda, w.data.data() + q * w.panel_floats, plan.bias + q * kFPanelChannels, plan.lo, plan.hi,
              output + p0 * out_c + g * plan.oc_per_group + first, out_c, n);
  }
}

// One output row (n, oh) of a depthwise conv: per pixel, the bias, then each tap inside the image
// adds its input pixel times the tap's weights over all channels (padded taps add 0), then the clamp.
void depthwise_row(const Plan& plan, F32DepthwiseTapFn tap, const float* input, const float* bias, size_t row,
                   float* output) {
  const Conv2dShape& s = plan.s;
  const size_t c = s.in_c, oh = row % s.out_h, n = row / s.out_h;
  const float* image = input + n * s.in_h * s.in_w * c;
  t_patches.resize(c);
  float* acc = t_patches.data();
  for (size_t ow = 0; ow < s.out_w; ++ow) {
    std::copy(bias, bias + c, acc);
    for_each_tap(plan.w.kernel_h, plan.w.kernel_w, plan.p, oh, ow, [&](size_t t, ptrdiff_t iy, ptrdiff_t ix) {
      if (inside(s, iy, ix)) tap(c, image + (iy * s.in_w + ix) * c, plan.w.data.data() + t * c, acc);
    });
    float* y = output + (row * s.out_w + ow) * c;
    for (size_t j = 0; j < c; ++j) y[j] = acc[j] < plan.lo ? plan.lo : (acc[j] > plan.hi ? plan.hi : acc[j]);
  }
}

}  // namespace

std::shared_ptr<FConv2dWeights> pack_fconv2d_weights(const float* ohwi, size_t out_c, size_t kh, size_t kw,
                                                     size_t in_c_per_group, size_t groups) {
  if (out_c == 0 || kh == 0 || kw == 0 || in_c_per_group == 0 || groups == 0)
    fail(ErrorKind::Shape, "weights: every dimension of [O, H, W, I] and groups must be at least 1");
  if (out_c % groups != 0)
    fail(ErrorKind::Shape, "weights: " + num(out_c) + " output channels do not divide into " + num(groups) + " groups");
  auto w = std::make_shared<FConv2dWeights>();
  w->out_channels = out_c, w->kernel_h = kh, w->kernel_w = kw, w->in_channels_per_group = in_c_per_group;
  w->groups = groups;
  w->k = checked_mul(checked_mul(kh, kw, "kernel size"), in_c_per_group, "kernel size");
  checked_mul(out_c, w->k, "weights size");
  w->depthwise = in_c_per_group == 1 && groups == out_c && groups > 1;
  if (w->depthwise) {
    const size_t taps = w->taps();
    w->data.resize(checked_mul(taps, out_c, "weights size"));
    for (size_t t = 0; t < taps; ++t)
      for (size_t c = 0; c < out_c; ++c) w->data[t * out_c + c] = ohwi[c * taps + t];
    return w;
  }
  const size_t ocg = out_c / groups;
  w->panels_per_group = (ocg + kFPanelChannels - 1) / kFPanelChannels;
  w->panel_floats = checked_mul(w->k, kFPanelChannels, "panel size");
  const size_t panels = checked_mul(groups, w->panels_per_group, "panel count");
  w->data.resize(checked_mul(panels, w->panel_floats, "packed weights size"));
  for (size_t g = 0; g < groups; ++g)
    for (size_t q = 0; q < w->panels_per_group; ++q) {
      const size_t first = q * kFPanelChannels;
      pack_f32_panel(ohwi + (g * ocg + first) * w->k, std::min(kFPanelChannels, ocg - first), w->k, w->k,
                     w->data.data() + (g * w->panels_per_group + q) * w->panel_floats);
    }
  return w;
}

Conv2dShape fconv2d_shape(size_t batch, size_t in_h, size_t in_w, size_t in_c, const FConv2dWeights& w,
                          const Conv2dParams& p) {
  const Conv2dShape s = conv2d_shape(batch, in_h, in_w, in_c, w.out_channels, w.kernel_h, w.kernel_w,
                                     w.in_channels_per_group, w.groups, p);
  checked_mul(checked_mul(checked_mul(checked_mul(batch, in_h, "input size"), in_w, "input size"), in_c, "input size"),
              sizeof(float), "input size");
  checked_mul(checked_mul(checked_mul(checked_mul(batch, s.out_h, "output size"), s.out_w, "output size"), s.out_c,
                          "output size"),
              sizeof(float), "output size");
  return s;
}

void fconv2d(const float* input, const Conv2dShape& s, const FConv2dWeights& w, const Conv2dParams& p,
             const FEpilogue& e, float* output) {
  if (!(e.lo <= e.hi))
    fail(ErrorKind::Range, "clamp [" + std::to_string(e.lo) + ", " + std::to_string(e.hi) + "] must have lo <= hi");
  const size_t ocg = w.out_channels / w.groups;
  const FloatKernels& kernels = float_kernels();
  Plan plan{s, w, p, kernels.f32_gemm, nullptr, e.lo, e.hi};
  if (w.depthwise) {
    const std::vector<float> bias = e.bias ? std::vector<float>(e.bias, e.bias + s.out_c) : std::vector<float>(s.out_c);
    parallel_for(s.batch * s.out_h,
                 [&](size_t row) { depthwise_row(plan, kernels.f32_dw_tap, input, bias.data(), row, output); });
    return;
  }
  plan.panels = w.groups * w.panels_per_group;
  // The bias in panel order, zero past each group's last channel: the kernels read 16 a panel.
  std::vector<float> bias(plan.panels * kFPanelChannels, 0.0f);
  if (e.bias)
    for (size_t q = 0; q < plan.panels; ++q) {
      const size_t g = q / w.panels_per_group, first = (q % w.panels_per_group) * kFPanelChannels;
      for (size_t j = 0; j < kFPanelChannels && first + j < ocg; ++j)
        bias[q * kFPanelChannels + j] = e.bias[g * ocg + first + j];
    }
  plan.bias = bias.data();
  plan.oc_per_group = ocg;
  plan.pixels = s.batch * s.out_h * s.out_w;
  plan.direct = w.kernel_h == 1 && w.kernel_w == 1 && p.stride_h == 1 && p.stride_w == 1 &&
                p.pad_top + p.pad_left + p.pad_bottom + p.pad_right == 0;
  const size_t threads = num_threads();
  size_t tile = std::clamp<size_t>(kTilePatchBytes / (w.k * sizeof(float)) / 12 * 12, 12, kMaxTile);
  tile = std::min(tile, (plan.pixels + threads - 1) / threads);
  size_t tiles = (plan.pixels + tile - 1) / tile;
  tile = (plan.pixels + tiles - 1) / tiles;
  // Tiles of whole kernel row blocks (kernels.h): the sums then do not change with the thread count.
  tile = (tile + kFRowBlock - 1) / kFRowBlock * kFRowBlock;
  tiles = (plan.pixels + tile - 1) / tile;
  plan.tile = tile;
  // With fewer tiles than threads (a dense layer on a small batch), panel chunks share the work.
  plan.chunk = plan.panels;
  if (tiles < 2 * threads && plan.panels > 1) {
    const size_t want = (2 * threads + tiles - 1) / tiles;
    plan.chunk = std::max<size_t>(1, (plan.panels + want - 1) / want);
  }
  plan.chunks = (plan.panels + plan.chunk - 1) / plan.chunk;
  parallel_for(tiles * plan.chunks, [&](size_t task) { run_task(plan, input, task, output); });
}

void fdense(const float* input, size_t rows, size_t in_c, const FConv2dWeights& w, const FEpilogue& e, float* output) {
  if (w.kernel_h != 1 || w.kernel_w != 1 || w.groups != 1)
    fail(ErrorKind::Shape, "weights: fdense needs weights packed as [O, I] (kernel 1x1, one group)");
  // A dense layer is a 1x1 convolution over `rows` pixels.
  const Conv2dShape s = fconv2d_shape(rows, 1, 1, in_c, w, Conv2dParams{});
  fconv2d(input, s, w, Conv2dParams{}, e, output);
}

}  // namespace lowbit
