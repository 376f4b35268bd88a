// elementwise.h: the small operators the model format needs beyond the kernel library: layout-
// changing boundary conversions (f32 models are NCHW at the boundary, activations NHWC inside),
// per-channel threshold / affine / prelu, sign and unpack between 8-bit and packed b1, softmax.
// Loops spread over the worker pool; the conversions, sign and unpack run the element-wise
// kernels of the active ISA (eltwise/kernels.h), which give the same bits on every ISA. Arguments are trusted (the
// model loader validated them); `rows` counts pixels (or vectors) of `c` channels, all samples together.
#pragma once
#include <cstddef>
#include <cstdint>

namespace lowbit {

// f32 [batch][c][hw] -> 8-bit [batch][hw][c], quantize_f32's rule (round half to even, NaN -> zp).
void quantize_chw_to_hwc(const float* x, size_t batch, size_t c, size_t hw, float scale, int32_t zero_point, int32_t lo,
                         int32_t hi, uint8_t* out);
// 8-bit [batch][hw][c] -> f32 [batch][c][hw], dequantize_8bit's rule.
void dequantize_hwc_to_chw(const uint8_t* q, bool is_signed, size_t batch, size_t hw, size_t c, float scale,
                           int32_t zero_point, float* out);
// f32 [batch][hw][c] -> [batch][c][hw].
void transpose_hwc_to_chw(const float* x, size_t batch, size_t hw, size_t c, float* out);

// s32 rows x c -> b1 rows x ceil(c / 64) words: bit = (acc < threshold[ch]) XOR flip[ch].
void threshold_s32(const int32_t* acc, size_t rows, size_t c, const int32_t* threshold, const uint8_t* flip,
                   uint64_t* out);
// s32 [batch][hw][c] -> f32 [batch][c][hw]: y = clamp(float(acc) * scale[ch] + bias[ch], lo, hi), the
// float output of an integer layer with its fused relu / clip.
void affine_s32_to_chw(const int32_t* acc, size_t batch, size_t hw, size_t c, const float* scale, const float* bias,
                       float lo, float hi, float* out);
// 8-bit rows x c -> b1: bit = (q < zero_point), so real 0 binarizes to +1.
void sign_8bit(const uint8_t* q, bool is_signed, size_t rows, size_t c, int32_t zero_point, uint64_t* out);
// b1 rows x c -> s8 rows x c: +1 for a 0 bit, -1 for a 1 bit.
void unpack_b1(const uint64_t* bits, size_t rows, size_t c, int8_t* out);
// The same as f32 +1.0 / -1.0 (a binary layer's output read by a float layer, in one pass).
void unpack_b1_f32(const uint64_t* bits, size_t rows, size_t c, float* out);

// Per-channel PReLU in the dyadic domain: x' = q - z_in;
//   out = clamp((x' >= 0 ? rs(x', m_pos, e_pos) : rs(x', m_neg, e_neg)) + z_out, lo, hi)
struct PreluParams {
  const int32_t* mult_pos;
  const uint8_t* shift_pos;
  const int32_t* mult_neg;
  const uint8_t* shift_neg;
  bool in_signed;
  int32_t in_zero_point, out_zero_point, lo, hi;
};
void prelu_8bit(const uint8_t* x, size_t rows, size_t c, const PreluParams& p, uint8_t* out);

// Constant padding of images of any dtype, pixel by pixel: x [images][h][w] pixels of pixel_bytes
// -> out [images][h + top + bottom][w + left + right], the new pixels copies of `fill`.
void pad_pixels(const uint8_t* x, size_t images, size_t h, size_t w, size_t pixel_bytes, const size_t pads[4],
                const uint8_t* fill, uint8_t* out);

// Softmax over each row of c floats: exp(x - max) / sum, accumulated in double.
void softmax_f32(const float* x, size_t rows, size_t c, float* out);

}  // namespace lowbit
