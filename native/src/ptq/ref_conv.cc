// ref_conv.cc: the converter's float reference convolution (lowbit/ptq.h), the same sums as the
// JavaScript loop of lib/onnx/ops/linear.ts: tiles of 4 output channels (1 for a group's last
// og % 4) by kRefPixels output pixels, each summing its whole reduction in float64 registers.
// Unit stride reads the padded image as the JavaScript does, one run over the padded width (the
// columns past ow are computed and dropped); other strides read each pixel's window origin.
#define LOWBIT_REF_CONV_NS scalar
#include <algorithm>
#include <cstring>
#include <vector>

#include "common/checked_math.h"
#include "lowbit/ptq.h"
#include "lowbit/runtime.h"
#include "ptq/ref_conv_tile.h"
#include "runtime/thread_pool.h"

namespace lowbit {

#if defined(__x86_64__)
namespace avx2 {
void ref_conv_tile_entry(const RefConvTile& t, size_t ob, double* acc);
}
#endif

namespace {

void scalar_tile(const RefConvTile& t, size_t ob, double* acc) { scalar::ref_conv_tile_any(t, ob, acc); }

RefConvTileFn tile_fn() {
#if defined(__x86_64__)
  if (active_isa() == Isa::Avx2 || active_isa() == Isa::Avx512) return avx2::ref_conv_tile_entry;
#endif
  return scalar_tile;
}

size_t out_extent(size_t in, size_t pad0, size_t pad1, size_t k, size_t dil, size_t stride, const char* what) {
  const size_t padded = checked_add(checked_add(in, pad0, what), pad1, what);
  const size_t window = checked_add(checked_mul(dil, k - 1, what), 1, what);
  if (window > padded)
    fail(ErrorKind::Shape, std::string("reference_conv: the ") + what + " window (" + num(window) +
                               ") is larger than the padded input (" + num(padded) + ")");
  return (padded - window) / stride + 1;
}

}  // namespace

std::pair<size_t, size_t> reference_conv_output(const RefConvShape& s) {
  if (s.n == 0 || s.c == 0 || s.h == 0 || s.w == 0 || s.oc == 0 || s.kh == 0 || s.kw == 0 || s.groups == 0)
    fail(ErrorKind::Shape, "reference_conv: every size must be at least 1");
  if (s.stride_h == 0 || s.stride_w == 0 || s.dil_h == 0 || s.dil_w == 0)
    fail(ErrorKind::Range, "reference_conv: strides and dilations must be at least 1");
  if (s.c % s.groups != 0 || s.oc % s.groups != 0)
    fail(ErrorKind::Shape, "reference_conv: " + num(s.groups) + " groups do not divide " + num(s.c) + " input and " +
                               num(s.oc) + " output channels");
  const size_t oh = out_extent(s.h, s.pad_top, s.pad_bottom, s.kh, s.dil_h, s.stride_h, "height");
  const size_t ow = out_extent(s.w, s.pad_left, s.pad_right, s.kw, s.dil_w, s.stride_w, "width");
  // Every count the driver forms, checked once: the padded copy (plus a tile of slack), the output
  // and the weights.
  const size_t hp = s.h + s.pad_top + s.pad_bottom, wp = s.w + s.pad_left + s.pad_right;
  checked_add(checked_mul(checked_mul(s.n, s.c, "n x c"), checked_mul(hp, wp, "padded plane"), "padded input"),
              kRefPixels, "padded input");
  checked_mul(checked_mul(s.n, s.oc, "n x oc"), checked_mul(oh, ow, "output plane"), "output");
  checked_mul(checked_mul(s.oc, s.c / s.groups, "weights"), checked_mul(s.kh, s.kw, "kernel"), "weights");
  return {oh, ow};
}

void reference_conv(const RefConvShape& s, const float* x, const float* weight, const float* bias, float* out) {
  const auto [oh, ow] = reference_conv_output(s);
  constexpr size_t P = kRefPixels;
  const size_t hp = s.h + s.pad_top + s.pad_bottom, wp = s.w + s.pad_left + s.pad_right, plane = hp * wp;
  const size_t cg = s.c / s.groups, og = s.oc / s.groups, ntaps = s.kh * s.kw, ksize = cg * ntaps;
  // The zero-padded input (as the JavaScript pads: a padded tap adds w * 0), plus P floats of slack
  // that the last tile of a unit-stride run may read for columns it drops.
  std::vector<float> padded(s.n * s.c * plane + P, 0.0f);
  for_rows(s.n * s.c, plane, [&](size_t p0, size_t p1) {
    for (size_t p = p0; p < p1; ++p)
      for (size_t y = 0; y < s.h; ++y)
        std::memcpy(&padded[p * plane + (y + s.pad_top) * wp + s.pad_left], x + (p * s.h + y) * s.w,
                    s.w * sizeof(float));
  });
  std::vector<size_t> taps(ntaps);
  for (size_t ky = 0; ky < s.kh; ++ky)
    for (size_t kx = 0; kx < s.kw; ++kx) taps[ky * s.kw + kx] = ky * s.dil_h * wp + kx * s.dil_w;
  const bool unit = s.stride_h == 1 && s.stride_w == 1;
  // Unit stride: tile positions over the padded width; else over the output pixels.
  const size_t len = unit ? (oh - 1) * wp + ow : oh * ow, tiles = (len + P - 1) / P;
  const size_t blocks = og / 4 + og % 4;
  const RefConvTileFn fn = tile_fn();
  // A task: a run of tiles of one (image, group, channel block).
  const size_t per_task = std::max<size_t>(1, std::min<size_t>(tiles, 16));
  const size_t chunks = (tiles + per_task - 1) / per_task;
  parallel_for(s.n * s.groups * blocks * chunks, [&](size_t task) {
    const size_t chunk = task % chunks, blk = task / chunks % blocks, g = task / chunks / blocks % s.groups,
                 b = task / chunks / blocks / s.groups;
    const size_t ob = blk < og / 4 ? 4 : 1, o = g * og + (blk < og / 4 ? blk * 4 : og / 4 * 4 + (blk - og / 4));
    double init[4], acc[4 * P];
    for (size_t k = 0; k < ob; ++k) init[k] = bias ? bias[o + k] : 0.0;
    const float* xb = padded.data() + (b * s.c + g * cg) * plane;
    size_t offs[P];
    RefConvTile t{xb, plane, unit, 0, offs, taps.data(), ntaps, cg, weight + o * ksize, ksize, init};
    for (size_t tile = chunk * per_task; tile < std::min(tiles, (chunk + 1) * per_task); ++tile) {
      const size_t q0 = tile * P;
      if (unit) {
        t.base = q0;
      } else {
        for (size_t j = 0; j < P; ++j) {
          const size_t q = q0 + j < len ? q0 + j : q0;
          offs[j] = q / ow * s.stride_h * wp + q % ow * s.stride_w;
        }
      }
      fn(t, ob, acc);
      for (size_t k = 0; k < ob; ++k) {
        float* dst = out + (b * s.oc + o + k) * oh * ow;
        for (size_t j = 0; j < P && q0 + j < len; ++j) {
          const size_t q = q0 + j;
          if (!unit)
            dst[q] = static_cast<float>(acc[k * P + j]);
          else if (q % wp < ow)
            dst[q / wp * ow + q % wp] = static_cast<float>(acc[k * P + j]);
        }
      }
    }
  });
}

}  // namespace lowbit
