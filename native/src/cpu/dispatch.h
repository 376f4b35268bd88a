// dispatch.h: the kernel table of the active ISA. Operators fetch it once per call, so a
// concurrent set_isa() never mixes kernels within one call.
#pragma once
#include "binary/kernels.h"
#include "lowbit/runtime.h"

namespace lowbit {

const BinaryKernels& binary_kernels();
const BinaryKernels& binary_kernels_for(Isa isa);  // for tests: a specific supported ISA

}  // namespace lowbit
