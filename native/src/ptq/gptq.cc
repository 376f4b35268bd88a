// gptq.cc: Gram matrix, Cholesky factor and compensated rounding for post-training weight rounding
// (lowbit/ptq.h). The O(k^3) and O(rows k^2) products run on the float GEMM kernel (16-column
// panels, src/float/kernels.h) into a scratch block that is then added where it belongs; the
// triangular solves and the rounding itself are plain loops (O(k^2 nb) and O(rows k nb)).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "cpu/dispatch.h"
#include "lowbit/ptq.h"
#include "runtime/thread_pool.h"

namespace lowbit {
namespace {

constexpr size_t kP = kFPanelChannels;
// Columns per block of the Cholesky factorization and of the rounding: the part done by plain loops
// grows with it, the GEMM calls shrink.
constexpr size_t kBlock = 64;

// out[i * 16 + j] = sum_t rows[i][t] * panel[t * 16 + j] for i < m, the 16 panel columns.
void gemm_block(size_t m, const float* const* rows, size_t len, const float* panel, float* out) {
  static const float zeros[kP] = {};
  const FRun run{0, len};
  F32GemmOut o{};
  o.bias = zeros;
  o.lo = -INFINITY;
  o.hi = INFINITY;
  o.c = out;
  o.ldc = kP;
  float_kernels().f32_gemm(m, rows, &run, 1, panel, o, kP);
}

}  // namespace

void gram_accumulate(const float* x, size_t rows, size_t k, float* h) {
  if (rows == 0 || k == 0) return;
  std::vector<float> xt(k * rows);  // x^T: row a holds column a of x
  for (size_t r = 0; r < rows; ++r)
    for (size_t a = 0; a < k; ++a) xt[a * rows + r] = x[r * k + a];
  const size_t panels = (k + kP - 1) / kP;
  // Panel c (columns b in [c, c + 16)) computes h[a][b] for a >= c and writes both triangles:
  // the tasks touch disjoint entries.
  parallel_for(panels, [&](size_t p) {
    const size_t c = p * kP, n = std::min(kP, k - c), m = k - c;
    std::vector<float> panel(rows * kP, 0.0f), out(m * kP);
    for (size_t r = 0; r < rows; ++r)
      for (size_t j = 0; j < n; ++j) panel[r * kP + j] = x[r * k + c + j];
    std::vector<const float*> ptrs(m);
    for (size_t i = 0; i < m; ++i) ptrs[i] = &xt[(c + i) * rows];
    gemm_block(m, ptrs.data(), rows, panel.data(), out.data());
    for (size_t i = 0; i < m; ++i)
      for (size_t j = 0; j < n && j <= i; ++j) {
        const size_t a = c + i, b = c + j;
        h[a * k + b] += out[i * kP + j];
        if (a != b) h[b * k + a] = h[a * k + b];
      }
  });
}

bool cholesky_lower(float* a, size_t k) {
  for (size_t j0 = 0; j0 < k; j0 += kBlock) {
    const size_t j1 = std::min(k, j0 + kBlock);
    // The diagonal block, then the rows below it: L[i][j] = (a[i][j] - sum_{j0 <= p < j} L[i][p] L[j][p]) / L[j][j]
    // (earlier blocks were subtracted by the trailing updates).
    for (size_t j = j0; j < j1; ++j) {
      double d = a[j * k + j];
      for (size_t p = j0; p < j; ++p) d -= double(a[j * k + p]) * a[j * k + p];
      if (!(d > 0)) return false;
      a[j * k + j] = static_cast<float>(std::sqrt(d));
      for (size_t i = j + 1; i < j1; ++i) {
        double s = a[i * k + j];
        for (size_t p = j0; p < j; ++p) s -= double(a[i * k + p]) * a[j * k + p];
        a[i * k + j] = static_cast<float>(s / a[j * k + j]);
      }
    }
    if (j1 == k) break;
    // The rows below, four at a time (four independent chains of dependent float64 sums, each
    // the same operations in the same order as one row alone), each also copied into lb: the
    // trailing update reads them packed (rows k floats apart alias in the caches).
    const size_t chunk = 32, below = k - j1, jb = j1 - j0;
    std::vector<float> lb(below * jb);
    parallel_for((below + chunk - 1) / chunk, [&](size_t t) {
      const size_t end = std::min(k, j1 + (t + 1) * chunk);
      for (size_t i0 = j1 + t * chunk; i0 < end; i0 += 4) {
        const size_t nr = std::min<size_t>(4, end - i0);
        float* r[4];
        for (size_t q = 0; q < 4; ++q) r[q] = &a[(i0 + std::min(q, nr - 1)) * k];
        for (size_t j = j0; j < j1; ++j) {
          const float* aj = &a[j * k];
          double s0 = r[0][j], s1 = r[1][j], s2 = r[2][j], s3 = r[3][j];
          for (size_t p = j0; p < j; ++p) {
            const double v = aj[p];
            s0 -= double(r[0][p]) * v;
            s1 -= double(r[1][p]) * v;
            s2 -= double(r[2][p]) * v;
            s3 -= double(r[3][p]) * v;
          }
          // Rows repeated past nr compute the last row's value again (the same bits).
          const double d = aj[j];
          r[3][j] = static_cast<float>(s3 / d);
          r[2][j] = static_cast<float>(s2 / d);
          r[1][j] = static_cast<float>(s1 / d);
          r[0][j] = static_cast<float>(s0 / d);
        }
        for (size_t q = 0; q < nr; ++q) std::memcpy(&lb[(i0 + q - j1) * jb], &r[q][j0], jb * sizeof(float));
      }
    });
    // Trailing update of the lower triangle: a[i][c] -= sum_{j0 <= p < j1} L[i][p] L[c][p], i >= c >= j1,
    // by 16-column panels c (the packed L[c..c+16) rows, K-major). Tasks take runs of rows, so a
    // row's entries are written together. Each panel's rows [c, k) are cut where a call from row c
    // would start a row block (c + a multiple of kFRowBlock): the sums are those of one call.
    const size_t panels = (below + kP - 1) / kP;
    std::vector<float> packed(panels * jb * kP, 0.0f);
    parallel_for(panels, [&](size_t pi) {
      const size_t n = std::min(kP, below - pi * kP);
      for (size_t p = 0; p < jb; ++p)
        for (size_t j = 0; j < n; ++j) packed[(pi * jb + p) * kP + j] = lb[(pi * kP + j) * jb + p];
    });
    const size_t run = 8 * kFRowBlock;
    const auto cut = [&](size_t c, size_t row) {  // the first cut at or after row in panel c's rows
      return row >= k ? k : std::min(k, c + (row - c + kFRowBlock - 1) / kFRowBlock * kFRowBlock);
    };
    parallel_for((below + run - 1) / run, [&](size_t t) {
      const size_t r0 = j1 + t * run, r1 = std::min(k, r0 + run);
      std::vector<float> out((run + kFRowBlock) * kP);
      std::vector<const float*> ptrs(run + kFRowBlock);
      for (size_t pi = 0; pi < panels && j1 + pi * kP < r1; ++pi) {
        const size_t c = j1 + pi * kP, n = std::min(kP, k - c);
        const size_t s0 = cut(c, std::max(r0, c)), s1 = cut(c, r1);
        if (s0 >= s1) continue;
        for (size_t i = s0; i < s1; ++i) ptrs[i - s0] = &lb[(i - j1) * jb];
        gemm_block(s1 - s0, ptrs.data(), jb, &packed[pi * jb * kP], out.data());
        for (size_t i = s0; i < s1; ++i)
          for (size_t j = 0; j < n && c + j <= i; ++j) a[i * k + c + j] -= out[(i - s0) * kP + j];
      }
    });
  }
  return true;
}

void compensated_round(const float* w, size_t rows, size_t k, const float* scales, int qmax, const float* l,
                       int8_t* q) {
  // s[o][i]: sum_{j > i} L[j][i] e[o][j] over the columns rounded so far; e: their errors.
  std::vector<float> s(rows * k, 0.0f), e(rows * k, 0.0f);
  const size_t row_chunk = 8;
  for (size_t i1 = k; i1 > 0;) {
    const size_t i0 = i1 > kBlock ? i1 - kBlock : 0;
    parallel_for((rows + row_chunk - 1) / row_chunk, [&](size_t t) {
      for (size_t o = t * row_chunk; o < std::min(rows, (t + 1) * row_chunk); ++o) {
        const float scale = scales[o];
        float* so = &s[o * k];
        for (size_t i = i1; i-- > i0;) {
          const float v = w[o * k + i] + so[i] / l[i * k + i];
          const float r = scale > 0 ? std::nearbyint(v / scale) : 0.0f;
          const float qi = std::min<float>(static_cast<float>(qmax), std::max<float>(-static_cast<float>(qmax), r));
          q[o * k + i] = static_cast<int8_t>(qi);
          const float err = w[o * k + i] - qi * scale;
          e[o * k + i] = err;
          const float* li = &l[i * k];
          for (size_t j = i0; j < i; ++j) so[j] += li[j] * err;
        }
      }
    });
    if (i0 > 0) {
      // s[o][c] += sum_{i0 <= p < i1} e[o][p] L[p][c] for the columns c < i0 still to round.
      const size_t len = i1 - i0, panels = (i0 + kP - 1) / kP;
      parallel_for(panels, [&](size_t pi) {
        const size_t c = pi * kP, n = std::min(kP, i0 - c);
        std::vector<float> panel(len * kP, 0.0f), out(rows * kP);
        for (size_t p = 0; p < len; ++p)
          for (size_t j = 0; j < n; ++j) panel[p * kP + j] = l[(i0 + p) * k + c + j];
        std::vector<const float*> ptrs(rows);
        for (size_t o = 0; o < rows; ++o) ptrs[o] = &e[o * k + i0];
        gemm_block(rows, ptrs.data(), len, panel.data(), out.data());
        for (size_t o = 0; o < rows; ++o)
          for (size_t j = 0; j < n; ++j) s[o * k + c + j] += out[o * kP + j];
      });
    }
    i1 = i0;
  }
}

bool gptq_factor(const float* h, size_t k, float damp, bool act_order, float* l, uint32_t* perm) {
  if (k == 0) return false;
  double mean = 0;
  for (size_t i = 0; i < k; ++i) mean += h[i * k + i];
  mean /= static_cast<double>(k);
  if (!(mean > 0) || !std::isfinite(mean)) return false;
  // Rounded from the last position to the first: ascending diagonal puts the largest first.
  std::iota(perm, perm + k, uint32_t{0});
  if (act_order) std::stable_sort(perm, perm + k, [&](size_t x, size_t y) { return h[x * k + x] < h[y * k + y]; });
  std::fill(l, l + k * k, 0.0f);
  for (int attempt = 0; attempt < 4; ++attempt) {
    const float add = static_cast<float>(mean * damp * std::pow(10.0, attempt));
    for (size_t a = 0; a < k; ++a)
      for (size_t b = 0; b <= a; ++b) l[a * k + b] = h[size_t{perm[a]} * k + perm[b]] + (a == b ? add : 0.0f);
    if (cholesky_lower(l, k)) return true;
  }
  return false;
}

void gptq_round_factored(const float* l, const uint32_t* perm, size_t k, const float* w, size_t rows,
                         const float* scales, int qmax, int8_t* q) {
  std::vector<float> wp(rows * k);
  for (size_t o = 0; o < rows; ++o)
    for (size_t a = 0; a < k; ++a) wp[o * k + a] = w[o * k + perm[a]];
  std::vector<int8_t> qp(rows * k);
  compensated_round(wp.data(), rows, k, scales, qmax, l, qp.data());
  for (size_t o = 0; o < rows; ++o)
    for (size_t a = 0; a < k; ++a) q[o * k + perm[a]] = qp[o * k + a];
}

bool gptq_round(const float* h, size_t k, const float* w, size_t rows, const float* scales, int qmax, float damp,
                bool act_order, int8_t* q) {
  std::vector<float> l(k * k);
  std::vector<uint32_t> perm(k);
  if (!gptq_factor(h, k, damp, act_order, l.data(), perm.data())) return false;
  gptq_round_factored(l.data(), perm.data(), k, w, rows, scales, qmax, q);
  return true;
}

}  // namespace lowbit
