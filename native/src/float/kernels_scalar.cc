// kernels_scalar.cc: the portable float kernel (no intrinsics): 2 rows x 16 channels of
// accumulators per pass over the panel, written with GCC / Clang vector types of 4 floats so the
// baseline ISA's 128-bit registers (SSE2, NEON) carry them. Plain loops were auto-vectorized across
// K instead, with a shuffle per product (GCC 12: 2 Gop/s; this form: see bench/float.ts).
#include <cstring>

#include "float/kernels.h"

namespace lowbit::scalar {
namespace {

typedef float f32x4 __attribute__((vector_size(16)));
constexpr size_t kRows = 2;
constexpr int kQuads = kFPanelChannels / 4;

inline f32x4 load4(const float* p) {
  f32x4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <size_t R>
void tile(size_t k, const float* a, size_t lda, const float* panel, const float* bias, float lo, float hi, float* c,
          size_t ldc, size_t n) {
  f32x4 acc[R][kQuads];
  for (size_t r = 0; r < R; ++r)
    for (int q = 0; q < kQuads; ++q) acc[r][q] = load4(bias + 4 * q);
  for (size_t kk = 0; kk < k; ++kk) {
    const float* w = panel + kk * kFPanelChannels;
    const f32x4 w0 = load4(w), w1 = load4(w + 4), w2 = load4(w + 8), w3 = load4(w + 12);
    for (size_t r = 0; r < R; ++r) {
      const float x = a[r * lda + kk];
      acc[r][0] += x * w0;
      acc[r][1] += x * w1;
      acc[r][2] += x * w2;
      acc[r][3] += x * w3;
    }
  }
  for (size_t r = 0; r < R; ++r) {
    float v[kFPanelChannels];
    std::memcpy(v, acc[r], sizeof v);
    for (size_t j = 0; j < n; ++j) c[r * ldc + j] = v[j] < lo ? lo : (v[j] > hi ? hi : v[j]);
  }
}

}  // namespace

void f32_gemm(size_t m, size_t k, const float* a, size_t lda, const float* panel, const float* bias, float lo, float hi,
              float* c, size_t ldc, size_t n) {
  size_t i = 0;
  for (; i + kRows <= m; i += kRows) tile<kRows>(k, a + i * lda, lda, panel, bias, lo, hi, c + i * ldc, ldc, n);
  for (; i < m; ++i) tile<1>(k, a + i * lda, lda, panel, bias, lo, hi, c + i * ldc, ldc, n);
}

void f32_dw_tap(size_t n, const float* x, const float* w, float* acc) {
  size_t c = 0;
  for (; c + 4 <= n; c += 4) {
    const f32x4 v = load4(acc + c) + load4(x + c) * load4(w + c);
    std::memcpy(acc + c, &v, sizeof v);
  }
  for (; c < n; ++c) acc[c] += x[c] * w[c];
}

}  // namespace lowbit::scalar
