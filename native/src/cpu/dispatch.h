// dispatch.h: the kernel table of the active ISA. Operators fetch it once per call, so a
// concurrent set_isa() never mixes kernels within one call.
#pragma once
#include "binary/kernels.h"
#include "eltwise/kernels.h"
#include "eltwise_f32/kernels.h"
#include "epilogue/kernels.h"
#include "float/kernels.h"
#include "integer/kernels.h"
#include "lowbit/runtime.h"

namespace lowbit {

const BinaryKernels& binary_kernels();
const BinaryKernels& binary_kernels_for(Isa isa);  // a specific supported ISA (tests; drivers pairing tables)

// The output transforms (f32, s8 requantizer, b1) of the active ISA. A driver that also uses
// another family's table takes both for one Isa value (active_isa() once), so a concurrent
// set_isa() never mixes them within a call.
const OutputKernels& output_kernels();
const OutputKernels& output_kernels_for(Isa isa);

const IntegerKernels& integer_kernels();
const IntegerKernels& integer_kernels_for(Isa isa);
// The f32 element-wise kernels (float activations inside a graph) of the active ISA.
const F32Kernels& f32_kernels();
const F32Kernels& f32_kernels_for(Isa isa);

// aarch64: whether the CPU has the ARMv8.2 dot product (sdot), which picks neon_dot for Isa::Neon.
bool cpu_has_dotprod();

// The float32 GEMM (fconv2d / fdense) of the active ISA; Avx2 also needs FMA (checked with AVX2).
const FloatKernels& float_kernels();
const FloatKernels& float_kernels_for(Isa isa);
// The element-wise kernels between layers (qadd, sign, quantize, pools) of the active ISA.
const EltwiseKernels& eltwise_kernels();
const EltwiseKernels& eltwise_kernels_for(Isa isa);

}  // namespace lowbit
