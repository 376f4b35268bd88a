// qconv.cc: integer convolution driver. Packs weights into 16-channel panels (or tap-major rows
// for depthwise layers, or tap rows for short reductions), gathers a tile of output pixels into
// int8 patch rows (im2col) or, where the ISA has q8_gemm_runs, points at each kernel row of the
// input in place, runs the ISA's GEMM kernel panel by panel, folds the zero points into
// the bias, and requantizes. Layers with a reduction of at most kQSmallK values run per pixel.
// Work is split over (pixel tile, panel chunk) tasks.
#include "lowbit/qconv.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/checked_math.h"
#include "common/conv_taps.h"
#include "cpu/dispatch.h"
#include "integer/qconv_add.h"
#include "lowbit/error.h"
#include "lowbit/runtime.h"
#include "runtime/thread_pool.h"

namespace lowbit {
namespace {

// The kernels read bytes as int8 after XOR with the mask: uint8 inputs become x - 128, and the
// +128 returns through the bias (see fold_bias).
uint8_t input_mask(const QInput& in) { return in.is_signed ? 0 : 0x80; }
int32_t input_offset(const QInput& in) { return in.is_signed ? 0 : 128; }

// bias'[c] = bias[c] + (offset - z_x) * wsum[c], so that kernel sum + bias' = the true accumulator.
// The true accumulator fits int32 (validate_qepilogue), so the wrapping int32 sum is exact even when
// this term alone does not fit: it is kept modulo 2^32.
std::vector<int32_t> fold_bias(const QConv2dWeights& w, const QInput& in, const int32_t* bias) {
  std::vector<int32_t> out(w.out_channels);
  const int64_t delta = input_offset(in) - in.zero_point;
  for (size_t c = 0; c < w.out_channels; ++c) {
    const int64_t v = (bias ? bias[c] : 0) + delta * w.wsum[c];
    out[c] = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(v)));
  }
  return out;
}

// Per-thread scratch, reused across calls so a steady stream of calls allocates nothing.
struct Scratch {
  AlignedBuffer<uint8_t> patches;        // tile x kp
  AlignedBuffer<int32_t> acc;            // tile x 16, or out_w x out_c for depthwise
  std::vector<const uint8_t*> pointers;  // depthwise: out_w x taps input pixels; runs: tile x kernel_h
  std::vector<int16_t> small_k;          // short reductions: out_w x kQSmallK values x - z_x
};
thread_local Scratch t_scratch;

struct Plan {
  Plan(const Conv2dShape& s, const QConv2dWeights& w, const Conv2dParams& p, const QEpilogue& e,
       const IntegerKernels& k)
      : s(s), w(w), p(p), e(e), k(k) {}
  const Conv2dShape& s;
  const QConv2dWeights& w;
  const Conv2dParams& p;
  const QEpilogue& e;
  const IntegerKernels& k;
  OutputS8Fn rescale = nullptr;  // the requantizer (epilogue/kernels.h)
  OutputS8AddFn rescale_add = nullptr;
  const ResidualAddParams* add = nullptr;  // a fused residual add, its residual at the output's offsets
  const int32_t* bias = nullptr;           // folded, per output channel
  const int32_t* out_zero = nullptr;
  uint8_t mask = 0, pad_byte = 0;
  size_t pixels = 0, tile = 0, panels = 0, chunk = 0, chunks = 0, oc_per_group = 0;
  bool direct = false;  // 1x1, stride 1, no padding, one group, in_c % 4 == 0: input rows are the patches
  // One group, dilation_w 1, kernel_w * in_c % 4 == 0 and the ISA has one: the runs GEMM, each
  // kernel row of a patch read in place (kernel_w * in_c contiguous input bytes, see gather_runs).
  Q8GemmRunsFn runs = nullptr;
  const uint8_t* pad_run = nullptr;  // kernel_w * in_c bytes of the input zero point
};

// The requantizer on `rows` output pixels of n channels, the first at output offset `at` (rows
// out_c apart), with the fused residual add when there is one (its residual in the output's layout).
void requantize_rows(const Plan& plan, size_t rows, size_t n, const int32_t* y, size_t ldy, const RequantizeParams& p,
                     void* output, size_t at) {
  const size_t out_c = plan.s.out_c;
  int8_t* out = static_cast<int8_t*>(output) + at;
  if (!plan.add) return plan.rescale(rows, n, y, ldy, p, out, out_c);
  ResidualAddParams r = *plan.add;
  r.residual += at, r.ldr = out_c;
  plan.rescale_add(rows, n, y, ldy, p, r, out, out_c);
}

