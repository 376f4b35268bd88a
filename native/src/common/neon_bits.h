// neon_bits.h: AArch64 NEON helpers that turn lane masks into packed bits (bit j of a word =
// channel j), shared by the binary kernels (packing) and the output transforms (b1 output). Both
// files are built for the baseline; the helpers are static all the same, one copy per file.
#pragma once
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>

namespace lowbit::neon_bits {

static const uint8_t kBitWeights[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};

// 0xFF/0x00 byte masks for channels 0..63 -> the 64-bit word with bit j set for byte j.
// Each pairwise add merges disjoint weights, so no byte sum exceeds 255.
static inline uint64_t movemask64(uint8x16_t vmask0, uint8x16_t vmask1, uint8x16_t vmask2, uint8x16_t vmask3) {
  const uint8x16_t vweights = vld1q_u8(kBitWeights);
  const uint8x16_t vsum01 = vpaddq_u8(vandq_u8(vmask0, vweights), vandq_u8(vmask1, vweights));
  const uint8x16_t vsum23 = vpaddq_u8(vandq_u8(vmask2, vweights), vandq_u8(vmask3, vweights));
  const uint8x16_t vsum0123 = vpaddq_u8(vsum01, vsum23);
  return vgetq_lane_u64(vreinterpretq_u64_u8(vpaddq_u8(vsum0123, vsum0123)), 0);
}

static inline uint64_t movemask16(uint8x16_t vmask) {
  uint8x16_t vsum = vandq_u8(vmask, vld1q_u8(kBitWeights));
  vsum = vpaddq_u8(vsum, vsum);
  vsum = vpaddq_u8(vsum, vsum);
  vsum = vpaddq_u8(vsum, vsum);
  return vgetq_lane_u16(vreinterpretq_u16_u8(vsum), 0);
}

// Four 32-bit lane masks (channels 0-3, 4-7, 8-11, 12-15) -> one byte mask for channels 0-15.
static inline uint8x16_t narrow_masks(uint32x4_t vmask0123, uint32x4_t vmask4567, uint32x4_t vmask89ab,
                                      uint32x4_t vmaskcdef) {
  const uint16x8_t vmask_lo = vuzp1q_u16(vreinterpretq_u16_u32(vmask0123), vreinterpretq_u16_u32(vmask4567));
  const uint16x8_t vmask_hi = vuzp1q_u16(vreinterpretq_u16_u32(vmask89ab), vreinterpretq_u16_u32(vmaskcdef));
  return vuzp1q_u8(vreinterpretq_u8_u16(vmask_lo), vreinterpretq_u8_u16(vmask_hi));
}

// Writes words_for_bits(channels) words; mask16(c) gives the byte mask of channels c..c+15 and
// bit(c) the single bit of channel c, used for the last < 16 channels so nothing is over-read.
template <typename Mask16, typename Bit>
static void pack_bits(size_t channels, Mask16 mask16, Bit bit, uint64_t* dst) {
  for (size_t begin = 0; begin < channels; begin += 64, ++dst) {
    const size_t count = channels - begin < 64 ? channels - begin : 64;
    if (count == 64) {
      *dst = movemask64(mask16(begin), mask16(begin + 16), mask16(begin + 32), mask16(begin + 48));
      continue;
    }
    uint64_t word = 0;
    size_t j = 0;
    for (; j + 16 <= count; j += 16) word |= movemask16(mask16(begin + j)) << j;
    for (; j < count; ++j) word |= static_cast<uint64_t>(bit(begin + j)) << j;
    *dst = word;
  }
}

}  // namespace lowbit::neon_bits

#endif  // __aarch64__
