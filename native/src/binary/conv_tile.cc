// conv_tile.cc: see conv_tile.h.
#include "binary/conv_tile.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "binary/bit_copy.h"
#include "common/checked_math.h"
#include "common/conv_taps.h"

namespace lowbit {

void epilogue_rows(const ConvCall& call, const int32_t* y, size_t ldy, size_t p0, size_t pn, size_t c0, size_t n,
                   void* output) {
  const BinaryEpilogue& e = call.e;
  const size_t oc = call.s.out_c;
  // One switch and one parameter block per tile: with 16 channels a row is only two vectors.
  switch (e.kind) {
    case OutputKind::F32: {
      // Plain f32 output too: the fused transform with no options is output_f32 operation for
      // operation (kernels.h), and takes the whole tile per call. c0 is a multiple of 64 (channel
      // chunks), so the bits start at a word.
      float* out = static_cast<float*>(output) + p0 * oc + c0;
      const size_t words = b1_words(oc);
      OutputF32FusedParams p{e.scale + c0,
                             e.bias_f32 + c0,
                             e.residual ? e.residual + p0 * oc + c0 : nullptr,
                             e.prelu_slope ? e.prelu_slope + c0 : nullptr,
                             e.prelu_slope ? e.prelu_input_bias + c0 : nullptr,
                             e.prelu_slope ? e.prelu_output_bias + c0 : nullptr,
                             e.lo,
                             e.hi,
                             e.sign_output ? e.sign_threshold + c0 : nullptr,
                             oc};
      call.out.output_f32_fused(pn, n, y, ldy, p, out, oc,
                                e.sign_output ? e.sign_output + p0 * words + c0 / 64 : nullptr, words);
      break;
    }
    case OutputKind::S8: {
      RequantizeParams p{e.mult + c0, e.shift + c0, e.bias_s32 + c0, e.qmin, e.qmax};
      int8_t* out = static_cast<int8_t*>(output) + p0 * oc + c0;
      call.out.output_s8(pn, n, y, ldy, p, out, oc);
      break;
    }
    case OutputKind::B1: {
      OutputB1Params p{e.threshold + c0, e.flip + c0};
      const size_t words = b1_words(oc);
      uint64_t* out = static_cast<uint64_t*>(output) + p0 * words + c0 / 64;
      for (size_t i = 0; i < pn; ++i) call.out.output_b1(n, y + i * ldy, p, out + i * words);
      break;
    }
  }
}

void epilogue_row(const ConvCall& call, const int32_t* y, size_t pixel, size_t c0, size_t n, void* output) {
  epilogue_rows(call, y, 0, pixel, 1, c0, n, output);
}

namespace {

// The patch row of the output pixel at (n, oh, ow) (im2col_rows).
void im2col_at(const ConvCall& call, const uint64_t* input, size_t n, size_t oh, size_t ow, size_t g, uint64_t* row) {
  const Conv2dShape& s = call.s;
  const Conv2dParams& p = call.p;
  const BinaryConv2dWeights& w = call.w;
  const size_t in_words = b1_words(s.in_c);
  const size_t icg = w.in_channels_per_group;
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

}  // namespace

void im2col_rows(const ConvCall& call, const uint64_t* input, size_t p0, size_t pn, size_t g, uint64_t* rows) {
  const size_t out_w = call.s.out_w, out_h = call.s.out_h;
  size_t ow = p0 % out_w, oh = (p0 / out_w) % out_h, n = p0 / (out_w * out_h);
  for (size_t i = 0; i < pn; ++i, rows += call.w.row_words) {
    im2col_at(call, input, n, oh, ow, g, rows);
    if (++ow < out_w) continue;  // the position steps along: no divisions per pixel
    ow = 0;
    if (++oh < out_h) continue;
    oh = 0;
    ++n;
  }
}

namespace {

// Writes a row of bits from runs of bits, each word once (no zeroing first, no read-modify-write).
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
  void zeros(size_t n) {
    for (; n > 64; n -= 64) put(0, 64);
    if (n > 0) put(0, n);
  }
  // Writes the last partial word; returns the end of what was written.
  uint64_t* finish() {
    if (fill_ != 0) *out_++ = acc_;
    return out_;
  }

