// panels.cc: the weight panel layout of the integer kernels (see kernels.h), one definition for
// every ISA.
#include <cstring>

#include "integer/kernels.h"

namespace lowbit {
namespace {

// Value j, k of the panel's W, zero beyond the real channels and K.
int8_t source_value(const int8_t* w, size_t count, size_t k, size_t ldw, size_t j, size_t kk) {
  return j < count && kk < k ? w[j * ldw + kk] : 0;
}

void write_sums(const int8_t* w, size_t count, size_t k, size_t ldw, uint8_t* dst) {
  int32_t sums[kQPanelChannels] = {};
  for (size_t j = 0; j < count && j < kQPanelChannels; ++j)
    for (size_t kk = 0; kk < k; ++kk) sums[j] += w[j * ldw + kk];
  std::memcpy(dst, sums, sizeof sums);
}

}  // namespace

void pack_q8_panel(const int8_t* w, size_t count, size_t k, size_t ldw, uint8_t* dst) {
  write_sums(w, count, k, ldw, dst);
  int8_t* body = reinterpret_cast<int8_t*>(dst + kQPanelHeaderBytes);
  const size_t kp = q_padded_k(k);
  for (size_t g = 0; g < kp / 4; ++g)
    for (size_t i = 0; i < 64; ++i) body[g * 64 + i] = source_value(w, count, k, ldw, i / 4, 4 * g + i % 4);
}

void pack_q4_panel(const int8_t* w, size_t count, size_t k, size_t ldw, uint8_t* dst) {
  write_sums(w, count, k, ldw, dst);
  uint8_t* body = dst + kQPanelHeaderBytes;
  const size_t kp = q_padded_k(k);
  for (size_t g = 0; g < kp / 4; ++g)
    for (size_t i = 0; i < 32; ++i) {
      const auto lo = static_cast<uint8_t>(source_value(w, count, k, ldw, i / 4, 4 * g + i % 4));
      const auto hi = static_cast<uint8_t>(source_value(w, count, k, ldw, 8 + i / 4, 4 * g + i % 4));
      body[g * 32 + i] = static_cast<uint8_t>((lo & 0xF) | (hi << 4));
    }
}

int8_t q8_panel_value(const uint8_t* panel, size_t j, size_t k) {
  return static_cast<int8_t>(panel[kQPanelHeaderBytes + (k / 4) * 64 + 4 * j + k % 4]);
}

int8_t q4_panel_value(const uint8_t* panel, size_t j, size_t k) {
  const size_t i = 4 * (j % 8) + k % 4;
  const uint8_t byte = panel[kQPanelHeaderBytes + (k / 4) * 32 + i];
  const int nibble = j < 8 ? byte & 0xF : byte >> 4;
  return static_cast<int8_t>(nibble >= 8 ? nibble - 16 : nibble);
}

}  // namespace lowbit
