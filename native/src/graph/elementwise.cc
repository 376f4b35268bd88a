// elementwise.cc: the model format's small operators (see elementwise.h).
#include "graph/elementwise.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/checked_math.h"
#include "cpu/dispatch.h"
#include "lowbit/qops.h"
#include "runtime/thread_pool.h"

namespace lowbit {
namespace {

inline int32_t load8(const uint8_t* p, size_t i, bool is_signed) {
  return is_signed ? static_cast<int32_t>(static_cast<int8_t>(p[i])) : static_cast<int32_t>(p[i]);
}

// Tiles of kTilePixels pixels x kTileChannels channels for the layout-changing conversions: the
// per-value rule runs on contiguous runs of one channel (vectorized), the transpose in L1.
constexpr size_t kTilePixels = 64, kTileChannels = 64;

// dst[i * dst_stride + k] = src[k * src_stride + i] for k < rows, i < cols, the longer side in the
// inner loop; a side of 1-4 (image channels) unrolled at compile time. Out of line with restrict
// pointers and by-value sizes: inside the callers' lambdas a byte store could alias the captured
// sizes, which made the compiler reload them at every byte.
template <size_t Rows>
void transpose_few_rows(const uint8_t* __restrict src, size_t src_stride, size_t cols, uint8_t* __restrict dst,
                        size_t dst_stride) {
  for (size_t i = 0; i < cols; ++i)
    for (size_t k = 0; k < Rows; ++k) dst[i * dst_stride + k] = src[k * src_stride + i];
}
template <size_t Cols>
void transpose_few_cols(const uint8_t* __restrict src, size_t src_stride, size_t rows, uint8_t* __restrict dst,
                        size_t dst_stride) {
  for (size_t k = 0; k < rows; ++k)
    for (size_t i = 0; i < Cols; ++i) dst[i * dst_stride + k] = src[k * src_stride + i];
}
__attribute__((noinline)) void transpose_bytes(const uint8_t* __restrict src, size_t src_stride, size_t rows,
                                               size_t cols, uint8_t* __restrict dst, size_t dst_stride) {
  switch (rows) {
    case 1:
      return transpose_few_rows<1>(src, src_stride, cols, dst, dst_stride);
    case 2:
      return transpose_few_rows<2>(src, src_stride, cols, dst, dst_stride);
    case 3:
      return transpose_few_rows<3>(src, src_stride, cols, dst, dst_stride);
    case 4:
      return transpose_few_rows<4>(src, src_stride, cols, dst, dst_stride);
  }
  switch (cols) {
    case 1:
      return transpose_few_cols<1>(src, src_stride, rows, dst, dst_stride);
    case 2:
      return transpose_few_cols<2>(src, src_stride, rows, dst, dst_stride);
    case 3:
      return transpose_few_cols<3>(src, src_stride, rows, dst, dst_stride);
    case 4:
      return transpose_few_cols<4>(src, src_stride, rows, dst, dst_stride);
  }
  if (rows >= cols) {
    for (size_t i = 0; i < cols; ++i)
      for (size_t k = 0; k < rows; ++k) dst[i * dst_stride + k] = src[k * src_stride + i];
  } else {
    for (size_t k = 0; k < rows; ++k)
      for (size_t i = 0; i < cols; ++i) dst[i * dst_stride + k] = src[k * src_stride + i];
  }
}

// f(n, p0, p1) over every sample's pixel range, in blocks of whole tiles of about 64 Ki values.
template <typename F>
void for_pixel_blocks(size_t batch, size_t hw, size_t c, F f) {
  const size_t block = std::max<size_t>(1, (size_t{1} << 16) / (kTilePixels * std::max<size_t>(c, 1))) * kTilePixels;
  const size_t blocks = (hw + block - 1) / block;
  parallel_for(batch * blocks, [&](size_t task) {
    const size_t n = task / blocks, p0 = (task % blocks) * block;
    f(n, p0, std::min(hw, p0 + block));
  });
}

}  // namespace

void quantize_chw_to_hwc(const float* x, size_t batch, size_t c, size_t hw, float scale, int32_t zero_point, int32_t lo,
                         int32_t hi, uint8_t* out) {
  const QuantizeF32Fn quantize = eltwise_kernels().quantize_f32;
  if (hw == 1 || c == 1) {  // the two layouts coincide: one contiguous run
    for_rows(batch * c * hw, 1,
             [&](size_t i0, size_t i1) { quantize(i1 - i0, x + i0, scale, zero_point, lo, hi, out + i0); });
    return;
  }
  for_pixel_blocks(batch, hw, c, [&](size_t n, size_t p0, size_t p1) {
    uint8_t tile[kTileChannels * kTilePixels];
    for (size_t t0 = p0; t0 < p1; t0 += kTilePixels) {
      const size_t pixels = std::min(kTilePixels, p1 - t0);
      for (size_t c0 = 0; c0 < c; c0 += kTileChannels) {
        const size_t channels = std::min(kTileChannels, c - c0);
        for (size_t k = 0; k < channels; ++k)
          quantize(pixels, x + (n * c + c0 + k) * hw + t0, scale, zero_point, lo, hi, tile + k * kTilePixels);
        transpose_bytes(tile, kTilePixels, channels, pixels, out + (n * hw + t0) * c + c0, c);
      }
    }
  });
}

void dequantize_hwc_to_chw(const uint8_t* q, bool is_signed, size_t batch, size_t hw, size_t c, float scale,
                           int32_t zero_point, float* out) {
  const Dequantize8Fn dequantize = eltwise_kernels().dequantize8;
  const UnsignedReading in = unsigned_reading(is_signed, zero_point);
  if (hw == 1 || c == 1) {  // the two layouts coincide: one contiguous run
    for_rows(batch * c * hw, 1,
             [&](size_t i0, size_t i1) { dequantize(i1 - i0, q + i0, in.mask, in.zero, scale, out + i0); });
    return;
  }
  for_pixel_blocks(batch, hw, c, [&](size_t n, size_t p0, size_t p1) {
    uint8_t tile[kTileChannels * kTilePixels];
    for (size_t t0 = p0; t0 < p1; t0 += kTilePixels) {
      const size_t pixels = std::min(kTilePixels, p1 - t0);
      for (size_t c0 = 0; c0 < c; c0 += kTileChannels) {
        const size_t channels = std::min(kTileChannels, c - c0);
        const uint8_t* src = q + (n * hw + t0) * c + c0;
        transpose_bytes(src, c, pixels, channels, tile, kTilePixels);
        for (size_t k = 0; k < channels; ++k)
          dequantize(pixels, tile + k * kTilePixels, in.mask, in.zero, scale, out + (n * c + c0 + k) * hw + t0);
      }
    }
  });
}

void transpose_hwc_to_chw(const float* x, size_t batch, size_t hw, size_t c, float* out) {
  for_rows(batch * hw, c, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      float* dst = out + (r / hw) * c * hw + r % hw;
      for (size_t ch = 0; ch < c; ++ch) dst[ch * hw] = x[r * c + ch];
    }
  });
}

