// elementwise_f32.cc: the graph's f32 operators (see elementwise_f32.h).
#include "graph/elementwise_f32.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/checked_math.h"
#include "cpu/dispatch.h"
#include "runtime/thread_pool.h"

namespace lowbit {
namespace {

// The taps [a, b) of output position o along one axis that lie inside the input.
inline void window(size_t o, size_t stride, size_t pad, size_t kernel, size_t in, size_t& a, size_t& b) {
  const ptrdiff_t start = static_cast<ptrdiff_t>(o * stride) - static_cast<ptrdiff_t>(pad);
  a = static_cast<size_t>(std::max<ptrdiff_t>(start, 0));
  b = static_cast<size_t>(std::min<ptrdiff_t>(start + static_cast<ptrdiff_t>(kernel), static_cast<ptrdiff_t>(in)));
}

// Each output pixel of a pool: f(its taps inside the image, as pointers to their pixels in
// row-major window order, the tap count, output row).
template <typename F>
void for_pool_pixels(const float* x, const Conv2dShape& s, const Pool2dParams& p, F f) {
  const size_t pixels = s.batch * s.out_h * s.out_w, c = s.in_c;
  for_rows(pixels, c * p.kernel_h * p.kernel_w, [&](size_t r0, size_t r1) {
    std::vector<const float*> taps(std::min(p.kernel_h, s.in_h) * std::min(p.kernel_w, s.in_w));
    for (size_t r = r0; r < r1; ++r) {
      const size_t ox = r % s.out_w, oy = (r / s.out_w) % s.out_h, n = r / (s.out_w * s.out_h);
      size_t y0, y1, x0, x1;
      window(oy, p.stride_h, p.pad_top, p.kernel_h, s.in_h, y0, y1);
      window(ox, p.stride_w, p.pad_left, p.kernel_w, s.in_w, x0, x1);
      size_t count = 0;
      for (size_t iy = y0; iy < y1; ++iy)
        for (size_t ix = x0; ix < x1; ++ix) taps[count++] = x + ((n * s.in_h + iy) * s.in_w + ix) * c;
      f(taps.data(), count, r);
    }
  });
}

}  // namespace

void transpose_chw_to_hwc(const float* x, size_t batch, size_t c, size_t hw, float* out) {
  if (c == 1 || hw == 1) {  // the same order (a one-channel image: the Fashion-MNIST input)
    for_rows(batch * c * hw, 1,
             [&](size_t i0, size_t i1) { std::memcpy(out + i0, x + i0, (i1 - i0) * sizeof(float)); });
    return;
  }
  // Runs of pixels inside one image, channel plane by plane: contiguous reads, and no division
  // per value (a 3-channel 224 x 224 input took 0.13 ms with one per value).
  for_rows(batch * hw, c, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1;) {
      const size_t n = r / hw, p0 = r % hw, count = std::min(r1 - r, hw - p0);
      const float* image = x + n * c * hw;
      float* dst = out + r * c;
      for (size_t ch = 0; ch < c; ++ch) {
        const float* plane = image + ch * hw + p0;
        for (size_t i = 0; i < count; ++i) dst[i * c + ch] = plane[i];
      }
      r += count;
    }
  });
}

void add_f32(const float* a, const float* b, size_t n, float lo, float hi, float* out) {
  const AddF32Fn add = f32_kernels().add;
  for_rows(n, 1, [&](size_t i0, size_t i1) { add(i1 - i0, a + i0, b + i0, lo, hi, out + i0); });
}

void affine_f32(const float* x, size_t rows, size_t c, const float* scale, const float* bias, float lo, float hi,
                float* out) {
  for_rows(rows, c, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r)
      for (size_t ch = 0; ch < c; ++ch) {
        const float v = x[r * c + ch] * scale[ch] + bias[ch];
        out[r * c + ch] = v < lo ? lo : (v > hi ? hi : v);
      }
  });
}

void clamp_f32(const float* x, size_t n, float lo, float hi, float* out) {
  const ClampF32Fn clamp = f32_kernels().clamp;
  for_rows(n, 1, [&](size_t i0, size_t i1) { clamp(i1 - i0, x + i0, lo, hi, out + i0); });
}

void prelu_f32(const float* x, size_t rows, size_t c, const float* slope, const float* input_bias,
               const float* output_bias, float* out) {
  const PreluF32Fn prelu = f32_kernels().prelu;
  for_rows(rows, c, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) prelu(c, x + r * c, slope, input_bias, output_bias, out + r * c);
  });
}

void sign_f32(const float* x, size_t rows, size_t c, const float* threshold, uint64_t* out) {
  const SignF32Fn sign = f32_kernels().sign;
  const size_t words = words_for_bits(c);
  for_rows(rows, c, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) sign(c, x + r * c, threshold, out + r * words);
  });
}

void maxpool_f32(const float* x, const Conv2dShape& s, const Pool2dParams& p, float* out) {
  const MaxTapsF32Fn max_taps = f32_kernels().max_taps;
  for_pool_pixels(x, s, p, [&](const float* const* taps, size_t count, size_t r) {
    max_taps(s.in_c, taps, count, out + r * s.in_c);
  });
}

void avgpool_f32(const float* x, const Conv2dShape& s, const Pool2dParams& p, bool count_include_pad, float* out) {
  const AvgTapsF32Fn avg_taps = f32_kernels().avg_taps;
  for_pool_pixels(x, s, p, [&](const float* const* taps, size_t count, size_t r) {
    const size_t divisor = count_include_pad ? p.kernel_h * p.kernel_w : count;
    avg_taps(s.in_c, taps, count, static_cast<float>(divisor), out + r * s.in_c);
  });
}

void global_avgpool_f32(const float* x, size_t batch, size_t hw, size_t c, float* out) {
  const F32Kernels& k = f32_kernels();
  const float inf = __builtin_inff();
  // One task per sample and block of channels: each output value sums its pixels in order.
  const size_t block = 256, blocks = (c + block - 1) / block;
  parallel_for(batch * blocks, [&](size_t t) {
    const size_t n = t / blocks, c0 = (t % blocks) * block, cn = std::min(block, c - c0);
    float* dst = out + n * c + c0;
    std::fill(dst, dst + cn, 0.0f);
    for (size_t i = 0; i < hw; ++i) k.add(cn, dst, x + (n * hw + i) * c + c0, -inf, inf, dst);
    k.div(cn, dst, static_cast<float>(hw), dst);
  });
}

void concat_f32(const float* const* parts, const size_t* width, size_t count, size_t rows, float* out) {
  size_t total = 0;
  for (size_t i = 0; i < count; ++i) total += width[i];
  for_rows(rows, total, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      float* dst = out + r * total;
      for (size_t i = 0; i < count; ++i) {
        std::memcpy(dst, parts[i] + r * width[i], width[i] * sizeof(float));
        dst += width[i];
      }
    }
  });
}

}  // namespace lowbit
