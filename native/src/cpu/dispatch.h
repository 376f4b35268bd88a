// dispatch.h: the kernel table of the active ISA. Operators fetch it once per call, so a
// concurrent set_isa() never mixes kernels within one call.
#pragma once
#include "binary/kernels.h"
#include "integer/kernels.h"
#include "lowbit/runtime.h"

namespace lowbit {

const BinaryKernels& binary_kernels();
const BinaryKernels& binary_kernels_for(Isa isa);  // for tests: a specific supported ISA

const IntegerKernels& integer_kernels();
const IntegerKernels& integer_kernels_for(Isa isa);
// aarch64: whether the CPU has the ARMv8.2 dot product (sdot), which picks neon_dot for Isa::Neon.
bool cpu_has_dotprod();

}  // namespace lowbit