// y[i * ldy + j] += bias, then the epilogue, for n channels starting at c0 of `rows` consecutive
// output pixels from `pixel` on (one requantizer call for them all).
void finish_rows(const Plan& plan, int32_t* y, size_t ldy, size_t rows, size_t pixel, size_t c0, size_t n,
                 void* output) {
  for (size_t i = 0; i < rows; ++i)
    for (size_t j = 0; j < n; ++j)
      y[i * ldy + j] =
          static_cast<int32_t>(static_cast<uint32_t>(y[i * ldy + j]) + static_cast<uint32_t>(plan.bias[c0 + j]));
  const size_t out_c = plan.s.out_c, at = pixel * out_c + c0;
  if (!plan.e.requantize) {
    int32_t* out = static_cast<int32_t*>(output) + at;
    for (size_t i = 0; i < rows; ++i) std::memcpy(out + i * out_c, y + i * ldy, n * sizeof(int32_t));
    return;
  }
  const RequantizeParams p{plan.e.mult + c0, plan.e.shift + c0, plan.out_zero + c0, plan.e.lo, plan.e.hi};
  requantize_rows(plan, rows, n, y, ldy, p, output, at);
}

// Copies n bytes; the runs of small-channel layers (21 bytes for a 7x7 kernel row of an RGB
// stem, 3 for a 3x3 one of one channel) are far shorter than what a libc memcpy call costs, and a
// byte loop over them was most of a ResNet stem's time: below 32 bytes, two fixed-size copies
// that overlap in the middle (each a single load and store).
template <size_t kSize>
inline void copy_overlapping(uint8_t* dst, const uint8_t* src, size_t n) {
  std::memcpy(dst, src, kSize);
  std::memcpy(dst + n - kSize, src + n - kSize, kSize);
}
inline void copy_bytes(uint8_t* dst, const uint8_t* src, size_t n) {
  if (n >= 32)
    std::memcpy(dst, src, n);
  else if (n >= 16)
    copy_overlapping<16>(dst, src, n);
  else if (n >= 8)
    copy_overlapping<8>(dst, src, n);
  else if (n >= 4)
    copy_overlapping<4>(dst, src, n);
  else
    for (size_t i = 0; i < n; ++i) dst[i] = src[i];
}

inline void fill_bytes(uint8_t* dst, uint8_t value, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = value;
}

// Fills the patch row (kp bytes) of one output pixel for group g: padded taps read the input zero
// point, the K..kp tail reads value 0.
void im2col_row(const Plan& plan, const uint8_t* input, size_t pixel, size_t g, uint8_t* row) {
  const Conv2dShape& s = plan.s;
  const Conv2dParams& p = plan.p;
  const QConv2dWeights& w = plan.w;
  const size_t icg = w.in_channels_per_group;
  const size_t ow = pixel % s.out_w, oh = (pixel / s.out_w) % s.out_h, n = pixel / (s.out_w * s.out_h);
  const uint8_t* image = input + n * s.in_h * s.in_w * s.in_c;
  fill_bytes(row + w.k, plan.mask, w.kp - w.k);
  const bool interior = window_inside(s, w.kernel_h, w.kernel_w, p, oh, ow);
  if (interior && w.groups == 1 && p.dilation_w == 1) {
    // The kernel_w taps of one kernel row are adjacent pixels: one contiguous run of bytes.
    const size_t run = w.kernel_w * s.in_c;
    const size_t iy0 = oh * p.stride_h - p.pad_top, ix0 = ow * p.stride_w - p.pad_left;
    for (size_t ky = 0; ky < w.kernel_h; ++ky)
      copy_bytes(row + ky * run, image + ((iy0 + ky * p.dilation_h) * s.in_w + ix0) * s.in_c, run);
    return;
  }
  for_each_tap(w.kernel_h, w.kernel_w, p, oh, ow, [&](size_t t, ptrdiff_t iy, ptrdiff_t ix) {
    if (inside(s, iy, ix))
      copy_bytes(row + t * icg, image + (iy * s.in_w + ix) * s.in_c + g * icg, icg);
    else
      fill_bytes(row + t * icg, plan.pad_byte, icg);
  });
}

