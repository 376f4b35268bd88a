// conv.h: the geometry shared by the binary and the integer convolutions: NHWC tensors, OHWI
// weights, strides, dilations, explicit pads, and the validated output shape.
#pragma once
#include <cstddef>

namespace lowbit {

// Binary convolutions count a padded input pixel as +1 (One: free, the packed 0 bit) or as 0
// (Zero: exact, through a per-channel border correction). Integer convolutions ignore it: their
// padding is the input zero point, i.e. a real 0.
enum class PadValue { One, Zero };

struct Conv2dParams {
  size_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  size_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  PadValue pad_value = PadValue::One;
};

// The window of a pooling operator (binary max pool, integer max / average pool).
struct Pool2dParams {
  size_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  size_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
};

struct Conv2dShape {
  size_t batch, in_h, in_w, in_c;
  size_t out_h, out_w, out_c;
};

// Validates a conv's geometry (input channels = in_c_per_group x groups, pads smaller than the
// dilated kernel, every buffer size representable) and returns the shapes; throws on mismatch.
Conv2dShape conv2d_shape(size_t batch, size_t in_h, size_t in_w, size_t in_c, size_t out_c, size_t kernel_h,
                         size_t kernel_w, size_t in_c_per_group, size_t groups, const Conv2dParams& p);

}  // namespace lowbit
