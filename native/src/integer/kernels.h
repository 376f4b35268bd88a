// kernels.h: the contracts of the integer (INT8/INT4) kernel family. Every ISA implements the same
// functions in its own namespace (lowbit::scalar, lowbit::avx2, lowbit::avx512, lowbit::neon); lowbit::ref holds
// the obviously-correct versions the tests compare against. All results are exact int32 sums:
// every kernel equals ref bit for bit for every operand value.
//
// Activations reach the kernels as raw bytes plus an XOR mask: the value of byte x is
// (int8_t)(x ^ mask). mask = 0 reads int8 tensors as they are; mask = 0x80 reads a uint8 tensor
// as x - 128, so every kernel multiplies int8 by int8 and the operator folds the +128 (and any
// zero point) into the bias with the weight sums.
//
// Weight panels (one layout for every ISA, built by pack_q8_panel / pack_q4_panel): a layer's
// output channels are cut into panels of kQPanelChannels = 16 (the last one zero-padded), and the
// reduction axis K is zero-padded to kp = round_up(K, 4). A panel is
//   header: int32 wsum[16], wsum[j] = sum_k W[j][k] (64 bytes)
//   body:   kp / 4 groups; group g holds the 64 values v[4 * j + t] = W[j][4 * g + t], j < 16, t < 4
//           Q8: 64 int8 bytes, v[i] at byte i.
//           Q4: 32 bytes, byte i = (v[i] & 0xF) | (v[i + 32] << 4): two's-complement nibbles, so
//               channels 0-7 of the group in the low nibbles and channels 8-15 in the high ones.
// Panels are 64-byte aligned by the packer; kernels must not rely on it (unaligned loads).
#pragma once
#include <cstddef>
#include <cstdint>

