// conv_geometry.cc: output shapes of 2-D convolutions, validated once for every conv family.
#include <string>

#include "common/checked_math.h"
#include "lowbit/conv.h"
#include "lowbit/error.h"

namespace lowbit {
namespace {

size_t conv_out_dim(size_t in, size_t pad_a, size_t pad_b, size_t k, size_t stride, size_t dil, const char* axis) {
  const size_t padded = checked_add(checked_add(in, pad_a, "padded size"), pad_b, "padded size");
  const size_t span = checked_add(checked_mul(dil, k - 1, "dilated kernel"), 1, "dilated kernel");
  if (padded < span)
    fail(ErrorKind::Shape, std::string("the dilated kernel (") + num(span) + ") is larger than the padded input " +
                               axis + " (" + num(padded) + ")");
  return (padded - span) / stride + 1;
}

}  // namespace

Conv2dShape conv2d_shape(size_t batch, size_t in_h, size_t in_w, size_t in_c, size_t out_c, size_t kernel_h,
                         size_t kernel_w, size_t in_c_per_group, size_t groups, const Conv2dParams& p) {
  if (batch == 0 || in_h == 0 || in_w == 0 || in_c == 0)
    fail(ErrorKind::Shape, "input: every dimension of [N, H, W, C] must be at least 1, got [" + num(batch) + ", " +
                               num(in_h) + ", " + num(in_w) + ", " + num(in_c) + "]");
  if (p.stride_h == 0 || p.stride_w == 0) fail(ErrorKind::Range, "strides must be at least 1");
  if (p.dilation_h == 0 || p.dilation_w == 0) fail(ErrorKind::Range, "dilations must be at least 1");
  if (in_c != checked_mul(in_c_per_group, groups, "input channels"))
    fail(ErrorKind::Shape, "input has " + num(in_c) + " channels but the weights expect " + num(in_c_per_group) +
                               " x " + num(groups) + " groups = " + num(in_c_per_group * groups));
  if (p.pad_top >= kernel_h * p.dilation_h || p.pad_bottom >= kernel_h * p.dilation_h ||
      p.pad_left >= kernel_w * p.dilation_w || p.pad_right >= kernel_w * p.dilation_w)
    fail(ErrorKind::Range, "pads [" + num(p.pad_top) + ", " + num(p.pad_left) + ", " + num(p.pad_bottom) + ", " +
                               num(p.pad_right) + "] must each be smaller than the dilated kernel extent (" +
                               num(kernel_h * p.dilation_h) + " x " + num(kernel_w * p.dilation_w) + ")");
  Conv2dShape s{batch, in_h, in_w, in_c, 0, 0, out_c};
  s.out_h = conv_out_dim(in_h, p.pad_top, p.pad_bottom, kernel_h, p.stride_h, p.dilation_h, "height");
  s.out_w = conv_out_dim(in_w, p.pad_left, p.pad_right, kernel_w, p.stride_w, p.dilation_w, "width");
  return s;
}

}  // namespace lowbit
