// bconv2d.cc: binary convolution driver: validate, im2col a tile of output pixels into dense bit
// rows, run the XNOR-popcount GEMM against the packed weights, correct zero-padded borders, and
// apply the fused epilogue. Work is split over (pixel tile, 64-aligned channel chunk) tasks.
#include <algorithm>
#include <cmath>
#include <string>

#include "binary/conv_tile.h"
#include "common/checked_math.h"
#include "cpu/dispatch.h"
#include "lowbit/aligned_buffer.h"
#include "lowbit/binary.h"
#include "lowbit/error.h"
#include "lowbit/runtime.h"
#include "runtime/thread_pool.h"

namespace lowbit {
namespace {

// Per-thread scratch, reused across calls so a steady stream of calls allocates nothing.
struct Scratch {
  AlignedBuffer<uint64_t> patches;  // tile x row_words
  AlignedBuffer<int32_t> y;         // tile x chunk
};
thread_local Scratch t_scratch;

// The row streams and zero-padding corrections of the current call on this (the calling) thread;
// the tasks only read them.
thread_local AlignedBuffer<uint64_t> t_streams;
thread_local ZeroPadCorrections t_zero_pad;

struct Plan {
  ConvCall call;
  size_t pixels, tile, chunk, tiles, chunks, oc_per_group;
  bool direct;                         // 1x1, stride 1, no padding, one group: input rows are the patches
  const uint64_t* streams;             // small channels: the input as row streams (conv_tile.h), else null
  const ZeroPadCorrections* zero_pad;  // zero padding, else null
};

void run_task(const Plan& plan, const uint64_t* input, size_t task, void* output) {
  const size_t tile_index = task / plan.chunks, chunk_index = task % plan.chunks;
  const size_t p0 = tile_index * plan.tile, pn = std::min(plan.tile, plan.pixels - p0);
  const ConvCall& call = plan.call;
  const size_t c0 = chunk_index * plan.chunk, cn = std::min(plan.chunk, call.s.out_c - c0);
  const BinaryConv2dWeights& w = call.w;

  Scratch& sc = t_scratch;
  sc.y.resize(pn * cn);
  if (!plan.direct) sc.patches.resize(pn * w.row_words + 1);  // im2col_from_streams' spare word

  // Groups that overlap this channel chunk; each needs its own patches.
  const size_t ocg = plan.oc_per_group;
  for (size_t g = c0 / ocg; g * ocg < c0 + cn; ++g) {
    const size_t gc0 = std::max(c0, g * ocg), gc1 = std::min(c0 + cn, (g + 1) * ocg);
    const uint64_t* a;
    if (plan.direct) {
      a = input + p0 * w.row_words;
    } else if (plan.streams) {
      im2col_from_streams(call, plan.streams, p0, pn, g, sc.patches.data());
      a = sc.patches.data();
    } else {
      im2col_rows(call, input, p0, pn, g, sc.patches.data());
      a = sc.patches.data();
    }
    int32_t* y = sc.y.data() + (gc0 - c0);
    call.k.gemm(pn, gc1 - gc0, w.row_words, a, w.row_words, w.bits.data() + gc0 * w.row_words, w.row_words,
                static_cast<int32_t>(w.kbits), y, cn);
    if (plan.zero_pad) plan.zero_pad->apply(p0, pn, gc0, gc1, y, cn);
  }
  epilogue_rows(call, sc.y.data(), cn, p0, pn, c0, cn, output);
}

}  // namespace

Conv2dShape bconv2d_shape(size_t batch, size_t in_h, size_t in_w, size_t in_c, const BinaryConv2dWeights& w,
                          const Conv2dParams& p) {
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

namespace {

// The optional fusion of an f32 epilogue (binary.h): the RPReLU arrays together and finite, the
// sign's output with its thresholds, never NaN.
void validate_fused_f32(const BinaryEpilogue& e, size_t out_c) {
  if (e.prelu_slope && (!e.prelu_input_bias || !e.prelu_output_bias))
    fail(ErrorKind::Type, "RPReLU needs prelu_slope, prelu_input_bias and prelu_output_bias");
  if (e.sign_output && !e.sign_threshold) fail(ErrorKind::Type, "sign_output needs sign_threshold");
  for (size_t c = 0; c < out_c; ++c) {
    if (e.prelu_slope)
      for (const float* v : {e.prelu_slope, e.prelu_input_bias, e.prelu_output_bias})
        if (!std::isfinite(v[c])) fail(ErrorKind::Range, "RPReLU values must be finite, got " + std::to_string(v[c]));
    if (e.sign_threshold && std::isnan(e.sign_threshold[c]))
      fail(ErrorKind::Range, "sign_threshold[" + num(c) + "] is NaN");
  }
}

}  // namespace

void validate_epilogue(const BinaryEpilogue& e, size_t out_c) {
  if (e.kind != OutputKind::F32 && (e.fused() || e.sign_threshold))
    fail(ErrorKind::Type, "residual, RPReLU and sign fusion need an f32 output");
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
        fail(ErrorKind::Range,
             "clamp must satisfy lo <= hi (no NaN), got [" + std::to_string(e.lo) + ", " + std::to_string(e.hi) + "]");
      validate_fused_f32(e, out_c);
      break;
    case OutputKind::S8:
      if (!e.mult || !e.shift || !e.bias_s32) fail(ErrorKind::Type, "s8 output needs multiplier, shift and bias");
      for (size_t c = 0; c < out_c; ++c) {
        if (e.mult[c] == INT32_MIN)
          fail(ErrorKind::Range, at("multiplier", c) + " must be in [-(2^31 - 1), 2^31 - 1], got -2^31");
        if (e.shift[c] > 62) fail(ErrorKind::Range, at("shift", c) + " must be in [0, 62], got " + num(e.shift[c]));
      }
      if (e.qmin < -128 || e.qmax > 127 || e.qmin > e.qmax)
        fail(ErrorKind::Range, "s8 clamp must satisfy -128 <= lo <= hi <= 127, got [" + std::to_string(e.qmin) + ", " +
                                   std::to_string(e.qmax) + "]");
      break;
    case OutputKind::B1:
      if (!e.threshold || !e.flip) fail(ErrorKind::Type, "b1 output needs threshold and flip");
      for (size_t c = 0; c < out_c; ++c)
        if (e.flip[c] > 1) fail(ErrorKind::Range, at("flip", c) + " must be 0 or 1, got " + num(e.flip[c]));
      break;
  }
}

void bconv2d(const uint64_t* input, const Conv2dShape& s, const BinaryConv2dWeights& w, const Conv2dParams& p,
             const BinaryEpilogue& e, void* output) {
  validate_epilogue(e, s.out_c);
  const size_t pixels = s.batch * s.out_h * s.out_w;
  const bool direct = patches_are_input(w, p);
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
  const Isa isa = active_isa();
  Plan plan{{s, w, p, e, binary_kernels_for(isa), output_kernels_for(isa)},
            pixels,
            tile,
            chunk,
            tiles,
            chunks,
            w.out_channels / w.groups,
            direct,
            nullptr,
            nullptr};
  if (p.pad_value == PadValue::Zero) {
    t_zero_pad.build(plan.call);
    plan.zero_pad = &t_zero_pad;
  }
  if (!direct && use_row_streams(w)) {
    const size_t rows = row_stream_rows(plan.call), per_row = w.groups * row_stream_words(plan.call);
    t_streams.resize(checked_mul(rows, per_row, "row stream size"));
    // This thread's buffer: the workers that build parts of it have their own t_streams.
    uint64_t* streams = t_streams.data();
    // Repacking costs about one pass over the input; split it only where it is worth a pool wake-up.
    const size_t blocks = std::min(threads, std::max<size_t>(1, rows * per_row / 4096));
    const size_t block = (rows + blocks - 1) / blocks;
    parallel_for(blocks, [&](size_t b) {
      const size_t r0 = b * block;
      if (r0 < rows) build_row_streams(plan.call, input, r0, std::min(block, rows - r0), streams);
    });
    plan.streams = streams;
  }
  parallel_for(tiles * chunks, [&](size_t task) { run_task(plan, input, task, output); });
}

Conv2dShape bdense_shape(size_t rows, size_t in_c, const BinaryConv2dWeights& w) {
  if (rows == 0) fail(ErrorKind::Shape, "input: rows must be at least 1");
  if (w.kernel_h != 1 || w.kernel_w != 1 || w.groups != 1)
    fail(ErrorKind::Shape, "weights: bdense needs weights packed as [O, I] (kernel 1x1, one group), got kernel " +
                               num(w.kernel_h) + "x" + num(w.kernel_w) + " with " + num(w.groups) + " groups");
  if (in_c != w.in_channels_per_group)
    fail(ErrorKind::Shape,
         "input has " + num(in_c) + " features but the weights expect " + num(w.in_channels_per_group));
  // A dense layer is a 1x1 convolution over `rows` pixels.
  return bconv2d_shape(rows, 1, 1, in_c, w, Conv2dParams{});
}

void bdense(const uint64_t* input, size_t rows, size_t in_c, const BinaryConv2dWeights& w, const BinaryEpilogue& e,
            void* output) {
  const Conv2dShape s = bdense_shape(rows, in_c, w);
  bconv2d(input, s, w, Conv2dParams{}, e, output);
}

}  // namespace lowbit