// Fills plan.runs's pointers for output pixels p0 .. p0 + pn: per pixel kernel_h pointers to
// kernel_w * in_c bytes, into the input where the kernel row lies inside it, at pad_run above or
// below it, and at a gathered copy (in `edges`) where it crosses the left or right border.
void gather_runs(const Plan& plan, const uint8_t* input, size_t p0, size_t pn, const uint8_t** out, uint8_t* edges) {
  const Conv2dShape& s = plan.s;
  const Conv2dParams& p = plan.p;
  const size_t kh = plan.w.kernel_h, kw = plan.w.kernel_w, c = s.in_c, len = kw * c;
  size_t ow = p0 % s.out_w, oh = (p0 / s.out_w) % s.out_h, n = p0 / (s.out_w * s.out_h);  // then counted on
  for (size_t i = 0; i < pn; ++i, ++ow) {
    if (ow == s.out_w) ow = 0, ++oh;
    if (oh == s.out_h) oh = 0, ++n;
    const uint8_t* image = input + n * s.in_h * s.in_w * c;
    const ptrdiff_t ix0 = static_cast<ptrdiff_t>(ow * p.stride_w) - static_cast<ptrdiff_t>(p.pad_left);
    const bool cols_inside = ix0 >= 0 && ix0 + static_cast<ptrdiff_t>(kw) <= static_cast<ptrdiff_t>(s.in_w);
    for (size_t ky = 0; ky < kh; ++ky) {
      const ptrdiff_t iy =
          static_cast<ptrdiff_t>(oh * p.stride_h + ky * p.dilation_h) - static_cast<ptrdiff_t>(p.pad_top);
      const uint8_t*& run = out[i * kh + ky];
      if (iy < 0 || iy >= static_cast<ptrdiff_t>(s.in_h)) {
        run = plan.pad_run;
      } else if (cols_inside) {
        run = image + (iy * s.in_w + ix0) * c;
      } else {
        uint8_t* dst = edges + (i * kh + ky) * len;
        for (size_t kx = 0; kx < kw; ++kx) {
          const ptrdiff_t ix = ix0 + static_cast<ptrdiff_t>(kx);
          if (ix >= 0 && ix < static_cast<ptrdiff_t>(s.in_w))
            copy_bytes(dst + kx * c, image + (iy * s.in_w + ix) * c, c);
          else
            fill_bytes(dst + kx * c, plan.pad_byte, c);
        }
        run = dst;
      }
    }
  }
}

void run_task(const Plan& plan, const uint8_t* input, size_t task, void* output) {
  const QConv2dWeights& w = plan.w;
  const size_t tile_index = task / plan.chunks, chunk_index = task % plan.chunks;
  const size_t p0 = tile_index * plan.tile, pn = std::min(plan.tile, plan.pixels - p0);
  const size_t q0 = chunk_index * plan.chunk, q1 = std::min(plan.panels, q0 + plan.chunk);
  Scratch& sc = t_scratch;
  sc.acc.resize(pn * kQPanelChannels);
  if (!plan.direct) sc.patches.resize(pn * w.kp);
  if (plan.runs) {
    sc.pointers.resize(pn * w.kernel_h);
    gather_runs(plan, input, p0, pn, sc.pointers.data(), sc.patches.data());
  }

  size_t patches_group = SIZE_MAX;
  const uint8_t* a = nullptr;
  for (size_t q = q0; q < q1; ++q) {
    const size_t g = q / w.panels_per_group, first = (q % w.panels_per_group) * kQPanelChannels;
    if (!plan.runs && g != patches_group) {  // a group's panels share its patch rows
      if (plan.direct) {
        a = input + p0 * w.kp;
      } else {
        for (size_t i = 0; i < pn; ++i) im2col_row(plan, input, p0 + i, g, sc.patches.data() + i * w.kp);
        a = sc.patches.data();
      }
      patches_group = g;
    }
    const uint8_t* panel = w.data.data() + q * w.panel_bytes;
    const Q8GemmFn gemm = w.bits == 8 ? plan.k.q8_gemm : w.bits == 7 ? plan.k.q7_gemm : plan.k.q4_gemm;
    if (plan.runs)
      plan.runs(pn, w.kp, w.kernel_h, sc.pointers.data(), plan.mask, panel, sc.acc.data(), kQPanelChannels);
    else
      gemm(pn, w.kp, a, w.kp, plan.mask, panel, sc.acc.data(), kQPanelChannels);
    const size_t n = std::min(kQPanelChannels, plan.oc_per_group - first);
    finish_rows(plan, sc.acc.data(), kQPanelChannels, pn, p0, g * plan.oc_per_group + first, n, output);
  }
}