 private:
  uint64_t* out_;
  uint64_t acc_ = 0;
  size_t fill_ = 0;
};

}  // namespace

namespace {

// The `bytes` bytes of each of `count` pixels (`stride` bytes apart in src) back to back at dst; the
// common pixel sizes (16, 32, 64 channels) as fixed moves, not a size test per pixel.
template <size_t kBytes>
void copy_pixels_fixed(const unsigned char* src, size_t stride, size_t count, unsigned char* dst) {
  for (size_t i = 0; i < count; ++i, src += stride, dst += kBytes) std::memcpy(dst, src, kBytes);
}

void copy_pixels(const unsigned char* src, size_t stride, size_t count, size_t bytes, unsigned char* dst) {
  switch (bytes) {
    case 2:
      return copy_pixels_fixed<2>(src, stride, count, dst);
    case 4:
      return copy_pixels_fixed<4>(src, stride, count, dst);
    case 8:
      return copy_pixels_fixed<8>(src, stride, count, dst);
    default:
      for (size_t i = 0; i < count; ++i, src += stride, dst += bytes) std::memcpy(dst, src, bytes);
  }
}

}  // namespace

size_t row_stream_words(const ConvCall& call) {
  const size_t padded_w = call.p.pad_left + call.s.in_w + call.p.pad_right;
  return words_for_bits(padded_w * call.w.in_channels_per_group) + 1;
}

size_t row_stream_rows(const ConvCall& call) {
  return call.s.batch * (call.p.pad_top + call.s.in_h + call.p.pad_bottom);
}

void build_row_streams(const ConvCall& call, const uint64_t* input, size_t row0, size_t rows, uint64_t* streams) {
  const size_t in_w = call.s.in_w, in_h = call.s.in_h, in_words = b1_words(call.s.in_c);
  const size_t icg = call.w.in_channels_per_group, groups = call.w.groups, pad_top = call.p.pad_top;
  const size_t pad_left = call.p.pad_left, pad_right = call.p.pad_right;
  const size_t words = row_stream_words(call), padded_h = pad_top + in_h + call.p.pad_bottom;
  for (size_t r = row0; r < row0 + rows; ++r) {
    uint64_t* stream = streams + r * groups * words;
    const size_t n = r / padded_h, py = r % padded_h;
    if (py < pad_top || py - pad_top >= in_h) {  // a padding row
      std::fill(stream, stream + groups * words, 0);
      continue;
    }
    const uint64_t* row = input + (n * in_h + py - pad_top) * in_w * in_words;
    if (icg % 8 == 0) {  // whole bytes: copy each pixel's bytes of each group
      const size_t bytes = icg / 8;
      for (size_t g = 0; g < groups; ++g, stream += words) {
        auto* out = reinterpret_cast<unsigned char*>(stream);
        std::memset(out, 0, pad_left * bytes);
        out += pad_left * bytes;
        const auto* src = reinterpret_cast<const unsigned char*>(row) + g * bytes;
        copy_pixels(src, in_words * 8, in_w, bytes, out);
        out += in_w * bytes;
        std::memset(out, 0, reinterpret_cast<unsigned char*>(stream + words) - out);
      }
      continue;
    }
    for (size_t g = 0; g < groups; ++g, stream += words) {
      BitWriter out(stream);
      out.zeros(pad_left * icg);
      for (size_t ix = 0; ix < in_w; ++ix) out.copy(row + ix * in_words, g * icg, icg);
      out.zeros(pad_right * icg);
      std::fill(out.finish(), stream + words, 0);  // the spare word
    }
  }
}

namespace {

// The first word of the stream (padded row, padded column) of output pixels p0, p0 + 1, ... reads
// at kernel tap (0, 0), as a bit offset from the streams' start, stepping through the pixels.
class StreamCursor {
 public:
  StreamCursor(const ConvCall& call, size_t p0)
      : out_w_(call.s.out_w),
        out_h_(call.s.out_h),
        col_step_(call.p.stride_w * call.w.in_channels_per_group),
        row_step_(call.p.stride_h * call.w.groups * row_stream_words(call) * 64),
        image_step_((call.p.pad_top + call.s.in_h + call.p.pad_bottom) * call.w.groups * row_stream_words(call) * 64),
        ow_(p0 % out_w_),
        oh_((p0 / out_w_) % out_h_) {
    row_bit_ = (p0 / (out_w_ * out_h_)) * image_step_ + oh_ * row_step_;
  }
  size_t bit() const { return row_bit_ + ow_ * col_step_; }
  void next() {
    if (++ow_ < out_w_) return;
    ow_ = 0;
    row_bit_ += row_step_;
    if (++oh_ < out_h_) return;
    // The next image: its first row, past this image's last rows that no output row started at
    // (or back, where the stride passes the end: unsigned arithmetic wraps, the sum is exact).
    oh_ = 0;
    row_bit_ += image_step_ - out_h_ * row_step_;
  }

