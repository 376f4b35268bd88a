// elementwise.cc: the model format's small operators (see elementwise.h).
#include "graph/elementwise.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/checked_math.h"
#include "cpu/dispatch.h"
#include "integer/quantize.h"
#include "lowbit/qops.h"
#include "runtime/thread_pool.h"

namespace lowbit {
namespace {

// Rows of `width` values in blocks of about 64 Ki values over the pool: f(first_row, end_row).
template <typename F>
void for_rows(size_t rows, size_t width, F f) {
  const size_t block = std::max<size_t>(1, (size_t{1} << 16) / std::max<size_t>(width, 1));
  parallel_for((rows + block - 1) / block, [&](size_t b) { f(b * block, std::min(rows, (b + 1) * block)); });
}

inline int32_t load8(const uint8_t* p, size_t i, bool is_signed) {
  return is_signed ? static_cast<int32_t>(static_cast<int8_t>(p[i])) : static_cast<int32_t>(p[i]);
}

// Packs the bits bit(ch) of one row of c channels into words_for_bits(c) words, tail bits zero.
template <typename Bit>
inline void pack_row(size_t c, uint64_t* out, Bit bit) {
  const size_t words = words_for_bits(c);
  for (size_t w = 0; w < words; ++w) {
    uint64_t v = 0;
    const size_t end = std::min(c, (w + 1) * 64);
    for (size_t ch = w * 64; ch < end; ++ch) v |= uint64_t{bit(ch)} << (ch % 64);
    out[w] = v;
  }
}

}  // namespace

void quantize_chw_to_hwc(const float* x, size_t batch, size_t c, size_t hw, float scale, int32_t zero_point, int32_t lo,
                         int32_t hi, uint8_t* out) {
  for_rows(batch * hw, c, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const float* src = x + (r / hw) * c * hw + r % hw;
      for (size_t ch = 0; ch < c; ++ch) out[r * c + ch] = quantize_value(src[ch * hw], scale, zero_point, lo, hi);
    }
  });
}

void dequantize_hwc_to_chw(const uint8_t* q, bool is_signed, size_t batch, size_t hw, size_t c, float scale,
                           int32_t zero_point, float* out) {
  for_rows(batch * hw, c, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      float* dst = out + (r / hw) * c * hw + r % hw;
      for (size_t ch = 0; ch < c; ++ch) dst[ch * hw] = dequantize_value(q[r * c + ch], is_signed, scale, zero_point);
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
  const size_t words = words_for_bits(c);
  for_rows(rows, c, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r)
      pack_row(c, out + r * words, [&](size_t ch) { return load8(q, r * c + ch, is_signed) < zero_point; });
  });
}

namespace {
// The 8 +-1 bytes of each bit pattern, for unpacking a byte of bits with one 8-byte copy.
struct UnpackTable {
  int8_t values[256][8];
  UnpackTable() {
    for (int b = 0; b < 256; ++b)
      for (int j = 0; j < 8; ++j) values[b][j] = (b >> j) & 1 ? -1 : 1;
  }
};
const UnpackTable unpack_table;
}  // namespace

void unpack_b1(const uint64_t* bits, size_t rows, size_t c, int8_t* out) {
  const size_t words = words_for_bits(c);
  for_rows(rows, c, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const uint64_t* row = bits + r * words;
      int8_t* dst = out + r * c;
      size_t ch = 0;
      for (; ch + 8 <= c; ch += 8) std::memcpy(dst + ch, unpack_table.values[(row[ch / 64] >> (ch % 64)) & 0xff], 8);
      for (; ch < c; ++ch) dst[ch] = (row[ch / 64] >> (ch % 64)) & 1 ? -1 : 1;
    }
  });
}

void prelu_8bit(const uint8_t* x, size_t rows, size_t c, const PreluParams& p, uint8_t* out) {
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