// One output row (n, oh) of a depthwise conv: a pointer per output pixel and tap (an input pixel
// of `image`, c channels each, or the row of zero points for a padded tap), one call of the
// kernel for the whole row (bias included) and one of the requantizer.
void depthwise_row(const Plan& plan, const uint8_t* input, size_t c, const uint8_t* pad_row, size_t row, void* output) {
  const Conv2dShape& s = plan.s;
  const size_t taps = plan.w.taps(), oh = row % s.out_h, n = row / s.out_h;
  const uint8_t* image = input + n * s.in_h * s.in_w * c;
  Scratch& sc = t_scratch;
  sc.pointers.resize(s.out_w * taps);
  const Conv2dParams& cp = plan.p;
  const size_t kh = plan.w.kernel_h, kw = plan.w.kernel_w;
  // Kernel row by kernel row: a row outside the image reads the pad row at every tap, and inside
  // one only the columns need checking.
  for (size_t ky = 0; ky < kh; ++ky) {
    const ptrdiff_t iy =
        static_cast<ptrdiff_t>(oh * cp.stride_h + ky * cp.dilation_h) - static_cast<ptrdiff_t>(cp.pad_top);
    const bool row_inside = iy >= 0 && iy < static_cast<ptrdiff_t>(s.in_h);
    const uint8_t* line = row_inside ? image + iy * s.in_w * c : nullptr;
    for (size_t ow = 0; ow < s.out_w; ++ow) {
      const uint8_t** out = sc.pointers.data() + ow * taps + ky * kw;
      ptrdiff_t ix = static_cast<ptrdiff_t>(ow * cp.stride_w) - static_cast<ptrdiff_t>(cp.pad_left);
      for (size_t kx = 0; kx < kw; ++kx, ix += static_cast<ptrdiff_t>(cp.dilation_w))
        out[kx] = row_inside && ix >= 0 && ix < static_cast<ptrdiff_t>(s.in_w) ? line + ix * c : pad_row;
    }
  }
  const int8_t* w = reinterpret_cast<const int8_t*>(plan.w.data.data());
  const size_t at = row * s.out_w * c;
  if (!plan.e.requantize) {
    plan.k.q8_dw(c, taps, s.out_w, sc.pointers.data(), plan.mask, w, plan.bias, static_cast<int32_t*>(output) + at);
    return;
  }
  sc.acc.resize(s.out_w * c);
  plan.k.q8_dw(c, taps, s.out_w, sc.pointers.data(), plan.mask, w, plan.bias, sc.acc.data());
  const RequantizeParams p{plan.e.mult, plan.e.shift, plan.out_zero, plan.e.lo, plan.e.hi};
  requantize_rows(plan, s.out_w, c, sc.acc.data(), c, p, output, at);
}

