// kernels.h: the contracts of the float32 kernel family (fconv2d / fdense, the float layers a binary
// network keeps at its boundaries). Every ISA implements the same functions in its own namespace
// (lowbit::scalar, lowbit::avx2, lowbit::neon); lowbit::ref holds the obviously-correct version
// the tests compare against. Unlike the integer and binary families the results are not bit-exact
// across ISAs: the SIMD kernels use fused multiply-adds and sum in another order, so they agree
// with ref within float rounding of the sum (the tests bound |y - ref| by 1e-5 x sum |a * w|).
//
// Weight panels (one layout for every ISA, built by pack_f32_panel): a layer's output channels
// are cut into panels of kFPanelChannels = 16 (the last one zero-padded), each stored K-major:
//
//   panel[k * 16 + j] = W[j][k],  k < K, j < 16       (K x 16 floats, 64 bytes a row of K)
//
// so one step of the reduction loads the 16 channels' weights with two 8-float (or four 4-float)
// vector loads, and a row of activations is broadcast against them.
#pragma once
#include <cstddef>
#include <cstdint>

namespace lowbit {

inline constexpr size_t kFPanelChannels = 16;

// The A operand is read in place (no patch rows are gathered): row i of a call starts at rows[i]
// (an output pixel's window origin in the input, or a dense row) and its K values are `runs`, each
// `length` consecutive floats `offset` floats after the origin (a kernel row of a convolution over a
// padded image; one run of K for a dense row). K = the sum of the lengths.
struct FRun {
  size_t offset, length;
};

// The epilogue of a call and where its results go. v = bias[j] + sum_k A[i][k] * panel[k * 16 + j],
// then y = v < lo ? lo : (v > hi ? hi : v) (lo <= hi, or -inf / +inf for no clamp; NaN stays NaN);
// with threshold null: c[i * ldc + j] = y for j < n (only the first n columns are written: the
// channel tail of a layer); else the sign bits of the panel's 16 channels, one 16-bit mask per row:
// bits[i * ldb] bit j = (y < threshold[j]) for j < n (NaN: 0), 0 for j >= n. bias and threshold: 16
// values (the panel's channels). c, bits: the call's first row.
struct F32GemmOut {
  const float* bias;
  float lo, hi;
  float* c;
  size_t ldc;
  const float* threshold;
  uint16_t* bits;
  size_t ldb;
};

// Float GEMM over one weight panel (m rows, 16 channels of which n in [1, 16] are written) with its
// epilogue fused. Every row is summed in the same order (bias, then k ascending, one FMA chain per
// channel) whatever m is and wherever the row lies, so a sample's outputs do not depend on the batch
// it runs in (the server stacks requests into one batch). That rules out splitting a lone row's sum
// over several accumulators to hide the FMA latency: a batch-1 dense layer pays for it (measured in
// the closing note of issue 16). The sums depend on the runs (how K is cut), not on the rows.
// kFRowBlock: the rows of the widest register tile; drivers cut rows in multiples of it.
inline constexpr size_t kFRowBlock = 6;
using F32GemmFn = void (*)(size_t m, const float* const* rows, const FRun* runs, size_t nruns, const float* panel,
                           const F32GemmOut& out, size_t n);

// Depthwise multiply-accumulate of one tap over n channels (a depthwise layer's weights are
// stored [tap][channel], as its input pixels are):
//   acc[c] += x[c] * w[c],  c < n
using F32DepthwiseTapFn = void (*)(size_t n, const float* x, const float* w, float* acc);

struct FloatKernels {
  F32GemmFn f32_gemm;
  F32DepthwiseTapFn f32_dw_tap;
};

#define LOWBIT_DECLARE_FLOAT_KERNELS(ns)                                                                \
  namespace ns {                                                                                        \
  void f32_gemm(size_t m, const float* const* rows, const FRun* runs, size_t nruns, const float* panel, \
                const F32GemmOut& out, size_t n);                                                       \
  void f32_dw_tap(size_t n, const float* x, const float* w, float* acc);                                \
  inline constexpr FloatKernels kFloatKernels = {f32_gemm, f32_dw_tap};                                 \
  }

LOWBIT_DECLARE_FLOAT_KERNELS(ref)
LOWBIT_DECLARE_FLOAT_KERNELS(scalar)
#if defined(__x86_64__)
LOWBIT_DECLARE_FLOAT_KERNELS(avx2)  // AVX2 + FMA
#endif
#if defined(__aarch64__)
LOWBIT_DECLARE_FLOAT_KERNELS(neon)
#endif

// Panel packing (shared by every ISA). w points at channel `first`'s row of a row-major [channels][k]
// float matrix with row stride ldw; channels >= count are zero. dst receives k * 16 floats.
void pack_f32_panel(const float* w, size_t count, size_t k, size_t ldw, float* dst);

}  // namespace lowbit
