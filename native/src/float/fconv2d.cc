// fconv2d.cc: float32 convolution driver. Packs weights into 16-channel K-major panels once and
// runs the ISA's GEMM kernel panel by panel with the bias and clamp fused (and optionally the sign
// of the next binary layer, written as packed bits). The kernel reads each output pixel's window
// in place: from the input itself when the layer has no padding, else from a band of the input rows
// a tile reads, copied once per tile with zero columns and rows around them; a window is then a few
// runs of adjacent floats (one per kernel row when a pixel's channels are all in one group), the
// same runs for every pixel, so no patch rows are gathered (im2col cost a 3x3 conv on one channel
// twice its GEMM). Work is split over (pixel tile, panel chunk) tasks, as qconv2d does. Depthwise
// layers run per pixel over all channels (tap-major weights), split by output rows.
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

// Per-thread scratch, reused across calls so a steady stream of calls allocates nothing.
thread_local AlignedBuffer<float> t_band;       // a tile's zero-padded input rows
thread_local std::vector<const float*> t_rows;  // a tile's window origins: group 0, then the current group
thread_local std::vector<uint16_t> t_masks;     // sign masks of a panel not aligned to 16 channels

// A tile covers this many bytes of reduction (tile x K floats): the tile's windows stay in L2 while
// the panels (K x 16 floats) stream past from L1.
constexpr size_t kTilePatchBytes = 128 * 1024;
constexpr size_t kMaxTile = 240;  // a multiple of kFRowBlock

// Where the results go: floats, or sign bits (words per pixel, binary.h's layout).
struct Output {
  float* floats;
  const float* threshold;  // panel-padded: 16 per panel; null for floats
  uint64_t* bits;
};

struct Plan {
  const Conv2dShape& s;
  const FConv2dWeights& w;
  const Conv2dParams& p;
  F32GemmFn gemm;
  const float* bias;  // panel-padded: 16 per panel
  float lo, hi;
  Output out;
  size_t words = 0;           // bits: words per pixel
  bool aligned_bits = false;  // bits: every panel starts at a multiple of 16 channels
  size_t pixels = 0, tile = 0, panels = 0, chunk = 0, chunks = 0, oc_per_group = 0;
  bool banded = false;    // padded: windows are read from a band of zero-padded rows
  size_t row_floats = 0;  // floats per row of what the windows are read from
  std::vector<FRun> runs;
};

// The runs of one window (kernels.h): per tap, the group's channels; taps that are adjacent in
// memory merge (a kernel row of an ungrouped layer is one run).
std::vector<FRun> window_runs(const FConv2dWeights& w, const Conv2dParams& p, size_t in_c, size_t row_floats) {
  std::vector<FRun> runs;
  for (size_t ky = 0; ky < w.kernel_h; ++ky)
    for (size_t kx = 0; kx < w.kernel_w; ++kx) {
      const size_t offset = ky * p.dilation_h * row_floats + kx * p.dilation_w * in_c;
      if (!runs.empty() && runs.back().offset + runs.back().length == offset)
        runs.back().length += w.in_channels_per_group;
      else
        runs.push_back({offset, w.in_channels_per_group});
    }
  return runs;
}

