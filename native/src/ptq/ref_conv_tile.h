// ref_conv_tile.h: the tile loop of reference_conv (ref_conv.cc), compiled once per ISA (in the
// namespace LOWBIT_REF_CONV_NS: baseline, and with AVX2 + FMA). The same source and the same
// order of additions per output, so both give the same bits.
#pragma once
#include <cstddef>

namespace lowbit {

// Output pixels per tile: OB channels x kRefPixels accumulators stay in registers over the whole
// reduction.
inline constexpr size_t kRefPixels = 8;

// One tile's inputs. Pixel j of the tile reads its window from xb + ci * plane + off(j) + taps[t]
// (unit stride: off(j) = base + j; else offs[j]); channel k's weights are wt + k * ksize.
struct RefConvTile {
  const float* xb;
  size_t plane;
  bool unit;
  size_t base;
  const size_t* offs;
  const size_t* taps;
  size_t ntaps, cg;
  const float* wt;
  size_t ksize;
  const double* init;  // OB starting values (the biases)
};

using RefConvTileFn = void (*)(const RefConvTile& t, size_t ob, double* acc);

namespace LOWBIT_REF_CONV_NS {

template <size_t OB, bool Unit>
inline void ref_conv_tile(const RefConvTile& t, double* out) {
  constexpr size_t P = kRefPixels;
  double a[OB][P];
  for (size_t k = 0; k < OB; ++k)
    for (size_t j = 0; j < P; ++j) a[k][j] = t.init[k];
  for (size_t ci = 0; ci < t.cg; ++ci) {
    const float* xp = t.xb + ci * t.plane + (Unit ? t.base : 0);
    const float* wc = t.wt + ci * t.ntaps;
    for (size_t tap = 0; tap < t.ntaps; ++tap) {
      const float* xt = xp + t.taps[tap];
      double v[P];
      for (size_t j = 0; j < P; ++j) v[j] = Unit ? xt[j] : xt[t.offs[j]];
      for (size_t k = 0; k < OB; ++k) {
        const double wk = wc[k * t.ksize + tap];
        for (size_t j = 0; j < P; ++j) a[k][j] += wk * v[j];
      }
    }
  }
  for (size_t k = 0; k < OB; ++k)
    for (size_t j = 0; j < P; ++j) out[k * P + j] = a[k][j];
}

// acc: ob x kRefPixels sums (ob 4 or 1).
inline void ref_conv_tile_any(const RefConvTile& t, size_t ob, double* acc) {
  if (ob == 4)
    t.unit ? ref_conv_tile<4, true>(t, acc) : ref_conv_tile<4, false>(t, acc);
  else
    t.unit ? ref_conv_tile<1, true>(t, acc) : ref_conv_tile<1, false>(t, acc);
}

}  // namespace LOWBIT_REF_CONV_NS
}  // namespace lowbit
