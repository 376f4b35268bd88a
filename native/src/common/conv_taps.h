// conv_taps.h: walking the kernel window of one output pixel (shared by the conv drivers).
#pragma once
#include <cstddef>

#include "lowbit/conv.h"

namespace lowbit {

// Calls visit(tap, iy, ix) for every kernel tap of output pixel (oh, ow), row-major over the
// window, with the input coordinates it reads; they may lie in the padding (negative or past the edge).
template <typename Visit>
void for_each_tap(size_t kernel_h, size_t kernel_w, const Conv2dParams& p, size_t oh, size_t ow, Visit visit) {
  size_t t = 0;
  for (size_t ky = 0; ky < kernel_h; ++ky) {
    const ptrdiff_t iy =
        static_cast<ptrdiff_t>(oh * p.stride_h + ky * p.dilation_h) - static_cast<ptrdiff_t>(p.pad_top);
    for (size_t kx = 0; kx < kernel_w; ++kx, ++t) {
      const ptrdiff_t ix =
          static_cast<ptrdiff_t>(ow * p.stride_w + kx * p.dilation_w) - static_cast<ptrdiff_t>(p.pad_left);
      visit(t, iy, ix);
    }
  }
}

inline bool inside(const Conv2dShape& s, ptrdiff_t iy, ptrdiff_t ix) {
  return iy >= 0 && ix >= 0 && iy < static_cast<ptrdiff_t>(s.in_h) && ix < static_cast<ptrdiff_t>(s.in_w);
}

// Whether the whole (dilated) window of output pixel (oh, ow) lies inside the image.
inline bool window_inside(const Conv2dShape& s, size_t kernel_h, size_t kernel_w, const Conv2dParams& p, size_t oh,
                          size_t ow) {
  const ptrdiff_t iy0 = static_cast<ptrdiff_t>(oh * p.stride_h) - static_cast<ptrdiff_t>(p.pad_top);
  const ptrdiff_t ix0 = static_cast<ptrdiff_t>(ow * p.stride_w) - static_cast<ptrdiff_t>(p.pad_left);
  return inside(s, iy0, ix0) && inside(s, iy0 + static_cast<ptrdiff_t>((kernel_h - 1) * p.dilation_h),
                                       ix0 + static_cast<ptrdiff_t>((kernel_w - 1) * p.dilation_w));
}

}  // namespace lowbit