// The window origins (group 0) of the tile's pixels [p0, p0 + pn) into origin[]: in the input, or
// in a band of the input rows each image's part of the tile reads, zero-padded, built here.
void window_origins(const Plan& plan, const float* input, size_t p0, size_t pn, const float** origin) {
  const Conv2dShape& s = plan.s;
  const Conv2dParams& p = plan.p;
  const size_t c = s.in_c, image_pixels = s.out_h * s.out_w, span = (plan.w.kernel_h - 1) * p.dilation_h + 1;
  // The tile's pixels per image: f(image, first pixel in the image, count).
  auto for_segments = [&](auto f) {
    for (size_t i = 0; i < pn;) {
      const size_t first = (p0 + i) % image_pixels, count = std::min(pn - i, image_pixels - first);
      f((p0 + i) / image_pixels, first, count);
      i += count;
    }
  };
  // A segment's output rows [oh0, oh1] read band rows from input row oh0 * stride - pad_top on.
  auto band_rows = [&](size_t first, size_t count) {
    return ((first + count - 1) / s.out_w - first / s.out_w) * p.stride_h + span;
  };
  if (plan.banded) {
    size_t floats = 0;
    for_segments([&](size_t, size_t first, size_t count) { floats += band_rows(first, count) * plan.row_floats; });
    t_band.resize(floats);
  }
  float* band = t_band.data();
  const size_t step = p.stride_w * c;  // along an output row
  for_segments([&](size_t n, size_t first, size_t count) {
    const size_t oh0 = first / s.out_w;
    // Where output row oh's windows start (column 0 of the padded width, or of the input).
    auto row_base = [&](size_t oh) {
      return plan.banded ? band + (oh - oh0) * p.stride_h * plan.row_floats
                         : input + ((n * s.in_h + oh * p.stride_h) * s.in_w) * c;
    };
    if (plan.banded) {
      const size_t rows = band_rows(first, count), left = p.pad_left * c, width = s.in_w * c;
      for (size_t r = 0; r < rows; ++r) {
        float* dst = band + r * plan.row_floats;
        const ptrdiff_t iy = static_cast<ptrdiff_t>(oh0 * p.stride_h + r) - static_cast<ptrdiff_t>(p.pad_top);
        if (iy < 0 || iy >= static_cast<ptrdiff_t>(s.in_h)) {
          std::fill(dst, dst + plan.row_floats, 0.0f);
          continue;
        }
        std::fill(dst, dst + left, 0.0f);
        std::memcpy(dst + left, input + (n * s.in_h + static_cast<size_t>(iy)) * width, width * sizeof(float));
        std::fill(dst + left + width, dst + plan.row_floats, 0.0f);
      }
    }
    for (size_t pixel = first, end = first + count; pixel < end;) {
      const size_t oh = pixel / s.out_w, ow = pixel % s.out_w, run = std::min(end - pixel, s.out_w - ow);
      const float* at = row_base(oh) + ow * step;
      for (size_t i = 0; i < run; ++i, at += step) *origin++ = at;
      pixel += run;
    }
    if (plan.banded) band += band_rows(first, count) * plan.row_floats;
  });
}

void run_task(const Plan& plan, const float* input, size_t task) {
  const FConv2dWeights& w = plan.w;
  const size_t out_c = plan.s.out_c;
  const size_t tile_index = task / plan.chunks, chunk_index = task % plan.chunks;
  const size_t p0 = tile_index * plan.tile, pn = std::min(plan.tile, plan.pixels - p0);
  const size_t q0 = chunk_index * plan.chunk, q1 = std::min(plan.panels, q0 + plan.chunk);
  t_rows.resize(2 * pn);
  window_origins(plan, input, p0, pn, t_rows.data());
  const float** rows = t_rows.data();
  if (plan.out.bits) {  // this task writes every panel of its pixels (no panel chunks for bits)
    std::fill(plan.out.bits + p0 * plan.words, plan.out.bits + (p0 + pn) * plan.words, uint64_t{0});
    if (!plan.aligned_bits) t_masks.resize(pn);
  }
  size_t rows_group = 0;
  for (size_t q = q0; q < q1; ++q) {
    const size_t g = q / w.panels_per_group, first = (q % w.panels_per_group) * kFPanelChannels;
    const size_t channel = g * plan.oc_per_group + first;
    if (g != rows_group) {  // a group reads its own channels of the same windows
      for (size_t i = 0; i < pn; ++i) t_rows[pn + i] = t_rows[i] + g * w.in_channels_per_group;
      rows = t_rows.data() + pn, rows_group = g;
    }
    const size_t n = std::min(kFPanelChannels, plan.oc_per_group - first);
    F32GemmOut o{plan.bias + q * kFPanelChannels, plan.lo, plan.hi, nullptr, out_c, nullptr, nullptr, 0};
    if (!plan.out.bits) {
      o.c = plan.out.floats + p0 * out_c + channel;
    } else {
      o.threshold = plan.out.threshold + q * kFPanelChannels;
      // Little-endian words: 16-bit slot j of a pixel's words holds channels 16j .. 16j + 15.
      if (plan.aligned_bits)
        o.bits = reinterpret_cast<uint16_t*>(plan.out.bits + p0 * plan.words) + channel / 16, o.ldb = 4 * plan.words;
      else
        o.bits = t_masks.data(), o.ldb = 1;
    }
    plan.gemm(pn, rows, plan.runs.data(), plan.runs.size(), w.data.data() + q * w.panel_floats, o, n);
    if (plan.out.bits && !plan.aligned_bits) {
      const size_t word = channel / 64, shift = channel % 64;
      for (size_t i = 0; i < pn; ++i) {
        uint64_t* dst = plan.out.bits + (p0 + i) * plan.words + word;
        dst[0] |= uint64_t{t_masks[i]} << shift;
        if (shift + n > 64) dst[1] |= uint64_t{t_masks[i]} >> (64 - shift);
      }
    }
  }
}

