// bconv2d.cc: binary convolution driver: validate, im2col a tile of output pixels into dense bit
// rows, run the XNOR-popcount GEMM against the packed weights, correct zero-padded borders, and
// apply the fused epilogue. Work is split over (pixel tile, 64-aligned channel chunk) tasks.
#include <algorithm>
#include <cmath>
#include <string>

#include "binary/bit_copy.h"
#include "common/conv_taps.h"
#include "common/aligned_buffer.h"
#include "common/checked_math.h"
#include "cpu/dispatch.h"
#include "lowbit/binary.h"
#include "lowbit/error.h"
#include "lowbit/runtime.h"
#include "runtime/thread_pool.h"

namespace lowbit {
namespace {

std::string num(size_t v) { return std::to_string(v); }

// Per-thread scratch, reused across calls so a steady stream of calls allocates nothing.
struct Scratch {
  AlignedBuffer<uint64_t> patches;  // tile x row_words
  AlignedBuffer<int32_t> y;         // tile x chunk
};
thread_local Scratch t_scratch;

struct Plan {
  const Conv2dShape& s;
  const BinaryConv2dWeights& w;
  const Conv2dParams& p;
  const BinaryEpilogue& e;
  const BinaryKernels& k;
  size_t pixels, tile, chunk, tiles, chunks, oc_per_group;
  bool direct;  // 1x1, stride 1, no padding, one group: input rows are the patches
};

void epilogue_row(const Plan& plan, const int32_t* y, size_t pixel, size_t c0, size_t n, void* output) {
  const BinaryEpilogue& e = plan.e;
  const size_t oc = plan.s.out_c;
  switch (e.kind) {
    case OutputKind::F32: {
      B1OutputF32Params p{e.scale + c0, e.bias_f32 + c0, e.lo, e.hi};
      plan.k.output_f32(n, y, p, static_cast<float*>(output) + pixel * oc + c0);
      break;
    }
    case OutputKind::S8: {
      B1OutputS8Params p{e.mult + c0, e.shift + c0, e.bias_s32 + c0, e.qmin, e.qmax};
      plan.k.output_s8(n, y, p, static_cast<int8_t*>(output) + pixel * oc + c0);
      break;
    }
    case OutputKind::B1: {
      B1OutputB1Params p{e.threshold + c0, e.flip + c0};
      plan.k.output_b1(n, y, p, static_cast<uint64_t*>(output) + pixel * b1_words(oc) + c0 / 64);
      break;
    }
  }
}

// Fills the dense patch row of one output pixel for group g. Padded taps stay 0 bits (+1).
void im2col_row(const Plan& plan, const uint64_t* input, size_t pixel, size_t g, uint64_t* row) {
  const Conv2dShape& s = plan.s;
  const Conv2dParams& p = plan.p;
  const BinaryConv2dWeights& w = plan.w;
  const size_t in_words = b1_words(s.in_c);
  const size_t icg = w.in_channels_per_group;
  const size_t ow = pixel % s.out_w, oh = (pixel / s.out_w) % s.out_h, n = pixel / (s.out_w * s.out_h);
  const uint64_t* image = input + n * s.in_h * s.in_w * in_words;
  if (icg % 64 != 0) {
    std::fill(row, row + w.row_words, 0);
    for_each_tap(plan.w.kernel_h, plan.w.kernel_w, plan.p, oh, ow, [&](size_t t, ptrdiff_t iy, ptrdiff_t ix) {
      if (inside(s, iy, ix)) or_bits(image + (iy * s.in_w + ix) * in_words, g * icg, row, t * icg, icg);
    });
    return;
  }
  // Word-aligned taps (C a multiple of 64, as in most real layers): plain word copies, and a
  // window inside the image overwrites the whole row, so only border pixels need zeroing.
  const size_t tap_words = icg / 64, first = g * tap_words;
  const ptrdiff_t iy0 = static_cast<ptrdiff_t>(oh * p.stride_h) - static_cast<ptrdiff_t>(p.pad_top);
  const ptrdiff_t ix0 = static_cast<ptrdiff_t>(ow * p.stride_w) - static_cast<ptrdiff_t>(p.pad_left);
  const bool interior = window_inside(s, w.kernel_h, w.kernel_w, p, oh, ow);
  if (interior && w.groups == 1 && p.dilation_w == 1) {
    // The kernel_w taps of one kernel row are adjacent pixels: one contiguous run of words.
    const size_t run = w.kernel_w * in_words;
    for (size_t ky = 0; ky < w.kernel_h; ++ky) {
      const uint64_t* src = image + ((iy0 + ky * p.dilation_h) * s.in_w + ix0) * in_words;
      uint64_t* dst = row + ky * run;
      for (size_t i = 0; i < run; ++i) dst[i] = src[i];
    }
    return;
  }
  if (!interior) std::fill(row, row + w.row_words, 0);
  for_each_tap(plan.w.kernel_h, plan.w.kernel_w, plan.p, oh, ow, [&](size_t t, ptrdiff_t iy, ptrdiff_t ix) {
    if (!interior && !inside(s, iy, ix)) return;
    const uint64_t* src = image + (iy * s.in_w + ix) * in_words + first;
    uint64_t* dst = row + t * tap_words;
    for (size_t i = 0; i < tap_words; ++i) dst[i] = src[i];
  });
}

// Zero padding: a padded tap was computed as +1, so remove its contribution from channels
// [c0, c1): y -= sum of that tap's +-1 weights.
void correct_zero_padding(const Plan& plan, size_t pixel, size_t c0, size_t c1, int32_t* y) {
  const Conv2dShape& s = plan.s;
  const size_t ow = pixel % s.out_w, oh = (pixel / s.out_w) % s.out_h;
  for_each_tap(plan.w.kernel_h, plan.w.kernel_w, plan.p, oh, ow, [&](size_t t, ptrdiff_t iy, ptrdiff_t ix) {
    if (inside(s, iy, ix)) return;
    const int32_t* sums = plan.w.tap_sums.data() + t * plan.w.out_channels;
    for (size_t c = c0; c < c1; ++c) y[c - c0] -= sums[c];
  });
}

void run_task(const Plan& plan, const uint64_t* input, size_t task, void* output) {
  const size_t tile_index = task / plan.chunks, chunk_index = task % plan.chunks;
  const size_t p0 = tile_index * plan.tile, pn = std::min(plan.tile, plan.pixels - p0);
  const size_t c0 = chunk_index * plan.chunk, cn = std::min(plan.chunk, plan.s.out_c - c0);
  const BinaryConv2dWeights& w = plan.w;
  const bool zero_pad = plan.p.pad_value == PadValue::Zero;

  Scratch& sc = t_scratch;
  sc.y.resize(pn * cn);
  if (!plan.direct) sc.patches.resize(pn * w.row_words);

  // Groups that overlap this channel chunk; each needs its own patches.
  const size_t ocg = plan.oc_per_group;
  for (size_t g = c0 / ocg; g * ocg < c0 + cn; ++g) {
    const size_t gc0 = std::max(c0, g * ocg), gc1 = std::min(c0 + cn, (g + 1) * ocg);
    const uint64_t* a;
    if (plan.direct) {
      a = input + p0 * w.row_words;
    } else {
      for (size_t i = 0; i < pn; ++i)
        im2col_row(plan, input, p0 + i, g, sc.patches.data() + i * w.row_words);
      a = sc.patches.data();
    }
    int32_t* y = sc.y.data() + (gc0 - c0);
    plan.k.gemm(pn, gc1 - gc0, w.row_words, a, w.row_words, w.bits.data() + gc0 * w.row_words,
                w.row_words, static_cast<int32_t>(w.kbits), y, cn);
    if (zero_pad)
      for (size_t i = 0; i < pn; ++i) correct_zero_padding(plan, p0 + i, gc0, gc1, y + i * cn);
  }
  for (size_t i = 0; i < pn; ++i) epilogue_row(plan, sc.y.data() + i * cn, p0 + i, c0, cn, output);
}

}  // namespace

Conv2dShape bconv2d_shape(size_t batch, size_t in_h, size_t in_w, size_t in_c,
                          const BinaryConv2dWeights& w, const Conv2dParams& p) {
  const Conv2dShape s = conv2d_shape(batch, in_h, in_w, in_c, w.out_channels, w.kernel_h, w.kernel_w,
                                     w.in_channels_per_group, w.groups, p);
  // The size of every buffer involved must be representable.
  checked_mul(checked_mul(checked_mul(batch, in_h, "input size"), in_w, "input size"), b1_words(in_c) * 8,
              "input size");
  binary_output_size(OutputKind::F32, checked_mul(checked_mul(batch, s.out_h, "output size"), s.out_w, "output size"),
                     s.out_c);
  return s;
}

size_t binary_output_size(OutputKind kind, size_t pixels, size_t out_c) {
  const size_t per_pixel = kind == OutputKind::B1 ? b1_words(out_c) : out_c;
  const size_t count = checked_mul(pixels, per_pixel, "output size");
  checked_mul(count, 8, "output size");  // bytes, for the widest element type
  return count;
}

void validate_epilogue(const BinaryEpilogue& e, size_t out_c) {
  auto at = [](const char* what, size_t c) { return std::string(what) + "[" + num(c) + "]"; };
  switch (e.kind) {
    case OutputKind::F32:
      if (!e.scale || !e.bias_f32) fail(ErrorKind::Type, "f32 output needs scale and bias");
      for (size_t c = 0; c < out_c; ++c) {
        if (!std::isfinite(e.scale[c]))
          fail(ErrorKind::Range, at("scale", c) + " must be finite, got " + std::to_string(e.scale[c]));
        if (!std::isfinite(e.bias_f32[c]))
          fail(ErrorKind::Range, at("bias", c) + " must be finite, got " + std::to_string(e.bias_f32[c]));
      }
      if (std::isnan(e.lo) || std::isnan(e.hi) || e.lo > e.hi)
        fail(ErrorKind::Range, "clamp must satisfy lo <= hi (no NaN), got [" + std::to_string(e.lo) + ", " +
                                   std::to_string(e.hi) + "]");
      break;
    case OutputKind::S8:
      if (!e.mult || !e.shift || !e.bias_s32) fail(ErrorKind::Type, "s8 output needs multiplier, shift and bias");
      for (size_t c = 0; c < out_c; ++c) {
        if (e.mult[c] == INT32_MIN)
          fail(ErrorKind::Range, at("multiplier", c) + " must be in [-(2^31 - 1), 2^31 - 1], got -2^31");
        if (e.shift[c] > 62) fail(ErrorKind::Range, at("shift", c) + " must be in [0, 62], got " + num(e.shift[c]));
      }
      if (e.qmin < -128 || e.qmax > 127 || e.qmin > e.qmax)
        fail(ErrorKind::Range, "s8 clamp must satisfy -128 <= lo <= hi <= 127, got [" + std::to_string(e.qmin) +
                                   ", " + std::to_string(e.qmax) + "]");
      break;
    case OutputKind::B1:
      if (!e.threshold || !e.flip) fail(ErrorKind::Type, "b1 output needs threshold and flip");
      for (size_t c = 0; c < out_c; ++c)
        if (e.flip[c] > 1) fail(ErrorKind::Range, at("flip", c) + " must be 0 or 1, got " + num(e.flip[c]));
      break;
  }
}

void bconv2d(const uint64_t* input, const Conv2dShape& s, const BinaryConv2dWeights& w,
             const Conv2dParams& p, const BinaryEpilogue& e, void* output) {
  validate_epilogue(e, s.out_c);
  const size_t pixels = s.batch * s.out_h * s.out_w;
  const bool direct = w.kernel_h == 1 && w.kernel_w == 1 && w.groups == 1 && p.stride_h == 1 &&
                      p.stride_w == 1 && p.pad_top + p.pad_left + p.pad_bottom + p.pad_right == 0;
  // Pixel tiles keep the patch rows in L1/L2 while every weight row streams past them; with
  // few pixels, 64-aligned channel chunks give the other threads work.
  const size_t threads = num_threads();
  size_t tile = std::clamp<size_t>((32 * 1024) / (w.row_words * 8), 8, 64);
  tile = std::min(tile, std::max<size_t>(4, (pixels + 4 * threads - 1) / (4 * threads)));
  const size_t tiles = (pixels + tile - 1) / tile;
  size_t chunk = s.out_c;
  if (tiles < 4 * threads && s.out_c > 64) {
    const size_t want = (4 * threads + tiles - 1) / tiles;
    chunk = std::max<size_t>(64, (s.out_c / want + 63) / 64 * 64);
  }
  const size_t chunks = (s.out_c + chunk - 1) / chunk;
  Plan plan{s, w, p, e, binary_kernels(), pixels, tile, chunk, tiles, chunks,
            w.out_channels / w.groups, direct};
  parallel_for(tiles * chunks, [&](size_t task) { run_task(plan, input, task, output); });
}

void bdense(const uint64_t* input, size_t rows, size_t in_c, const BinaryConv2dWeights& w,
            const BinaryEpilogue& e, void* output) {
  if (w.kernel_h != 1 || w.kernel_w != 1 || w.groups != 1)
    fail(ErrorKind::Shape, "bdense weights must be packed as [O, I] (kernel 1x1, one group)");
  // A dense layer is a 1x1 convolution over `rows` pixels.
  Conv2dShape s = bconv2d_shape(rows, 1, 1, in_c, w, Conv2dParams{});
  bconv2d(input, s, w, Conv2dParams{}, e, output);
}

}  // namespace lowbit
