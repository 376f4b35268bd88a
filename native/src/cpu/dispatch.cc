// dispatch.cc: CPU feature detection, the LOWBIT_ISA override and the per-ISA kernel tables.
#include "cpu/dispatch.h"

#include <atomic>
#include <cstdlib>

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

#include "lowbit/error.h"

namespace lowbit {
namespace {

bool cpu_has(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return true;
    case Isa::Avx2:
#if defined(__x86_64__)
      __builtin_cpu_init();
      // __builtin_cpu_supports also checks that the OS saves AVX state (xgetbv).
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("popcnt");
#else
      return false;
#endif
    case Isa::Avx512:
#if defined(__x86_64__)
      // Also checks that the OS saves the zmm and mask state.
      return cpu_has(Isa::Avx2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#else
      return false;
#endif
    case Isa::Neon:
#if defined(__aarch64__)
      return true;  // Advanced SIMD is mandatory on AArch64.
#else
      return false;
#endif
  }
  return false;
}

Isa isa_from_name(const std::string& name) {
  if (name == "scalar") return Isa::Scalar;
  if (name == "avx2") return Isa::Avx2;
  if (name == "avx512") return Isa::Avx512;
  if (name == "neon") return Isa::Neon;
  fail(ErrorKind::Range, "unknown ISA '" + name + "': expected one of scalar, avx2, avx512, neon");
}

Isa best_isa() {
  std::vector<Isa> all = supported_isas();
  return all.back();
}

Isa initial_isa() {
  const char* env = std::getenv("LOWBIT_ISA");
  if (env == nullptr || *env == '\0') return best_isa();
  const std::string name = env;
  if (name != "scalar" && name != "avx2" && name != "avx512" && name != "neon")
    fail(ErrorKind::Range, "LOWBIT_ISA=" + name + ": unknown ISA, expected one of scalar, avx2, avx512, neon");
  Isa isa = isa_from_name(name);
  if (!cpu_has(isa))
    fail(ErrorKind::Unsupported, std::string("LOWBIT_ISA=") + env + " but this CPU or build does not support it");
  return isa;
}

// Resolved on first use (not at static-init time) so a bad LOWBIT_ISA surfaces as an error
// from the first call, which the bindings turn into a JS exception at load.
std::atomic<int>& isa_slot() {
  static std::atomic<int> slot{static_cast<int>(initial_isa())};
  return slot;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return "scalar";
    case Isa::Avx2:
      return "avx2";
    case Isa::Avx512:
      return "avx512";
    case Isa::Neon:
      return "neon";
  }
  return "unknown";
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out{Isa::Scalar};
  for (Isa isa : {Isa::Avx2, Isa::Avx512, Isa::Neon})
    if (cpu_has(isa)) out.push_back(isa);
  return out;
}

Isa active_isa() { return static_cast<Isa>(isa_slot().load(std::memory_order_acquire)); }

void set_isa(const std::string& name) {
  Isa isa = isa_from_name(name);
  if (!cpu_has(isa)) fail(ErrorKind::Unsupported, "ISA '" + name + "' is not supported by this CPU or build");
  isa_slot().store(static_cast<int>(isa), std::memory_order_release);
}

const BinaryKernels& binary_kernels_for(Isa isa) {
  switch (isa) {
#if defined(__x86_64__)
    case Isa::Avx2:
    case Isa::Avx512:  // no AVX-512 kernels in this family
      return avx2::kBinaryKernels;
#endif
#if defined(__aarch64__)
    case Isa::Neon:
      return neon::kBinaryKernels;
#endif
    default:
      return scalar::kBinaryKernels;
  }
}

const BinaryKernels& binary_kernels() { return binary_kernels_for(active_isa()); }

const OutputKernels& output_kernels_for(Isa isa) {
  switch (isa) {
#if defined(__x86_64__)
    case Isa::Avx2:
      return avx2::kOutputKernels;
    case Isa::Avx512:  // the requantizers; the rest is AVX2's
      return avx512::kOutputKernels;
#endif
#if defined(__aarch64__)
    case Isa::Neon:
      return neon::kOutputKernels;
#endif
    default:
      return scalar::kOutputKernels;
  }
}

const OutputKernels& output_kernels() { return output_kernels_for(active_isa()); }

const F32Kernels& f32_kernels_for(Isa isa) {
  switch (isa) {
#if defined(__x86_64__)
    case Isa::Avx2:
    case Isa::Avx512:  // no AVX-512 kernels in this family
      return avx2::kF32Kernels;
#endif
#if defined(__aarch64__)
    case Isa::Neon:
      return neon::kF32Kernels;
#endif
    default:
      return scalar::kF32Kernels;
  }
}

const F32Kernels& f32_kernels() { return f32_kernels_for(active_isa()); }

bool cpu_has_dotprod() {
#if defined(__aarch64__) && defined(__linux__)
  static const bool has = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
  return has;
#else
  return false;
#endif
}

const IntegerKernels& integer_kernels_for(Isa isa) {
  switch (isa) {
#if defined(__x86_64__)
    case Isa::Avx2:
      return avx2::kIntegerKernels;
    case Isa::Avx512:
      return avx512::kIntegerKernels;
#endif
#if defined(__aarch64__)
    case Isa::Neon:
      return cpu_has_dotprod() ? neon_dot::kIntegerKernels : neon::kIntegerKernels;
#endif
    default:
      return scalar::kIntegerKernels;
  }
}

const IntegerKernels& integer_kernels() { return integer_kernels_for(active_isa()); }

const FloatKernels& float_kernels_for(Isa isa) {
  switch (isa) {
#if defined(__x86_64__)
    case Isa::Avx2:
    case Isa::Avx512:  // no AVX-512 kernels in this family
      return avx2::kFloatKernels;
#endif
#if defined(__aarch64__)
    case Isa::Neon:
      return neon::kFloatKernels;
#endif
    default:
      return scalar::kFloatKernels;
  }
}

const FloatKernels& float_kernels() { return float_kernels_for(active_isa()); }
const EltwiseKernels& eltwise_kernels_for(Isa isa) {
  switch (isa) {
#if defined(__x86_64__)
    case Isa::Avx2:
    case Isa::Avx512:  // no AVX-512 kernels in this family
      return avx2::kEltwiseKernels;
#endif
#if defined(__aarch64__)
    case Isa::Neon:
      return neon::kEltwiseKernels;
#endif
    default:
      return scalar::kEltwiseKernels;
  }
}

const EltwiseKernels& eltwise_kernels() { return eltwise_kernels_for(active_isa()); }

}  // namespace lowbit