void threshold_s32(const int32_t* acc, size_t rows, size_t c, const int32_t* threshold, const uint8_t* flip,
                   uint64_t* out) {
  // The binary layers' b1 epilogue is this very operation, vectorized per ISA.
  const OutputB1Fn output_b1 = output_kernels().output_b1;
  const OutputB1Params params{threshold, flip};
  const size_t words = words_for_bits(c);
  for_rows(rows, c, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) output_b1(c, acc + r * c, params, out + r * words);
  });
}

void affine_s32_to_chw(const int32_t* acc, size_t batch, size_t hw, size_t c, const float* scale, const float* bias,
                       float lo, float hi, float* out) {
  for_rows(batch * hw, c, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      float* dst = out + (r / hw) * c * hw + r % hw;
      for (size_t ch = 0; ch < c; ++ch)
        dst[ch * hw] = std::clamp(static_cast<float>(acc[r * c + ch]) * scale[ch] + bias[ch], lo, hi);
    }
  });
}

void sign_8bit(const uint8_t* q, bool is_signed, size_t rows, size_t c, int32_t zero_point, uint64_t* out) {
  // q < zero_point on the kernels' unsigned reading (q + 128 for int8).
  const Sign8Fn sign8 = eltwise_kernels().sign8;
  const UnsignedReading in = unsigned_reading(is_signed, zero_point);
  const size_t words = words_for_bits(c);
  for_rows(rows, c, [&](size_t r0, size_t r1) { sign8(r1 - r0, c, q + r0 * c, in.mask, in.zero, out + r0 * words); });
}

