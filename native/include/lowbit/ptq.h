// ptq.h: the linear algebra of post-training weight rounding (GPTQ-style error compensation): the
// Gram matrix of a layer's input patches, its Cholesky factor, and the column-by-column rounding
// that compensates each column's rounding error in the columns not yet rounded. Float32 matrices,
// row-major; the products run on the float GEMM kernel of the active ISA, over the thread pool.
#pragma once
#include <cstddef>
#include <cstdint>

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

// The whole rounding: h (k x k Gram matrix) plus damp * mean(diag h) on its diagonal (raised tenfold
// up to three times while the factorization fails), columns permuted so those with the largest
// diagonal are rounded first (act_order), then compensated_round. Returns false (q untouched) when
// h has no positive diagonal or cannot be factored.
bool gptq_round(const float* h, size_t k, const float* w, size_t rows, const float* scales, int qmax, float damp,
                bool act_order, int8_t* q);

}  // namespace lowbit