// One output row (n, oh) of a depthwise conv: per pixel, the bias, then each tap inside the image
// adds its input pixel times the tap's weights over all channels (padded taps add 0), then the clamp
// (and the sign).
void depthwise_row(const Plan& plan, F32DepthwiseTapFn tap, const float* input, const float* bias, size_t row) {
  const Conv2dShape& s = plan.s;
  const size_t c = s.in_c, oh = row % s.out_h, n = row / s.out_h;
  const float* image = input + n * s.in_h * s.in_w * c;
  t_band.resize(c);
  float* acc = t_band.data();
  for (size_t ow = 0; ow < s.out_w; ++ow) {
    std::copy(bias, bias + c, acc);
    for_each_tap(plan.w.kernel_h, plan.w.kernel_w, plan.p, oh, ow, [&](size_t t, ptrdiff_t iy, ptrdiff_t ix) {
      if (inside(s, iy, ix)) tap(c, image + (iy * s.in_w + ix) * c, plan.w.data.data() + t * c, acc);
    });
    const size_t pixel = row * s.out_w + ow;
    for (size_t j = 0; j < c; ++j) acc[j] = acc[j] < plan.lo ? plan.lo : (acc[j] > plan.hi ? plan.hi : acc[j]);
    if (!plan.out.bits) {
      std::copy(acc, acc + c, plan.out.floats + pixel * c);
      continue;
    }
    uint64_t* bits = plan.out.bits + pixel * plan.words;
    std::fill(bits, bits + plan.words, uint64_t{0});
    for (size_t j = 0; j < c; ++j) bits[j / 64] |= uint64_t{acc[j] < plan.out.threshold[j]} << (j % 64);
  }
}