void unpack_b1(const uint64_t* bits, size_t rows, size_t c, int8_t* out) {
  const UnpackB1Fn unpack = eltwise_kernels().unpack_b1;
  const size_t words = words_for_bits(c);
  for_rows(rows, c, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) unpack(c, bits + r * words, out + r * c);
  });
}

void unpack_b1_f32(const uint64_t* bits, size_t rows, size_t c, float* out) {
  const UnpackB1Fn unpack = eltwise_kernels().unpack_b1;
  const size_t words = words_for_bits(c);
  for_rows(rows, c, [&](size_t r0, size_t r1) {
    std::vector<int8_t> row(c);  // one row's +-1 bytes, widened while in L1
    for (size_t r = r0; r < r1; ++r) {
      unpack(c, bits + r * words, row.data());
      for (size_t ch = 0; ch < c; ++ch) out[r * c + ch] = static_cast<float>(row[ch]);
    }
  });
}

void prelu_8bit(const uint8_t* x, size_t rows, size_t c, const PreluParams& p, uint8_t* out) {
  // The slopes in the kernels' 32-bit form where every shift allows it (eltwise/kernels.h).
  std::vector<int32_t> slopes(4 * c);
  const UnsignedReading in = unsigned_reading(p.in_signed, p.in_zero_point);
  Prelu8Params k{};
  k.mult_pos = slopes.data(), k.shift_pos = slopes.data() + c;
  k.mult_neg = slopes.data() + 2 * c, k.shift_neg = slopes.data() + 3 * c;
  k.mask = in.mask, k.zero = in.zero, k.out_zero = p.out_zero_point, k.lo = p.lo, k.hi = p.hi;
  bool fits = true;
  for (size_t ch = 0; ch < c && fits; ++ch)
    fits = rescale32_for(p.mult_pos[ch], p.shift_pos[ch], &slopes[ch], &slopes[c + ch]) &&
           rescale32_for(p.mult_neg[ch], p.shift_neg[ch], &slopes[2 * c + ch], &slopes[3 * c + ch]);
  if (fits) {
    const Prelu8Fn prelu8 = eltwise_kernels().prelu8;
    for_rows(rows, c, [&](size_t r0, size_t r1) { prelu8(r1 - r0, c, x + r0 * c, k, out + r0 * c); });
    return;
  }
  for_rows(rows, c, [&](size_t r0, size_t r1) {
    for (size_t i = r0 * c; i < r1 * c; ++i) {
      const size_t ch = i % c;
      const int64_t v = load8(x, i, p.in_signed) - p.in_zero_point;
      const int64_t y = v >= 0 ? dyadic_rescale(v, p.mult_pos[ch], p.shift_pos[ch])
                               : dyadic_rescale(v, p.mult_neg[ch], p.shift_neg[ch]);
      out[i] = static_cast<uint8_t>(std::clamp<int64_t>(y + p.out_zero_point, p.lo, p.hi));
    }
  });
}

void softmax_f32(const float* x, size_t rows, size_t c, float* out) {
  for_rows(rows, c, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const float* src = x + r * c;
      float* dst = out + r * c;
      // Subtracting the maximum keeps every exp() in (0, 1]: no overflow for any finite input.
      float max = src[0];
      for (size_t i = 1; i < c; ++i) max = std::max(max, src[i]);
      double sum = 0;
      for (size_t i = 0; i < c; ++i) sum += std::exp(static_cast<double>(src[i]) - max);
      for (size_t i = 0; i < c; ++i) dst[i] = static_cast<float>(std::exp(static_cast<double>(src[i]) - max) / sum);
    }
  });
}

void pad_pixels(const uint8_t* x, size_t images, size_t h, size_t w, size_t pixel_bytes, const size_t pads[4],
                const uint8_t* fill, uint8_t* out) {
  const size_t oh = h + pads[0] + pads[2], ow = w + pads[1] + pads[3];
  for_rows(images * oh, ow * pixel_bytes, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      uint8_t* dst = out + r * ow * pixel_bytes;
      const size_t y = r % oh;
      const bool inside = y >= pads[0] && y < pads[0] + h;
      for (size_t x0 = 0; x0 < ow; ++x0)
        if (!inside || x0 < pads[1] || x0 >= pads[1] + w) std::memcpy(dst + x0 * pixel_bytes, fill, pixel_bytes);
      if (inside)
        std::memcpy(dst + pads[1] * pixel_bytes, x + ((r / oh) * h + (y - pads[0])) * w * pixel_bytes, w * pixel_bytes);
    }
  });
}

}  // namespace lowbit
