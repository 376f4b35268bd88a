// ptq.h: the linear algebra of post-training weight rounding (GPTQ-style error compensation): the
// Gram matrix of a layer's input patches, its Cholesky factor, and the column-by-column rounding
// that compensates each column's rounding error in the columns not yet rounded. Float32 matrices,
// row-major; the products run on the float GEMM kernel of the active ISA, over the thread pool. Also the
// float64-accumulating reference convolution the converter evaluates the float model with.
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>

namespace lowbit {

// h (k x k, both triangles) += x^T x, x: rows x k. The sums of one call run in float32.
void gram_accumulate(const float* x, size_t rows, size_t k, float* h);

// In place: the lower Cholesky factor L of the symmetric positive definite a (k x k; only its lower
// triangle is read), a = L L^T; the strict upper triangle is left as it was. Returns false (a
// partly overwritten) when a pivot is not positive.
bool cholesky_lower(float* a, size_t k);

// Rounds the rows of w (rows x k, row-major) to integers q in [-qmax, qmax] times scales[row] so as
// to keep |(w - q * s) x| small over the inputs x whose Gram matrix is h = L L^T (L: cholesky_lower
// of the damped h): the nearest-plane rule, columns from the last to the first,
//   q[i] = clamp(round_half_even((w[i] + sum_{j > i} L[j][i] e[j] / L[i][i]) / s), -qmax, qmax),
//   e[j] = w[j] - q[j] * s,
// which is GPTQ's error compensation (Frantar et al. 2023) with H = L L^T, in reverse column order.
void compensated_round(const float* w, size_t rows, size_t k, const float* scales, int qmax, const float* l, int8_t* q);

// The factor of the whole rounding below, which depends only on h (a layer rounded at several bits
// factors once): l (k x k) the lower Cholesky factor of the damped h with rows and columns permuted
// by perm (k; position a holds column perm[a]). Returns false when h has no positive diagonal or
// cannot be factored.
bool gptq_factor(const float* h, size_t k, float damp, bool act_order, float* l, uint32_t* perm);
// compensated_round of w's columns in perm's order against that factor; q in w's column order.
void gptq_round_factored(const float* l, const uint32_t* perm, size_t k, const float* w, size_t rows,
                         const float* scales, int qmax, int8_t* q);

// The whole rounding: h (k x k Gram matrix) plus damp * mean(diag h) on its diagonal (raised tenfold
// up to three times while the factorization fails), columns permuted so those with the largest
// diagonal are rounded first (act_order), then compensated_round. Returns false (q untouched) when
// h has no positive diagonal or cannot be factored. gptq_factor, then gptq_round_factored.
bool gptq_round(const float* h, size_t k, const float* w, size_t rows, const float* scales, int qmax, float damp,
                bool act_order, int8_t* q);

}  // namespace lowbit

namespace lowbit {

// The geometry of reference_conv: input [n, c, h, w], weight [oc, c / groups, kh, kw], output
// [n, oc, oh, ow] with oh = (h + pad_top + pad_bottom - dil_h (kh - 1) - 1) / stride_h + 1 (and ow alike).
struct RefConvShape {
  size_t n, c, h, w, oc, kh, kw, groups;
  size_t stride_h, stride_w, dil_h, dil_w;
  size_t pad_top, pad_left, pad_bottom, pad_right;
};

// Checks the shape (positive sizes, groups dividing c and oc, a window that fits the padded input,
// element counts within size_t) and returns {oh, ow}; throws Error(Shape / Range) otherwise.
std::pair<size_t, size_t> reference_conv_output(const RefConvShape& s);

// The converter's float reference convolution (lib/onnx/ops/linear.ts), bit for bit: every output
// starts at its bias (or +0) in float64, adds double(w) * double(x) over (input channel, ky, kx) in
// that order with x read from a zero-padded copy of the input, and is rounded to float32 once.
// (A float32 product is exact in float64, so a fused multiply-add gives the same sums.) bias: oc
// values or null. Over the thread pool.
void reference_conv(const RefConvShape& s, const float* x, const float* weight, const float* bias, float* out);

}  // namespace lowbit