void run_fconv2d(const float* input, const Conv2dShape& s, const FConv2dWeights& w, const Conv2dParams& p,
                 const FEpilogue& e, const Output& out) {
  if (!(e.lo <= e.hi))
    fail(ErrorKind::Range, "clamp [" + std::to_string(e.lo) + ", " + std::to_string(e.hi) + "] must have lo <= hi");
  const size_t ocg = w.out_channels / w.groups;
  const FloatKernels& kernels = float_kernels();
  Plan plan{s, w, p, kernels.f32_gemm, nullptr, e.lo, e.hi, out, 0, false, 0, 0, 0, 0, 0, 0, false, 0, {}};
  plan.words = words_for_bits(s.out_c);
  if (w.depthwise) {
    const std::vector<float> bias = e.bias ? std::vector<float>(e.bias, e.bias + s.out_c) : std::vector<float>(s.out_c);
    parallel_for(s.batch * s.out_h,
                 [&](size_t row) { depthwise_row(plan, kernels.f32_dw_tap, input, bias.data(), row); });
    return;
  }
  plan.panels = w.groups * w.panels_per_group;
  // The bias (and sign thresholds) in panel order, zero past each group's last channel: the
  // kernels read 16 a panel.
  auto by_panel = [&](const float* v) {
    std::vector<float> padded(plan.panels * kFPanelChannels, 0.0f);
    if (v)
      for (size_t q = 0; q < plan.panels; ++q) {
        const size_t g = q / w.panels_per_group, first = (q % w.panels_per_group) * kFPanelChannels;
        for (size_t j = 0; j < kFPanelChannels && first + j < ocg; ++j)
          padded[q * kFPanelChannels + j] = v[g * ocg + first + j];
      }
    return padded;
  };
  const std::vector<float> bias = by_panel(e.bias), threshold = by_panel(out.threshold);
  plan.bias = bias.data();
  if (out.bits) plan.out.threshold = threshold.data();
  plan.aligned_bits = w.groups == 1 || ocg % kFPanelChannels == 0;
  plan.oc_per_group = ocg;
  plan.pixels = s.batch * s.out_h * s.out_w;
  plan.banded = p.pad_top + p.pad_left + p.pad_bottom + p.pad_right > 0;
  plan.row_floats = (plan.banded ? p.pad_left + s.in_w + p.pad_right : s.in_w) * s.in_c;
  plan.runs = window_runs(w, p, s.in_c, plan.row_floats);
  const size_t threads = num_threads();
  size_t tile = std::clamp<size_t>(kTilePatchBytes / (w.k * sizeof(float)) / 12 * 12, 12, kMaxTile);
  tile = std::min(tile, (plan.pixels + threads - 1) / threads);
  size_t tiles = (plan.pixels + tile - 1) / tile;
  tile = (plan.pixels + tiles - 1) / tiles;
  // Tiles of whole kernel row blocks (kernels.h): the sums then do not change with the thread count.
  tile = (tile + kFRowBlock - 1) / kFRowBlock * kFRowBlock;
  tiles = (plan.pixels + tile - 1) / tile;
  plan.tile = tile;
  // With fewer tiles than threads (a dense layer on a small batch), panel chunks share the work;
  // not for sign bits, whose words the panels of a pixel share.
  plan.chunk = plan.panels;
  if (tiles < 2 * threads && plan.panels > 1 && !out.bits) {
    const size_t want = (2 * threads + tiles - 1) / tiles;
    plan.chunk = std::max<size_t>(1, (plan.panels + want - 1) / want);
  }
  plan.chunks = (plan.panels + plan.chunk - 1) / plan.chunk;
  parallel_for(tiles * plan.chunks, [&](size_t task) { run_task(plan, input, task); });
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
  run_fconv2d(input, s, w, p, e, Output{output, nullptr, nullptr});
}

void fconv2d_sign(const float* input, const Conv2dShape& s, const FConv2dWeights& w, const Conv2dParams& p,
                  const FEpilogue& e, const float* threshold, uint64_t* bits) {
  run_fconv2d(input, s, w, p, e, Output{nullptr, threshold, bits});
}

void fdense(const float* input, size_t rows, size_t in_c, const FConv2dWeights& w, const FEpilogue& e, float* output) {
  if (w.kernel_h != 1 || w.kernel_w != 1 || w.groups != 1)
    fail(ErrorKind::Shape, "weights: fdense needs weights packed as [O, I] (kernel 1x1, one group)");
  // A dense layer is a 1x1 convolution over `rows` pixels.
  const Conv2dShape s = fconv2d_shape(rows, 1, 1, in_c, w, Conv2dParams{});
  fconv2d(input, s, w, Conv2dParams{}, e, output);
}

}  // namespace lowbit
