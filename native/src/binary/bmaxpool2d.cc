// bmaxpool2d.cc: max pooling on packed tensors. The max of +-1 values is -1 only when all are
// -1, so the pooled sign bits are the AND of the window's words; padded taps are skipped.
#include <algorithm>
#include <string>

#include "common/checked_math.h"
#include "lowbit/binary.h"
#include "lowbit/error.h"
#include "runtime/thread_pool.h"

namespace lowbit {

Conv2dShape bmaxpool2d_shape(size_t batch, size_t in_h, size_t in_w, size_t channels, const Pool2dParams& p) {
  if (batch == 0 || in_h == 0 || in_w == 0 || channels == 0)
    fail(ErrorKind::Shape, "input: every dimension of [N, H, W, C] must be at least 1");
  if (p.kernel_h == 0 || p.kernel_w == 0) fail(ErrorKind::Range, "pool kernel must be at least 1x1");
  if (p.stride_h == 0 || p.stride_w == 0) fail(ErrorKind::Range, "strides must be at least 1");
  if (p.pad_top >= p.kernel_h || p.pad_bottom >= p.kernel_h || p.pad_left >= p.kernel_w || p.pad_right >= p.kernel_w)
    fail(ErrorKind::Range, "pads [" + std::to_string(p.pad_top) + ", " + std::to_string(p.pad_left) + ", " +
                               std::to_string(p.pad_bottom) + ", " + std::to_string(p.pad_right) +
                               "] must each be smaller than the pool kernel (" + std::to_string(p.kernel_h) + " x " +
                               std::to_string(p.kernel_w) + ")");
  const size_t ph = checked_add(checked_add(in_h, p.pad_top, "padded height"), p.pad_bottom, "padded height");
  const size_t pw = checked_add(checked_add(in_w, p.pad_left, "padded width"), p.pad_right, "padded width");
  if (ph < p.kernel_h || pw < p.kernel_w) fail(ErrorKind::Shape, "pool kernel is larger than the padded input");
  Conv2dShape s{batch,   in_h, in_w, channels, (ph - p.kernel_h) / p.stride_h + 1, (pw - p.kernel_w) / p.stride_w + 1,
                channels};
  checked_mul(checked_mul(checked_mul(batch, in_h, "input size"), in_w, "input size"), b1_words(channels) * 8,
              "input size");
  checked_mul(checked_mul(checked_mul(batch, s.out_h, "output size"), s.out_w, "output size"), b1_words(channels) * 8,
              "output size");
  return s;
}

namespace {

// One output row (n, oh): each pixel's words are the AND of its window's taps inside the image.
void pool_row(const uint64_t* input, const Conv2dShape& s, const Pool2dParams& p, size_t words, size_t row,
              uint64_t* output) {
  const size_t n = row / s.out_h, oh = row % s.out_h;
  // Windows never lie fully in the padding (pad < kernel), so y0 < y1 and x0 < x1.
  const size_t y0 = oh * p.stride_h < p.pad_top ? 0 : oh * p.stride_h - p.pad_top;
  const size_t y1 = std::min(s.in_h, oh * p.stride_h + p.kernel_h - p.pad_top);
  for (size_t ow = 0; ow < s.out_w; ++ow) {
    const size_t x0 = ow * p.stride_w < p.pad_left ? 0 : ow * p.stride_w - p.pad_left;
    const size_t x1 = std::min(s.in_w, ow * p.stride_w + p.kernel_w - p.pad_left);
    uint64_t* out = output + (row * s.out_w + ow) * words;
    for (size_t w = 0; w < words; ++w) out[w] = ~uint64_t{0};
    for (size_t iy = y0; iy < y1; ++iy)
      for (size_t ix = x0; ix < x1; ++ix) {
        const uint64_t* in = input + ((n * s.in_h + iy) * s.in_w + ix) * words;
        for (size_t w = 0; w < words; ++w) out[w] &= in[w];
      }
  }
}

}  // namespace

void bmaxpool2d(const uint64_t* input, const Conv2dShape& s, const Pool2dParams& p, uint64_t* output) {
  const size_t words = b1_words(s.in_c);
  // Blocks of output rows per task (a tap's AND, with its addressing, weighs about 8 element-wise
  // values): one task per row made two threads slower than one on the Fashion CNN's pools (896
  // tasks of about 60 ns fighting over the task counter).
  for_rows(s.batch * s.out_h, s.out_w * words * p.kernel_h * p.kernel_w * 8, [&](size_t r0, size_t r1) {
    for (size_t row = r0; row < r1; ++row) pool_row(input, s, p, words, row, output);
  });
}

}  // namespace lowbit
