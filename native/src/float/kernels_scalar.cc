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

// Rows i0 .. i0 + R - 1 of the call.
template <size_t R>
void tile(size_t i0, const float* const* rows, const FRun* runs, size_t nruns, const float* panel,
          const F32GemmOut& out, size_t n) {
  f32x4 acc[R][kQuads];
  const float* a[R];
  for (size_t r = 0; r < R; ++r) {
    a[r] = rows[i0 + r];
    for (int q = 0; q < kQuads; ++q) acc[r][q] = load4(out.bias + 4 * q);
  }
  const float* w = panel;
  for (size_t run = 0; run < nruns; ++run) {
    const size_t end = runs[run].offset + runs[run].length;
    for (size_t kk = runs[run].offset; kk < end; ++kk, w += kFPanelChannels) {
      const f32x4 w0 = load4(w), w1 = load4(w + 4), w2 = load4(w + 8), w3 = load4(w + 12);
      for (size_t r = 0; r < R; ++r) {
        const float x = a[r][kk];
        acc[r][0] += x * w0;
        acc[r][1] += x * w1;
        acc[r][2] += x * w2;
        acc[r][3] += x * w3;
      }
    }
  }
  for (size_t r = 0; r < R; ++r) {
    float v[kFPanelChannels];
    std::memcpy(v, acc[r], sizeof v);
    const size_t i = i0 + r;
    if (out.threshold) {
      uint32_t mask = 0;
      for (size_t j = 0; j < n; ++j) {
        const float y = v[j] < out.lo ? out.lo : (v[j] > out.hi ? out.hi : v[j]);
        mask |= uint32_t{y < out.threshold[j]} << j;
      }
      out.bits[i * out.ldb] = static_cast<uint16_t>(mask);
    } else {
      for (size_t j = 0; j < n; ++j) out.c[i * out.ldc + j] = v[j] < out.lo ? out.lo : (v[j] > out.hi ? out.hi : v[j]);
    }
  }
}

}  // namespace

void f32_gemm(size_t m, const float* const* rows, const FRun* runs, size_t nruns, const float* panel,
              const F32GemmOut& out, size_t n) {
  size_t i = 0;
  for (; i + kRows <= m; i += kRows) tile<kRows>(i, rows, runs, nruns, panel, out, n);
  for (; i < m; ++i) tile<1>(i, rows, runs, nruns, panel, out, n);
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