// One output row (n, oh) of a one-group conv with a short reduction (k <= kQSmallK): per pixel the
// k values x - z_x (0 for padded taps), then one q16_small_k call for the row; the same exact int32
// accumulators as the GEMM path without its patch gathering and per-panel setup.
void small_k_row(const Plan& plan, const uint8_t* input, const int32_t* bias, const QInput& in, size_t row,
                 void* output) {
  const Conv2dShape& s = plan.s;
  const QConv2dWeights& w = plan.w;
  const size_t oc = w.out_channels, c_in = s.in_c, oh = row % s.out_h, n = row / s.out_h;
  const uint8_t* image = input + n * s.in_h * s.in_w * c_in;
  Scratch& sc = t_scratch;
  sc.acc.resize(s.out_w * oc);
  sc.small_k.resize(s.out_w * kQSmallK);
  // x - z_x for n input bytes (int8 or uint8).
  const auto centre = [&](int16_t* dst, const uint8_t* src, size_t count) {
    if (in.is_signed)
      for (size_t i = 0; i < count; ++i) dst[i] = static_cast<int16_t>(static_cast<int8_t>(src[i]) - in.zero_point);
    else
      for (size_t i = 0; i < count; ++i) dst[i] = static_cast<int16_t>(src[i] - in.zero_point);
  };
  for (size_t ow = 0; ow < s.out_w; ++ow) {
    int16_t* x = sc.small_k.data() + ow * kQSmallK;
    if (window_inside(s, w.kernel_h, w.kernel_w, plan.p, oh, ow) && plan.p.dilation_w == 1) {
      // A kernel row's taps are adjacent pixels: one run of kernel_w * c_in bytes.
      const size_t run = w.kernel_w * c_in;
      const size_t iy0 = oh * plan.p.stride_h - plan.p.pad_top, ix0 = ow * plan.p.stride_w - plan.p.pad_left;
      for (size_t ky = 0; ky < w.kernel_h; ++ky)
        centre(x + ky * run, image + ((iy0 + ky * plan.p.dilation_h) * s.in_w + ix0) * c_in, run);
    } else {
      for_each_tap(w.kernel_h, w.kernel_w, plan.p, oh, ow, [&](size_t t, ptrdiff_t iy, ptrdiff_t ix) {
        if (inside(s, iy, ix))
          centre(x + t * c_in, image + (iy * s.in_w + ix) * c_in, c_in);
        else
          std::fill(x + t * c_in, x + (t + 1) * c_in, int16_t{0});
      });
    }
  }
  // The accumulators of the whole row, requantized by one call (or the s32 output itself).
  const size_t at = row * s.out_w * oc;
  int32_t* y = plan.e.requantize ? sc.acc.data() : static_cast<int32_t*>(output) + at;
  plan.k.q16_small_k(w.k, oc, s.out_w, sc.small_k.data(), kQSmallK, w.small_k.data(), w.small_k_stride, bias, y);
  if (!plan.e.requantize) return;
  const RequantizeParams p{plan.e.mult, plan.e.shift, plan.out_zero, plan.e.lo, plan.e.hi};
  requantize_rows(plan, s.out_w, oc, sc.acc.data(), oc, p, output, at);
}

}  // namespace