namespace lowbit {

inline constexpr size_t kQPanelChannels = 16;
inline constexpr size_t kQPanelHeaderBytes = 64;

inline size_t q_padded_k(size_t k) { return (k + 3) / 4 * 4; }
inline size_t q8_panel_bytes(size_t kp) { return kQPanelHeaderBytes + kp * kQPanelChannels; }
inline size_t q4_panel_bytes(size_t kp) { return kQPanelHeaderBytes + kp * kQPanelChannels / 2; }

// Integer GEMM over one weight panel:
//   c[i * ldc + j] = sum_{k < kp} (int8_t)(a[i * lda + k] ^ mask) * W[j][k],  i < m, j < 16
// All 16 columns are written (padded channels give 0). a has lda >= kp bytes per row; the bytes
// a[i * lda + k] for K <= k < kp must equal mask (value 0). kp is a multiple of 4, at most
// kQMaxK, which keeps every sum inside int32 (|sum| <= kp * 128 * 128 <= 2^30).
// Q8 kernels are exact for every int8 weight, -128 included.
// Q7 (q7_gemm): the Q8 contract and panel, for panels whose every weight is in [-64, 64] (bits 7):
// then a + 128 times a weight pairs stay within int16 (2 * 255 * 64 = 32640), so AVX2 without
// VNNI runs it with exact vpmaddubsw. Where no such shortcut pays, q7_gemm is the ISA's q8_gemm.
inline constexpr size_t kQMaxK = 65536;
using Q8GemmFn = void (*)(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel,
                          int32_t* c, size_t ldc);
using Q4GemmFn = void (*)(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel,
                          int32_t* c, size_t ldc);

// Q8 GEMM whose rows of A lie in pieces (a convolution reading its input in place: one
// piece per kernel row, kernel_w * C contiguous input bytes): row i is `runs` pieces of
// len = kp / runs bytes (len a multiple of 4), piece r at a[i * runs + r]:
//   c[i * ldc + j] = sum_{k < kp} (int8_t)(a[i * runs + k / len][k % len] ^ mask) * W[j][k]
// otherwise the q8_gemm contract (all 16 columns written); q4_gemm_runs: the same over a Q4 panel.
// Null in the tables of ISAs without them: the conv driver gathers patch rows for the GEMMs there.
using Q8GemmRunsFn = void (*)(size_t m, size_t kp, size_t runs, const uint8_t* const* a, uint8_t mask,
                              const uint8_t* panel, int32_t* c, size_t ldc);

// Depthwise convolution of `pixels` output pixels over n channels, every tap at once:
//   acc[p * n + c] = bias[c] + sum_{t < taps} (int8_t)(x[p * taps + t][c] ^ mask) * w[t * n + c]
// x: per output pixel, `taps` pointers to n bytes (an input pixel, or a row of the input zero
// point for a padded tap); w: the weights as [tap][channel]. taps <= kQMaxK, so the sum is exact
// in int32; the bias is added modulo 2^32 (the folded bias may wrap, the true result does not).
using QDepthwiseFn = void (*)(size_t n, size_t taps, size_t pixels, const uint8_t* const* x, uint8_t mask,
                              const int8_t* w, const int32_t* bias, int32_t* acc);

// Output pixels of a convolution with a short reduction (a first layer on 1-3 channel images, a
// 1x1 conv on few channels: where gathering patches for the GEMM would cost more than the arithmetic):
//   acc[p * n + c] = bias[c] + sum_{i < k} x[p * ldx + i] * w[i * stride + c],  p < pixels, c < n
// x: per pixel k values in [-255, 255] (input minus its zero point; 0 for a padded tap); w: k rows
// of `stride` values in [-128, 127], stride a multiple of 16 and >= n, zero past n; k <= kQSmallK,
// so every partial sum stays far inside int32 beside the bias.
inline constexpr size_t kQSmallK = 32;
using QSmallKFn = void (*)(size_t k, size_t n, size_t pixels, const int16_t* x, size_t ldx, const int16_t* w,
                           size_t stride, const int32_t* bias, int32_t* acc);

struct IntegerKernels {
  Q8GemmFn q8_gemm;
  Q4GemmFn q4_gemm;
  Q8GemmFn q7_gemm;
  QDepthwiseFn q8_dw;
  QSmallKFn q16_small_k;
  Q8GemmRunsFn q8_gemm_runs = nullptr;  // Q8 and Q7 panels
  Q8GemmRunsFn q4_gemm_runs = nullptr;
};

#define LOWBIT_DECLARE_INTEGER_GEMMS(ns)                                                                          \
  namespace ns {                                                                                                  \
  void q8_gemm(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel, int32_t* c, \
               size_t ldc);                                                                                       \
  void q4_gemm(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel, int32_t* c, \
               size_t ldc);                                                                                       \
  }
// q7: the function name (in ns) that serves q7_gemm.
#define LOWBIT_DECLARE_INTEGER_KERNELS(ns, q7)                                                                       \
  LOWBIT_DECLARE_INTEGER_GEMMS(ns)                                                                                   \
  namespace ns {                                                                                                     \
  void q8_dw(size_t n, size_t taps, size_t pixels, const uint8_t* const* x, uint8_t mask, const int8_t* w,           \
             const int32_t* bias, int32_t* acc);                                                                     \
  void q16_small_k(size_t k, size_t n, size_t pixels, const int16_t* x, size_t ldx, const int16_t* w, size_t stride, \
                   const int32_t* bias, int32_t* acc);                                                               \
  inline constexpr IntegerKernels kIntegerKernels = {q8_gemm, q4_gemm, q7, q8_dw, q16_small_k};                      \
  }

LOWBIT_DECLARE_INTEGER_KERNELS(ref, q8_gemm)
namespace ref {
void q8_gemm_runs(size_t m, size_t kp, size_t runs, const uint8_t* const* a, uint8_t mask, const uint8_t* panel,
                  int32_t* c, size_t ldc);
void q4_gemm_runs(size_t m, size_t kp, size_t runs, const uint8_t* const* a, uint8_t mask, const uint8_t* panel,
                  int32_t* c, size_t ldc);
}  // namespace ref
LOWBIT_DECLARE_INTEGER_KERNELS(scalar, q8_gemm)
#if defined(__x86_64__)
namespace avx2 {
void q7_gemm(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel, int32_t* c,
             size_t ldc);
}
LOWBIT_DECLARE_INTEGER_KERNELS(avx2, q7_gemm)
// AVX-512 F+BW+VL+VNNI (vpdpbusd), chosen at run time: its own GEMMs (Q7 is its Q8), avx2's rest.
LOWBIT_DECLARE_INTEGER_GEMMS(avx512)
namespace avx512 {
void q8_gemm_runs(size_t m, size_t kp, size_t runs, const uint8_t* const* a, uint8_t mask, const uint8_t* panel,
                  int32_t* c, size_t ldc);
void q4_gemm_runs(size_t m, size_t kp, size_t runs, const uint8_t* const* a, uint8_t mask, const uint8_t* panel,
                  int32_t* c, size_t ldc);
inline constexpr IntegerKernels kIntegerKernels = {q8_gemm,           q4_gemm,      q8_gemm,     avx2::q8_dw,
                                                   avx2::q16_small_k, q8_gemm_runs, q4_gemm_runs};
}  // namespace avx512
#endif
#if defined(__aarch64__)
LOWBIT_DECLARE_INTEGER_KERNELS(neon, q8_gemm)      // Cortex-A72 class: no dot product
LOWBIT_DECLARE_INTEGER_KERNELS(neon_dot, q8_gemm)  // ARMv8.2 sdot, chosen at run time (HWCAP_ASIMDDP)
#endif

// Panel packing (shared by every ISA). w points at channel `first`'s row of a row-major
// [channels][k] int8 matrix with row stride ldw; channels >= count are zero. For Q4 every value
// must be in [-8, 7]. dst receives q8_panel_bytes(kp) / q4_panel_bytes(kp) bytes.
void pack_q8_panel(const int8_t* w, size_t count, size_t k, size_t ldw, uint8_t* dst);
void pack_q4_panel(const int8_t* w, size_t count, size_t k, size_t ldw, uint8_t* dst);

// Value j, k of a packed panel (for the reference kernels and tests).
int8_t q8_panel_value(const uint8_t* panel, size_t j, size_t k);
int8_t q4_panel_value(const uint8_t* panel, size_t j, size_t k);

}  // namespace lowbit
