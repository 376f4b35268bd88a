// conv_tile.cc: see conv_tile.h.
#include "binary/conv_tile.h"

#include <algorithm>

#include "binary/bit_copy.h"
#include "common/conv_taps.h"

namespace lowbit {

void epilogue_row(const ConvCall& call, const int32_t* y, size_t pixel, size_t c0, size_t n, void* output) {
  const BinaryEpilogue& e = call.e;
  const size_t oc = call.s.out_c;
  switch (e.kind) {
    case OutputKind::F32: {
      float* out = static_cast<float*>(output) + pixel * oc + c0;
      if (e.fused()) {  // c0 is a multiple of 64 (channel chunks), so the bits start at a word
        const size_t at = pixel * oc + c0;
        const OutputF32FusedParams p{e.scale + c0,
                                     e.bias_f32 + c0,
                                     e.residual ? e.residual + at : nullptr,
                                     e.prelu_slope ? e.prelu_slope + c0 : nullptr,
                                     e.prelu_slope ? e.prelu_input_bias + c0 : nullptr,
                                     e.prelu_slope ? e.prelu_output_bias + c0 : nullptr,
                                     e.lo,
                                     e.hi,
                                     e.sign_output ? e.sign_threshold + c0 : nullptr};
        call.out.output_f32_fused(n, y, p, out,
                                  e.sign_output ? e.sign_output + pixel * b1_words(oc) + c0 / 64 : nullptr);
        break;
      }
      OutputF32Params p{e.scale + c0, e.bias_f32 + c0, e.lo, e.hi};
      call.out.output_f32(n, y, p, out);
      break;
    }
    case OutputKind::S8: {
      RequantizeParams p{e.mult + c0, e.shift + c0, e.bias_s32 + c0, e.qmin, e.qmax};
      call.out.output_s8(n, y, p, static_cast<int8_t*>(output) + pixel * oc + c0);
      break;
    }
    case OutputKind::B1: {
      OutputB1Params p{e.threshold + c0, e.flip + c0};
      call.out.output_b1(n, y, p, static_cast<uint64_t*>(output) + pixel * b1_words(oc) + c0 / 64);
      break;
    }
  }
}

void im2col_row(const ConvCall& call, const uint64_t* input, size_t pixel, size_t g, uint64_t* row) {
  const Conv2dShape& s = call.s;
  const Conv2dParams& p = call.p;
  const BinaryConv2dWeights& w = call.w;
  const size_t in_words = b1_words(s.in_c);
  const size_t icg = w.in_channels_per_group;
  const size_t ow = pixel % s.out_w, oh = (pixel / s.out_w) % s.out_h, n = pixel / (s.out_w * s.out_h);
  const uint64_t* image = input + n * s.in_h * s.in_w * in_words;
  if (icg % 64 != 0) {
    std::fill(row, row + w.row_words, 0);
    for_each_tap(call.w.kernel_h, call.w.kernel_w, call.p, oh, ow, [&](size_t t, ptrdiff_t iy, ptrdiff_t ix) {
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
  for_each_tap(call.w.kernel_h, call.w.kernel_w, call.p, oh, ow, [&](size_t t, ptrdiff_t iy, ptrdiff_t ix) {
    if (!interior && !inside(s, iy, ix)) return;
    const uint64_t* src = image + (iy * s.in_w + ix) * in_words + first;
    uint64_t* dst = row + t * tap_words;
    for (size_t i = 0; i < tap_words; ++i) dst[i] = src[i];
  });
}

void correct_zero_padding(const ConvCall& call, size_t pixel, size_t c0, size_t c1, int32_t* y) {
  const Conv2dShape& s = call.s;
  const size_t ow = pixel % s.out_w, oh = (pixel / s.out_w) % s.out_h;
  for_each_tap(call.w.kernel_h, call.w.kernel_w, call.p, oh, ow, [&](size_t t, ptrdiff_t iy, ptrdiff_t ix) {
    if (inside(s, iy, ix)) return;
    const int32_t* sums = call.w.tap_sums.data() + t * call.w.out_channels;
    for (size_t c = c0; c < c1; ++c) y[c - c0] -= sums[c];
  });
}

}  // namespace lowbit