std::shared_ptr<QConv2dWeights> pack_qconv2d_weights(const int8_t* ohwi, size_t out_c, size_t kh, size_t kw,
                                                     size_t in_c_per_group, size_t groups, int bits) {
  if (bits != 8 && bits != 7 && bits != 4)
    fail(ErrorKind::Range, "bits must be 8, 7 or 4, got " + std::to_string(bits));
  const bool bytes = bits != 4;  // bits 7 is stored as bits 8
  if (out_c == 0 || kh == 0 || kw == 0 || in_c_per_group == 0 || groups == 0)
    fail(ErrorKind::Shape, "weights: every dimension of [O, H, W, I] and groups must be at least 1");
  if (out_c % groups != 0)
    fail(ErrorKind::Shape, "weights: " + num(out_c) + " output channels do not divide into " + num(groups) + " groups");
  auto w = std::make_shared<QConv2dWeights>();
  w->bits = bits;
  w->out_channels = out_c, w->kernel_h = kh, w->kernel_w = kw, w->in_channels_per_group = in_c_per_group;
  w->groups = groups;
  w->k = checked_mul(checked_mul(kh, kw, "kernel size"), in_c_per_group, "kernel size");
  if (w->k > kQMaxK)
    fail(ErrorKind::Range, "weights: the reduction length kh * kw * in_channels_per_group = " + num(w->k) +
                               " exceeds " + num(kQMaxK) + ", the longest whose int32 accumulation is proven exact");
  w->kp = q_padded_k(w->k);
  const size_t count = checked_mul(out_c, w->k, "weights size");
  w->wsum.assign(out_c, 0);
  w->l1.assign(out_c, 0);
  for (size_t c = 0; c < out_c; ++c)
    for (size_t i = 0; i < w->k; ++i) {
      const int8_t v = ohwi[c * w->k + i];
      if (bits == 4 && (v < -8 || v > 7))
        fail(ErrorKind::Range, "weights: 4-bit values must be in [-8, 7], got " + std::to_string(v) +
                                   " at output channel " + num(c) + ", index " + num(i));
      if (bits == 7 && (v < -64 || v > 64))
        fail(ErrorKind::Range, "weights: 7-bit values must be in [-64, 64], got " + std::to_string(v) +
                                   " at output channel " + num(c) + ", index " + num(i));
      w->wsum[c] += v;
      w->l1[c] += v < 0 ? -v : v;
    }
  // Depthwise, with any channel multiplier out_c / groups (output channel c reads input channel
  // c / multiplier).
  w->depthwise = in_c_per_group == 1 && groups > 1;
  if (groups == 1 && w->k <= kQSmallK) {
    w->small_k_stride = (out_c + 15) / 16 * 16;
    w->small_k.assign(checked_mul(w->k, w->small_k_stride, "weights size"), 0);
    for (size_t c = 0; c < out_c; ++c)
      for (size_t i = 0; i < w->k; ++i) w->small_k[i * w->small_k_stride + c] = ohwi[c * w->k + i];
  }
  if (w->depthwise) {
    // int8 [tap][channel] for 8- and 4-bit weights alike: each tap's weights over all channels
    // are contiguous, as the input pixels are.
    const size_t taps = w->taps();
    w->data.resize(count);
    for (size_t t = 0; t < taps; ++t)
      for (size_t c = 0; c < out_c; ++c) w->data[t * out_c + c] = static_cast<uint8_t>(ohwi[c * taps + t]);
    return w;
  }
  const size_t ocg = out_c / groups;
  w->panels_per_group = (ocg + kQPanelChannels - 1) / kQPanelChannels;
  w->panel_bytes = bytes ? q8_panel_bytes(w->kp) : q4_panel_bytes(w->kp);
  const size_t panels = checked_mul(groups, w->panels_per_group, "panel count");
  w->data.resize(checked_mul(panels, w->panel_bytes, "packed weights size"));
  for (size_t g = 0; g < groups; ++g)
    for (size_t q = 0; q < w->panels_per_group; ++q) {
      const size_t first = q * kQPanelChannels;
      const int8_t* src = ohwi + (g * ocg + first) * w->k;
      uint8_t* dst = w->data.data() + (g * w->panels_per_group + q) * w->panel_bytes;
      const size_t n = std::min(kQPanelChannels, ocg - first);
      if (bytes)
        pack_q8_panel(src, n, w->k, w->k, dst);
      else
        pack_q4_panel(src, n, w->k, w->k, dst);
    }
  return w;
}

void validate_qepilogue(const QEpilogue& e, const QConv2dWeights& w, const QInput& in) {
  const bool in_ok =
      in.is_signed ? in.zero_point >= -128 && in.zero_point <= 127 : in.zero_point >= 0 && in.zero_point <= 255;
  if (!in_ok)
    fail(ErrorKind::Range, std::string("input zero point must be in ") + (in.is_signed ? "[-128, 127]" : "[0, 255]") +
                               " for a" + (in.is_signed ? "n int8" : " uint8") + " input, got " +
                               std::to_string(in.zero_point));
  for (size_t c = 0; c < w.out_channels; ++c) {
    // |x - z_x| <= 255, so |acc| <= 255 * l1[c] + |bias[c]|.
    const int64_t bias = e.bias ? e.bias[c] : 0;
    const int64_t bound = 255 * w.l1[c] + (bias < 0 ? -bias : bias);
    if (bound > INT32_MAX)
      fail(ErrorKind::Range, "bias[" + num(c) + "] = " + std::to_string(bias) +
                                 " could overflow the int32 accumulator: 255 * sum|w| + |bias| = " +
                                 std::to_string(bound) + " exceeds 2^31 - 1");
  }
  if (!e.requantize) return;
  if (!e.mult || !e.shift) fail(ErrorKind::Type, "an 8-bit output needs multiplier and shift");
  for (size_t c = 0; c < w.out_channels; ++c) {
    if (e.mult[c] == INT32_MIN)
      fail(ErrorKind::Range, "multiplier[" + num(c) + "] must be in [-(2^31 - 1), 2^31 - 1], got -2^31");
    if (e.shift[c] > 62) fail(ErrorKind::Range, "shift[" + num(c) + "] must be in [0, 62], got " + num(e.shift[c]));
  }
  const int32_t min = e.out_signed ? -128 : 0, max = e.out_signed ? 127 : 255;
  const std::string range = e.out_signed ? "[-128, 127]" : "[0, 255]";
  if (e.lo < min || e.hi > max || e.lo > e.hi)
    fail(ErrorKind::Range,
         "clamp [" + std::to_string(e.lo) + ", " + std::to_string(e.hi) + "] must have lo <= hi inside " + range);
  if (e.zero_point < min || e.zero_point > max)
    fail(ErrorKind::Range, "output zero point must be in " + range + ", got " + std::to_string(e.zero_point));
}

