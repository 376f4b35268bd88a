// conv_tile.cc: see conv_tile.h.
#include "binary/conv_tile.h"

#include <algorithm>

#include "binary/bit_copy.h"
#include "common/checked_math.h"
#include "common/conv_taps.h"

namespace lowbit {

void epilogue_row(const ConvCall& call, const int32_t* y, size_t pixel, size_t c0, size_t n, void* output) {
  const BinaryEpilogue& e = call.e;
  const size_t oc = call.s.out_c;
  switch (e.kind) {
    case OutputKind::F32: {
      OutputF32Params p{e.scale + c0, e.bias_f32 + c0, e.lo, e.hi};
      call.out.output_f32(n, y, p, static_cast<float*>(output) + pixel * oc + c0);
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

size_t row_stream_words(const ConvCall& call) {
  const size_t padded_w = call.p.pad_left + call.s.in_w + call.p.pad_right;
  return words_for_bits(padded_w * call.w.in_channels_per_group);
}

void build_row_streams(const ConvCall& call, const uint64_t* input, size_t row0, size_t rows, uint64_t* streams) {
  const size_t in_words = b1_words(call.s.in_c), icg = call.w.in_channels_per_group, groups = call.w.groups;
  const size_t words = row_stream_words(call);
  for (size_t r = row0; r < row0 + rows; ++r)
    for (size_t g = 0; g < groups; ++g) {
      uint64_t* stream = streams + (r * groups + g) * words;
      std::fill(stream, stream + words, 0);
      const uint64_t* pixel = input + r * call.s.in_w * in_words;
      for (size_t ix = 0; ix < call.s.in_w; ++ix, pixel += in_words)
        or_bit_run(pixel, g * icg, stream, (call.p.pad_left + ix) * icg, icg);
    }
}

namespace {

// Writes a patch row from runs of bits, each word once (no zeroing first, no read-modify-write).
class BitWriter {
 public:
  explicit BitWriter(uint64_t* out) : out_(out) {}
  // Appends the low n bits of v (n in [1, 64]; v's higher bits 0).
  void put(uint64_t v, size_t n) {
    acc_ |= v << fill_;
    if (fill_ + n < 64) {
      fill_ += n;
      return;
    }
    *out_++ = acc_;
    acc_ = fill_ == 0 ? 0 : v >> (64 - fill_);
    fill_ = fill_ + n - 64;
  }
  void zeros(size_t n) {
    for (; n > 64; n -= 64) put(0, 64);
    put(0, n);
  }
  // Appends `count` bits of src starting at bit `first`, reading only the words that hold them.
  void copy(const uint64_t* src, size_t first, size_t count) {
    for (; count > 0;) {
      const size_t n = count < 64 ? count : 64, shift = first % 64;
      const uint64_t* s = src + first / 64;
      uint64_t v = s[0] >> shift;
      if (shift + n > 64) v |= s[1] << (64 - shift);
      put(n < 64 ? v & ((uint64_t{1} << n) - 1) : v, n);
      first += n;
      count -= n;
    }
  }
  void finish() {
    if (fill_ != 0) *out_ = acc_;
  }

 private:
  uint64_t* out_;
  uint64_t acc_ = 0;
  size_t fill_ = 0;
};

}  // namespace

void im2col_from_streams(const ConvCall& call, const uint64_t* streams, size_t p0, size_t pn, size_t g,
                         uint64_t* rows) {
  // Locals: the rows are uint64_t, the same type as size_t, so every store through them would
  // otherwise make the compiler reload the geometry from memory.
  const size_t in_h = call.s.in_h, out_h = call.s.out_h, out_w = call.s.out_w;
  const size_t stride_h = call.p.stride_h, stride_w = call.p.stride_w, pad_top = call.p.pad_top;
  const size_t dilation_h = call.p.dilation_h, dilation_w = call.p.dilation_w;
  const size_t kernel_h = call.w.kernel_h, kernel_w = call.w.kernel_w, groups = call.w.groups;
  const size_t icg = call.w.in_channels_per_group, row_words = call.w.row_words, run = kernel_w * icg;
  const size_t words = row_stream_words(call);
  size_t ow = p0 % out_w, oh = (p0 / out_w) % out_h, n = p0 / (out_w * out_h);
  const size_t image_words = in_h * groups * words;
  if (run <= 64 && dilation_w == 1) {
    // The common case (icg <= 21 for a 3x3 kernel): each kernel row is one masked funnel shift.
    const uint64_t mask = run == 64 ? ~uint64_t{0} : (uint64_t{1} << run) - 1;
    for (size_t i = 0; i < pn; ++i, rows += row_words) {
      BitWriter out(rows);
      const uint64_t* image = streams + n * image_words + g * words;
      const size_t bit = ow * stride_w * icg, shift = bit % 64;
      for (size_t ky = 0, y = oh * stride_h; ky < kernel_h; ++ky, y += dilation_h) {
        uint64_t v = 0;
        if (y >= pad_top && y - pad_top < in_h) {  // else a padding row: 0 bits
          const uint64_t* src = image + (y - pad_top) * groups * words + bit / 64;
          v = src[0] >> shift;
          if (shift + run > 64) v |= src[1] << (64 - shift);
          v &= mask;
        }
        out.put(v, run);
      }
      out.finish();
      if (++ow == out_w) {
        ow = 0;
        if (++oh == out_h) oh = 0, ++n;
      }
    }
    return;
  }
  for (size_t i = 0; i < pn; ++i, rows += row_words) {
    BitWriter out(rows);
    const uint64_t* image = streams + n * image_words + g * words;
    for (size_t ky = 0, y = oh * stride_h; ky < kernel_h; ++ky, y += dilation_h) {
      if (y < pad_top || y - pad_top >= in_h) {
        out.zeros(run);  // a padding row
        continue;
      }
      const uint64_t* stream = image + (y - pad_top) * groups * words;
      // Stream pixel x is padded column x, i.e. input column x - pad_left.
      if (dilation_w == 1) {
        out.copy(stream, ow * stride_w * icg, run);
      } else {
        for (size_t kx = 0; kx < kernel_w; ++kx) out.copy(stream, (ow * stride_w + kx * dilation_w) * icg, icg);
      }
    }
    out.finish();
    if (++ow == out_w) {
      ow = 0;
      if (++oh == out_h) oh = 0, ++n;
    }
  }
}

void correct_zero_padding(const ConvCall& call, size_t pixel, size_t c0, size_t c1, int32_t* y) {
  const Conv2dShape& s = call.s;
  const size_t ow = pixel % s.out_w, oh = (pixel / s.out_w) % s.out_h;
  if (window_inside(s, call.w.kernel_h, call.w.kernel_w, call.p, oh, ow)) return;
  for_each_tap(call.w.kernel_h, call.w.kernel_w, call.p, oh, ow, [&](size_t t, ptrdiff_t iy, ptrdiff_t ix) {
    if (inside(s, iy, ix)) return;
    const int32_t* sums = call.w.tap_sums.data() + t * call.w.out_channels;
    for (size_t c = c0; c < c1; ++c) y[c - c0] -= sums[c];
  });
}

}  // namespace lowbit