 private:
  size_t out_w_, out_h_, col_step_, row_step_, image_step_, ow_, oh_, row_bit_ = 0;
};

// 64 bits of a stream from bit `bit` on (the spare word at each stream's end makes src[1] readable).
inline uint64_t load64(const uint64_t* streams, size_t bit) {
  const uint64_t* src = streams + bit / 64;
  const size_t shift = bit % 64;
  return (src[0] >> shift) | ((src[1] << 1) << (63 - shift));
}

// Dilation 1 along w, kernel rows of at most kChunks * 64 bits (icg <= 21 or 42 for a 3x3 kernel):
// each kernel row is kChunks funnel shifts, appended to the patch row in a register.
template <size_t kChunks>
void im2col_short_runs(const ConvCall& call, const uint64_t* streams, size_t p0, size_t pn, size_t g, uint64_t* rows) {
  const size_t kernel_h = call.w.kernel_h, row_words = call.w.row_words;
  const size_t last = call.w.kernel_w * call.w.in_channels_per_group - 64 * (kChunks - 1);  // in [1, 64]
  const size_t ky_step = call.p.dilation_h * call.w.groups * row_stream_words(call) * 64;
  const uint64_t last_mask = last == 64 ? ~uint64_t{0} : (uint64_t{1} << last) - 1;
  const size_t group_bit = g * row_stream_words(call) * 64;
  StreamCursor at(call, p0);
  for (size_t i = 0; i < pn; ++i, rows += row_words, at.next()) {
    uint64_t* out = rows;
    uint64_t acc = 0;
    size_t fill = 0, bit = at.bit() + group_bit;
    for (size_t ky = 0; ky < kernel_h; ++ky, bit += ky_step)
      for (size_t c = 0; c < kChunks; ++c) {
        const bool is_last = c + 1 == kChunks;
        const size_t n = is_last ? last : 64;
        const uint64_t v = is_last ? load64(streams, bit + 64 * c) & last_mask : load64(streams, bit + 64 * c);
        acc |= v << fill;
        fill += n;
        if (fill >= 64) {
          *out++ = acc;
          fill -= 64;
          acc = fill == 0 ? 0 : v >> (n - fill);
        }
      }
    if (fill != 0) *out = acc;
  }
}

// Input channels a multiple of 8 (16, 24, 32, ...) and dilation 1 along w: every run starts at a
// byte, so a kernel row is a byte copy, done in 8-byte loads and stores that may spill past the run
// (the next run, or the next row, overwrites the spill; the spare word at each stream's end keeps
// the loads inside). kChunks: 8-byte moves per kernel row, kKernelH: kernel rows; 0 when only known
// at run time.
template <size_t kChunks, size_t kKernelH>
void im2col_bytes(const ConvCall& call, const uint64_t* streams, size_t p0, size_t pn, size_t g, uint64_t* rows) {
  const size_t kernel_h = kKernelH != 0 ? kKernelH : call.w.kernel_h, row_bytes = call.w.row_words * 8;
  const size_t run = call.w.kernel_w * call.w.in_channels_per_group / 8, used = kernel_h * run;
  const size_t chunks = kChunks != 0 ? kChunks : (run + 7) / 8;
  const size_t ky_step = call.p.dilation_h * call.w.groups * row_stream_words(call) * 8;
  const size_t group_byte = g * row_stream_words(call) * 8;
  const auto* bytes = reinterpret_cast<const unsigned char*>(streams);
  auto* out = reinterpret_cast<unsigned char*>(rows);
  const uint64_t zero = 0;
  StreamCursor at(call, p0);
  for (size_t i = 0; i < pn; ++i, out += row_bytes, at.next()) {
    const unsigned char* src = bytes + at.bit() / 8 + group_byte;
    unsigned char* dst = out;
    for (size_t ky = 0; ky < kernel_h; ++ky, src += ky_step, dst += run)
      for (size_t c = 0; c < chunks; ++c) std::memcpy(dst + 8 * c, src + 8 * c, 8);
    std::memcpy(out + used, &zero, 8);  // the padding bits of the last word (row_bytes - used < 8)
  }
}

}  // namespace

void im2col_from_streams(const ConvCall& call, const uint64_t* streams, size_t p0, size_t pn, size_t g,
                         uint64_t* rows) {
  const size_t icg = call.w.in_channels_per_group, kernel_w = call.w.kernel_w, dilation_w = call.p.dilation_w;
  if (dilation_w == 1 && icg % 8 == 0) {
    const size_t run = kernel_w * icg / 8;
    const bool three = call.w.kernel_h == 3;  // 3x3 kernels: straight-line code per pixel
    if (run <= 8)
      return three ? im2col_bytes<1, 3>(call, streams, p0, pn, g, rows)
                   : im2col_bytes<1, 0>(call, streams, p0, pn, g, rows);
    if (run <= 16)
      return three ? im2col_bytes<2, 3>(call, streams, p0, pn, g, rows)
                   : im2col_bytes<2, 0>(call, streams, p0, pn, g, rows);
    return im2col_bytes<0, 0>(call, streams, p0, pn, g, rows);
  }
  if (dilation_w == 1 && kernel_w * icg <= 64) return im2col_short_runs<1>(call, streams, p0, pn, g, rows);
  if (dilation_w == 1 && kernel_w * icg <= 128) return im2col_short_runs<2>(call, streams, p0, pn, g, rows);
  const size_t kernel_h = call.w.kernel_h, row_words = call.w.row_words;
  const size_t ky_step = call.p.dilation_h * call.w.groups * row_stream_words(call) * 64;
  const size_t group_bit = g * row_stream_words(call) * 64;
  StreamCursor at(call, p0);
  for (size_t i = 0; i < pn; ++i, rows += row_words, at.next()) {
    BitWriter out(rows);
    size_t bit = at.bit() + group_bit;
    for (size_t ky = 0; ky < kernel_h; ++ky, bit += ky_step) {
      if (dilation_w == 1) {
        out.copy(streams, bit, kernel_w * icg);
      } else {
        for (size_t kx = 0; kx < kernel_w; ++kx) out.copy(streams, bit + kx * dilation_w * icg, icg);
      }
    }
    out.finish();
  }
}

namespace {

// Classes of the output positions along one axis by the kernel taps [lo, hi) that fall inside the
// input (taps outside that range read padding); class 0 is the full range. Fills the classes'
// ranges (reused, so a steady stream of calls allocates nothing); class[i] is output position i's.
void classify_axis(size_t out, size_t in, size_t kernel, size_t stride, size_t dilation, size_t pad,
                   std::vector<uint32_t>& cls, std::vector<std::pair<size_t, size_t>>& ranges) {
  ranges.assign(1, {0, kernel});
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
}

}  // namespace

void ZeroPadCorrections::build(const ConvCall& call) {
  const Conv2dShape& s = call.s;
  const Conv2dParams& p = call.p;
  const BinaryConv2dWeights& w = call.w;
  out_h_ = s.out_h, out_w_ = s.out_w, out_c_ = s.out_c;
  auto& rows = row_ranges_;
  auto& cols = col_ranges_;
  classify_axis(s.out_h, s.in_h, w.kernel_h, p.stride_h, p.dilation_h, p.pad_top, row_class_, rows);
  classify_axis(s.out_w, s.in_w, w.kernel_w, p.stride_w, p.dilation_w, p.pad_left, col_class_, cols);
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