Conv2dShape qconv2d_shape(size_t batch, size_t in_h, size_t in_w, size_t in_c, const QConv2dWeights& w,
                          const Conv2dParams& p) {
  const Conv2dShape s = conv2d_shape(batch, in_h, in_w, in_c, w.out_channels, w.kernel_h, w.kernel_w,
                                     w.in_channels_per_group, w.groups, p);
  checked_mul(checked_mul(checked_mul(batch, in_h, "input size"), in_w, "input size"), in_c, "input size");
  checked_mul(checked_mul(checked_mul(checked_mul(batch, s.out_h, "output size"), s.out_w, "output size"), s.out_c,
                          "output size"),
              sizeof(int32_t), "output size");
  return s;
}

namespace {

void run_qconv2d(const uint8_t* input, const Conv2dShape& s, const QConv2dWeights& w, const Conv2dParams& p,
                 const QInput& in, const QEpilogue& e, const ResidualAddParams* add, void* output) {
  validate_qepilogue(e, w, in);
  const std::vector<int32_t> bias = fold_bias(w, in, e.bias);
  const std::vector<int32_t> out_zero(w.out_channels, e.zero_point);
  const size_t pixels = s.batch * s.out_h * s.out_w;
  const size_t threads = num_threads();
  const Isa isa = active_isa();
  Plan plan(s, w, p, e, integer_kernels_for(isa));
  plan.rescale = output_kernels_for(isa).output_s8;
  plan.rescale_add = output_kernels_for(isa).output_s8_add;
  plan.add = add;
  plan.bias = bias.data();
  plan.out_zero = out_zero.data();
  plan.mask = input_mask(in);
  plan.pad_byte = static_cast<uint8_t>(in.zero_point);
  plan.pixels = pixels;
  plan.oc_per_group = w.out_channels / w.groups;
  if (w.depthwise) {
    // A channel multiplier m > 1: each input channel repeated m times first, so that the kernel
    // reads output channel c's input at channel c of a pixel.
    const size_t m = w.out_channels / w.groups, c = w.out_channels;
    AlignedBuffer<uint8_t> repeated;
    if (m > 1) {
      const size_t in_pixels = s.batch * s.in_h * s.in_w;
      repeated.resize(checked_mul(in_pixels, c, "input size"));
      parallel_for(s.batch * s.in_h, [&](size_t r) {
        for (size_t i = r * s.in_w; i < (r + 1) * s.in_w; ++i)
          for (size_t g = 0; g < s.in_c; ++g) std::memset(repeated.data() + i * c + g * m, input[i * s.in_c + g], m);
      });
    }
    std::vector<uint8_t> pad_row(c, plan.pad_byte);
    const uint8_t* x = m > 1 ? repeated.data() : input;
    parallel_for(s.batch * s.out_h, [&](size_t row) { depthwise_row(plan, x, c, pad_row.data(), row, output); });
    return;
  }
  if (!w.small_k.empty()) {
    const std::vector<int32_t> raw_bias =
        e.bias ? std::vector<int32_t>(e.bias, e.bias + w.out_channels) : std::vector<int32_t>(w.out_channels, 0);
    parallel_for(s.batch * s.out_h, [&](size_t row) { small_k_row(plan, input, raw_bias.data(), in, row, output); });
    return;
  }
  plan.direct = w.kernel_h == 1 && w.kernel_w == 1 && w.groups == 1 && p.stride_h == 1 && p.stride_w == 1 &&
                p.pad_top + p.pad_left + p.pad_bottom + p.pad_right == 0 && s.in_c == w.kp;
  if (!plan.direct && w.groups == 1 && p.dilation_w == 1 && w.kernel_w * s.in_c % 4 == 0)
    plan.runs = w.bits == 4 ? plan.k.q4_gemm_runs : plan.k.q8_gemm_runs;
  const std::vector<uint8_t> pad_run(plan.runs ? w.kernel_w * s.in_c : 0, plan.pad_byte);
  plan.pad_run = pad_run.data();
  // Pixel tiles keep their patch rows (tile x kp bytes) in L2 while the panels stream past: the
  // more rows share a panel, the fewer times the kernel prepares its weights. Tiles are balanced,
  // and with fewer tiles than threads panel chunks give the other threads work.
  size_t tile = std::clamp<size_t>((192 * 1024) / w.kp, 8, 96);
  tile = std::min(tile, (pixels + threads - 1) / threads);
  size_t tiles = (pixels + tile - 1) / tile;
  tile = (pixels + tiles - 1) / tiles;
  tiles = (pixels + tile - 1) / tile;
  plan.tile = tile;
  plan.panels = w.groups * w.panels_per_group;
  plan.chunk = plan.panels;
  if (tiles < 2 * threads && plan.panels > 1) {
    const size_t want = (2 * threads + tiles - 1) / tiles;
    plan.chunk = std::max<size_t>(1, (plan.panels + want - 1) / want);
  }
  plan.chunks = (plan.panels + plan.chunk - 1) / plan.chunk;
  parallel_for(tiles * plan.chunks, [&](size_t task) { run_task(plan, input, task, output); });
}

}  // namespace

