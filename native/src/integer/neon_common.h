// neon_common.h: helpers shared by the two AArch64 integer kernel files (kernels_neon.cc and
// kernels_neon_dot.cc). Only those files include it. The functions are `static`, so each file
// keeps its own copy, compiled with its own -march flags: the linker never picks the dot-product
// file's copy for the baseline file.
#pragma once
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

namespace lowbit::neon_common {

// An empty volatile asm: GCC's scheduler moves nothing across it. Without it GCC 12 hoists the
// loads or multiplies of a step above their uses, needs more than the 32 vector registers and
// spills accumulators to the stack inside the loop (checked with -S at -O2 and -O3; each kernel
// file says what it keeps in place). The cores schedule out of order anyway; the barrier only keeps
// the live ranges short. Clang's pressure-aware scheduler does not need it.
// The loops over rows and vectors carry `#pragma GCC unroll` for the same reason: left rolled (as
// GCC leaves them at -O2), the accumulator arrays live in memory.
static inline void schedule_barrier() { __asm__ __volatile__(""); }

// The 4 activation bytes at p in every 32-bit lane, XORed with the mask (LD1R + EOR). memcpy keeps
// the unaligned 4-byte read well-defined (and reads no byte past p + 4); it compiles to the
// broadcast load.
static inline int8x16_t load_activations4(const uint8_t* p, uint8x16_t vmask) {
  uint32_t bytes;
  std::memcpy(&bytes, p, sizeof bytes);
  return vreinterpretq_s8_u8(veorq_u8(vreinterpretq_u8_u32(vdupq_n_u32(bytes)), vmask));
}

}  // namespace lowbit::neon_common

#endif  // __aarch64__
