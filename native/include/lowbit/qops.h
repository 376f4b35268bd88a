// qops.h: the integer element-wise and pooling operators of the dyadic (HAWQ-V3) family, on
// per-tensor quantized 8-bit tensors: real = scale * (q - zero_point). Storage is int8
// (is_signed) or uint8; INT4 activations are the same bytes with the clamps [-8, 7] / [0, 15].
// Outputs hold the low byte of each clamped value. Every rescale is integer only:
//   rs(v, m, e) = ((int64)v * m + (e > 0 ? 2^(e-1) : 0)) >> e     (round half up)
// with (m, e) = to_dyadic(real ratio); the ratios are computed once per call in double
// precision from the scales as given, exactly as written in each comment below. Every function
// validates its arguments and throws lowbit::Error (Quantization for a scale or ratio with no
// dyadic form, Range for zero points and clamps, Shape for geometry); called with no elements
// (n = 0, outer = 0) qadd, qclamp and qconcat only validate, which is how a model loader checks them.
#pragma once
#include <cstddef>
#include <cstdint>

#include "lowbit/conv.h"  // Conv2dShape, Pool2dParams (shared with bmaxpool2d)
#include "lowbit/error.h"
#include "lowbit/quantize.h"  // dyadic_rescale

namespace lowbit {

// Quantization parameters of one tensor: scale finite and > 0, zero_point inside the dtype's
// range ([-128, 127] for int8, [0, 255] for uint8).
struct QuantParams {
  double scale = 1.0;
  int32_t zero_point = 0;
};

// An 8-bit output: its quantization parameters and clamp. lo <= hi, both in [-128, 127] (int8)
// or both in [0, 255] (uint8); lo <= zero_point <= hi.
struct QuantOutput {
  QuantParams q;
  int32_t lo = -128, hi = 127;
};

// The rescale of the family, dyadic_rescale, is in lowbit/quantize.h (one definition for every
// operator below and for the kernels' requantizer).

// Residual add (HAWQ-V3): each input rescaled to the output scale by its own dyadic, then added:
//   out = clamp(rs(a - za, ma, ea) + rs(b - zb, mb, eb) + zo, lo, hi)
//   (ma, ea) = to_dyadic(a.scale / out.scale), (mb, eb) = to_dyadic(b.scale / out.scale)
// a and b hold n values each (same shape), each int8 or uint8 independently.
void qadd(const uint8_t* a, bool a_signed, const QuantParams& qa, const uint8_t* b, bool b_signed,
          const QuantParams& qb, size_t n, const QuantOutput& out_q, uint8_t* out);

// Clamp (a relu in the quantized domain is qclamp(x, max(zero_point, lo), hi)): out = clamp(x, lo, hi),
// same dtype as x; lo <= hi inside x's dtype range.
void qclamp(const uint8_t* x, bool is_signed, size_t n, int32_t lo, int32_t hi, uint8_t* out);

// Validates a pool's geometry on an 8-bit NHWC input (the rules of bmaxpool2d: every dimension
// >= 1, kernel and strides >= 1, each pad < the kernel) and returns the shapes.
Conv2dShape qpool2d_shape(size_t batch, size_t in_h, size_t in_w, size_t channels, const Pool2dParams& p);

// Max pool, same dtype and quantization parameters as x: out = max over the window's in-image
// taps (padding never wins). s from qpool2d_shape.
void qmaxpool2d(const uint8_t* x, bool is_signed, const Conv2dShape& s, const Pool2dParams& p, uint8_t* out);

// Average pool with a dyadic division by the window's count n:
//   out = clamp(rs(sum_window(x - zi), m_n, e_n) + zo, lo, hi),
//   (m_n, e_n) = to_dyadic(in.scale / (out.scale * n))
// n = kernel_h * kernel_w with count_include_pad, else the window's in-image taps; padded taps
// add 0 (= x - zi) either way. The window (kernel_h * kernel_w taps) must keep |sum| <= 2^31 - 1,
// so at most 8421504 taps. s from qpool2d_shape.
void qavgpool2d(const uint8_t* x, bool is_signed, const Conv2dShape& s, const Pool2dParams& p, bool count_include_pad,
                const QuantParams& in_q, const QuantOutput& out_q, uint8_t* out);

// The checks qavgpool2d makes (shapes, parameters, every window count's dyadic pair), without data:
// a model loader validates a layer once, before any run.
void validate_qavgpool2d(bool is_signed, const Conv2dShape& s, const Pool2dParams& p, bool count_include_pad,
                         const QuantParams& in_q, const QuantOutput& out_q);

// Global average pool: qavgpool2d over the whole H x W (n = H * W), output [N, 1, 1, C].
void qglobalavgpool(const uint8_t* x, bool is_signed, size_t batch, size_t in_h, size_t in_w, size_t channels,
                    const QuantParams& in_q, const QuantOutput& out_q, uint8_t* out);
// The checks qglobalavgpool makes for one sample, without data.
void validate_qglobalavgpool(bool is_signed, size_t in_h, size_t in_w, size_t channels, const QuantParams& in_q,
                             const QuantOutput& out_q);

// One input of qconcat: outer x axis_size x inner values.
struct QConcatInput {
  const uint8_t* data = nullptr;
  bool is_signed = true;
  size_t axis_size = 0;
  QuantParams q;
};

// Concatenation along an axis (the tensors viewed as [outer, axis, inner]), each input rescaled
// to the output's parameters:
//   out = clamp(rs(x - zi, mi, ei) + zo, lo, hi),  (mi, ei) = to_dyadic(inputs[i].scale / out.scale)
// (a plain copy where an input's scale, zero point and dtype equal the output's; the formula then
// gives the same bytes). Output: outer x (sum of axis_size) x inner values.
void qconcat(const QConcatInput* inputs, size_t count, size_t outer, size_t inner, const QuantOutput& out_q,
             uint8_t* out);

}  // namespace lowbit
