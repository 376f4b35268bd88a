// conv_tile.cc: see conv_tile.h.
#include "binary/conv_tile.h"

#include <algorithm>
#include <utility>

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

namespace {

// The geometry im2col_from_streams needs, as plain values: the rows are uint64_t, the same type as
// size_t, so every store through them would otherwise make the compiler reload it from memory.
struct StreamIm2col {
  size_t in_h, out_h, out_w, stride_h, stride_w, pad_top, dilation_h, dilation_w;
  size_t kernel_h, kernel_w, icg, row_words, run, words, row_pitch, image_pitch;

  explicit StreamIm2col(const ConvCall& call)
      : in_h(call.s.in_h),
        out_h(call.s.out_h),
        out_w(call.s.out_w),
        stride_h(call.p.stride_h),
        stride_w(call.p.stride_w),
        pad_top(call.p.pad_top),
        dilation_h(call.p.dilation_h),
        dilation_w(call.p.dilation_w),
        kernel_h(call.w.kernel_h),
        kernel_w(call.w.kernel_w),
        icg(call.w.in_channels_per_group),
        row_words(call.w.row_words),
        run(kernel_w * icg),
        words(row_stream_words(call)),
        row_pitch(call.w.groups * words),
        image_pitch(in_h * row_pitch) {}

  // Calls row(pixel's patch row, image streams of group g, oh, ow) for pixels [p0, p0 + pn).
  template <typename Row>
  void each_pixel(const uint64_t* streams, size_t p0, size_t pn, size_t g, uint64_t* rows, Row row) const {
    size_t ow = p0 % out_w, oh = (p0 / out_w) % out_h, n = p0 / (out_w * out_h);
    for (size_t i = 0; i < pn; ++i, rows += row_words) {
      row(rows, streams + n * image_pitch + g * words, oh, ow);
      if (++ow == out_w) {
        ow = 0;
        if (++oh == out_h) oh = 0, ++n;
      }
    }
  }
  // The stream of input row y - pad_top, or null for a padding row (0 bits).
  const uint64_t* stream(const uint64_t* image, size_t y) const {
    return y >= pad_top && y - pad_top < in_h ? image + (y - pad_top) * row_pitch : nullptr;
  }
};

// Kernel rows of at most kChunks * 64 bits (dilation 1 along w; icg <= 21 or 42 for a 3x3 kernel):
// each is kChunks masked funnel shifts, unrolled.
template <size_t kChunks>
void im2col_short_runs(const StreamIm2col& ge, const uint64_t* streams, size_t p0, size_t pn, size_t g,
                       uint64_t* rows) {
  const size_t last = ge.run - 64 * (kChunks - 1);  // bits of the last chunk, in [1, 64]
  const uint64_t last_mask = last == 64 ? ~uint64_t{0} : (uint64_t{1} << last) - 1;
  ge.each_pixel(streams, p0, pn, g, rows, [&](uint64_t* row, const uint64_t* image, size_t oh, size_t ow) {
    BitWriter out(row);
    const size_t bit = ow * ge.stride_w * ge.icg, shift = bit % 64;
    for (size_t ky = 0, y = oh * ge.stride_h; ky < ge.kernel_h; ++ky, y += ge.dilation_h) {
      const uint64_t* src = ge.stream(image, y);
      if (src) src += bit / 64;
      for (size_t c = 0; c < kChunks; ++c) {
        const size_t n = c + 1 < kChunks ? 64 : last;
        uint64_t v = 0;
        if (src) {
          v = src[c] >> shift;
          if (shift + n > 64) v |= src[c + 1] << (64 - shift);
          if (c + 1 == kChunks) v &= last_mask;
        }
        out.put(v, n);
      }
    }
    out.finish();
  });
}

}  // namespace

void im2col_from_streams(const ConvCall& call, const uint64_t* streams, size_t p0, size_t pn, size_t g,
                         uint64_t* rows) {
  const StreamIm2col ge(call);
  if (ge.dilation_w == 1 && ge.run <= 64) return im2col_short_runs<1>(ge, streams, p0, pn, g, rows);
  if (ge.dilation_w == 1 && ge.run <= 128) return im2col_short_runs<2>(ge, streams, p0, pn, g, rows);
  ge.each_pixel(streams, p0, pn, g, rows, [&](uint64_t* row, const uint64_t* image, size_t oh, size_t ow) {
    BitWriter out(row);
    for (size_t ky = 0, y = oh * ge.stride_h; ky < ge.kernel_h; ++ky, y += ge.dilation_h) {
      const uint64_t* src = ge.stream(image, y);
      if (!src) {
        out.zeros(ge.run);
      } else if (ge.dilation_w == 1) {
        // Stream pixel x is padded column x, i.e. input column x - pad_left.
        out.copy(src, ow * ge.stride_w * ge.icg, ge.run);
      } else {
        for (size_t kx = 0; kx < ge.kernel_w; ++kx)
          out.copy(src, (ow * ge.stride_w + kx * ge.dilation_w) * ge.icg, ge.icg);
      }
    }
    out.finish();
  });
}

namespace {

// Classes of the output positions along one axis by the kernel taps [lo, hi) that fall inside the
// input (taps outside that range read padding); class 0 is the full range. Returns the classes'
// ranges; class[i] is output position i's.
std::vector<std::pair<size_t, size_t>> classify_axis(size_t out, size_t in, size_t kernel, size_t stride,
                                                     size_t dilation, size_t pad, std::vector<uint32_t>& cls) {
  std::vector<std::pair<size_t, size_t>> ranges = {{0, kernel}};
  cls.resize(out);
  for (size_t o = 0; o < out; ++o) {
    size_t lo = 0, hi = kernel;
    while (lo < hi && o * stride + lo * dilation < pad) ++lo;
    while (hi > lo && o * stride + (hi - 1) * dilation >= pad + in) --hi;
    size_t k = 0;
    while (k < ranges.size() && ranges[k] != std::make_pair(lo, hi)) ++k;
    if (k == ranges.size()) ranges.emplace_back(lo, hi);
    cls[o] = static_cast<uint32_t>(k);
  }
  return ranges;
}

}  // namespace

void ZeroPadCorrections::build(const ConvCall& call) {
  const Conv2dShape& s = call.s;
  const Conv2dParams& p = call.p;
  const BinaryConv2dWeights& w = call.w;
  out_h_ = s.out_h, out_w_ = s.out_w, out_c_ = s.out_c;
  const auto rows = classify_axis(s.out_h, s.in_h, w.kernel_h, p.stride_h, p.dilation_h, p.pad_top, row_class_);
  const auto cols = classify_axis(s.out_w, s.in_w, w.kernel_w, p.stride_w, p.dilation_w, p.pad_left, col_class_);
  col_classes_ = cols.size();
  sums_.assign(rows.size() * cols.size() * out_c_, 0);
  for (size_t r = 0; r < rows.size(); ++r)
    for (size_t c = 0; c < cols.size(); ++c) {
      int32_t* sums = sums_.data() + (r * cols.size() + c) * out_c_;
      for (size_t ky = 0; ky < w.kernel_h; ++ky)
        for (size_t kx = 0; kx < w.kernel_w; ++kx) {
          const bool inside = ky >= rows[r].first && ky < rows[r].second && kx >= cols[c].first && kx < cols[c].second;
          if (inside) continue;
          const int32_t* tap = w.tap_sums.data() + (ky * w.kernel_w + kx) * out_c_;
          for (size_t o = 0; o < out_c_; ++o) sums[o] += tap[o];
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
