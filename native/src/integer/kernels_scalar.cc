// kernels_scalar.cc: the portable integer kernels (no SIMD intrinsics), walking the panel layout
// group by group so the weights stream once per row.
#include "integer/kernels.h"

namespace lowbit::scalar {
namespace {

inline int32_t nibble(uint8_t byte, bool high) {
  const int v = high ? byte >> 4 : byte & 0xF;
  return v >= 8 ? v - 16 : v;
}

}  // namespace

void q8_gemm(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel, int32_t* c,
             size_t ldc) {
  const int8_t* body = reinterpret_cast<const int8_t*>(panel + kQPanelHeaderBytes);
  for (size_t i = 0; i < m; ++i) {
    int32_t acc[kQPanelChannels] = {};
    const uint8_t* row = a + i * lda;
    for (size_t g = 0; g < kp / 4; ++g) {
      int32_t x[4];
      for (int t = 0; t < 4; ++t) x[t] = static_cast<int8_t>(row[4 * g + t] ^ mask);
      const int8_t* wg = body + g * 64;
      for (size_t j = 0; j < kQPanelChannels; ++j)
        acc[j] += x[0] * wg[4 * j] + x[1] * wg[4 * j + 1] + x[2] * wg[4 * j + 2] + x[3] * wg[4 * j + 3];
    }
    for (size_t j = 0; j < kQPanelChannels; ++j) c[i * ldc + j] = acc[j];
  }
}

void q4_gemm(size_t m, size_t kp, const uint8_t* a, size_t lda, uint8_t mask, const uint8_t* panel, int32_t* c,
             size_t ldc) {
  const uint8_t* body = panel + kQPanelHeaderBytes;
  for (size_t i = 0; i < m; ++i) {
    int32_t acc[kQPanelChannels] = {};
    const uint8_t* row = a + i * lda;
    for (size_t g = 0; g < kp / 4; ++g) {
      int32_t x[4];
      for (int t = 0; t < 4; ++t) x[t] = static_cast<int8_t>(row[4 * g + t] ^ mask);
      const uint8_t* wg = body + g * 32;
      for (size_t j = 0; j < 8; ++j)
        for (int t = 0; t < 4; ++t) {
          acc[j] += x[t] * nibble(wg[4 * j + t], false);
          acc[j + 8] += x[t] * nibble(wg[4 * j + t], true);
        }
    }
    for (size_t j = 0; j < kQPanelChannels; ++j) c[i * ldc + j] = acc[j];
  }
}

// Tap by tap over the channels (loops a compiler can vectorize); the bias last, modulo 2^32.
void q8_dw(size_t n, size_t taps, size_t pixels, const uint8_t* const* x, uint8_t mask, const int8_t* w,
           const int32_t* bias, int32_t* acc) {
  for (size_t p = 0; p < pixels; ++p) {
    int32_t* out = acc + p * n;
    for (size_t c = 0; c < n; ++c) out[c] = 0;
    for (size_t t = 0; t < taps; ++t) {
      const uint8_t* xt = x[p * taps + t];
      const int8_t* wt = w + t * n;
      for (size_t c = 0; c < n; ++c) out[c] += static_cast<int8_t>(xt[c] ^ mask) * wt[c];
    }
    for (size_t c = 0; c < n; ++c)
      out[c] = static_cast<int32_t>(static_cast<uint32_t>(out[c]) + static_cast<uint32_t>(bias[c]));
  }
}

// Channel-major so each weight row is read contiguously; the 16 sums of a block stay in registers.
void q16_small_k(size_t k, size_t n, size_t pixels, const int16_t* x, size_t ldx, const int16_t* w, size_t stride,
                 const int32_t* bias, int32_t* acc) {
  for (size_t p = 0; p < pixels; ++p, x += ldx, acc += n)
    for (size_t c0 = 0; c0 < n; c0 += 16) {
      int32_t sum[16] = {};
      for (size_t i = 0; i < k; ++i)
        for (size_t j = 0; j < 16; ++j) sum[j] += x[i] * w[i * stride + c0 + j];
      for (size_t j = 0; j < 16 && c0 + j < n; ++j) acc[c0 + j] = sum[j] + bias[c0 + j];
    }
}

}  // namespace lowbit::scalar