void qconv2d(const uint8_t* input, const Conv2dShape& s, const QConv2dWeights& w, const Conv2dParams& p,
             const QInput& in, const QEpilogue& e, void* output) {
  run_qconv2d(input, s, w, p, in, e, nullptr, output);
}

void validate_residual_add(const ResidualAddParams& r, bool out_signed) {
  // |v - self.zero| <= 255 and |(r ^ mask) - res.zero| <= 255, which the kernels' 32-bit form needs.
  const int32_t min = out_signed ? -128 : 0, max = out_signed ? 127 : 255;
  if (r.self.zero < min || r.self.zero > max || r.res.zero < 0 || r.res.zero > 255 ||
      (r.res.mask != 0 && r.res.mask != 0x80))
    fail(ErrorKind::Range, "residual add: a zero point outside its type's range");
  for (const QAddTerm* t : {&r.self, &r.res})
    if (t->shift < 1 || t->shift > 30 || t->mult == INT32_MIN)
      fail(ErrorKind::Range, "residual add: a rescale outside the 32-bit form (shift in [1, 30], mult != -2^31)");
  if (r.lo > r.hi || r.lo < -128 || r.hi > 255 || r.out_zero < -255 || r.out_zero > 255)
    fail(ErrorKind::Range, "residual add: clamp or zero point outside [-128, 255]");
}

void qconv2d_add(const uint8_t* input, const Conv2dShape& s, const QConv2dWeights& w, const Conv2dParams& p,
                 const QInput& in, const QEpilogue& e, const ResidualAddParams& add, void* output) {
  if (!e.requantize) fail(ErrorKind::Type, "residual add: needs an 8-bit output");
  validate_residual_add(add, e.out_signed);
  run_qconv2d(input, s, w, p, in, e, &add, output);
}

Conv2dShape qdense_shape(size_t rows, size_t in_c, const QConv2dWeights& w) {
  if (w.kernel_h != 1 || w.kernel_w != 1 || w.groups != 1)
    fail(ErrorKind::Shape, "weights: qdense needs weights packed as [O, I] (kernel 1x1, one group)");
  // A dense layer is a 1x1 convolution over `rows` pixels.
  return qconv2d_shape(rows, 1, 1, in_c, w, Conv2dParams{});
}

void qdense(const uint8_t* input, size_t rows, size_t in_c, const QConv2dWeights& w, const QInput& in,
            const QEpilogue& e, void* output) {
  const Conv2dShape s = qdense_shape(rows, in_c, w);
  qconv2d(input, s, w, Conv2dParams{}, in, e, output);
}

}  // namespace lowbit
