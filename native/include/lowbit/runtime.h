// runtime.h: process-wide settings of the kernel library: which ISA runs, how many threads.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace lowbit {

enum class Isa { Scalar, Avx2, Neon };

const char* isa_name(Isa isa);
// The ISA the kernels use now. Chosen once at load: the best the CPU supports, or LOWBIT_ISA.
Isa active_isa();
// Every ISA this build and this CPU can run, best last.
std::vector<Isa> supported_isas();
// Forces an ISA by name ("scalar", "avx2", "neon"); throws Error(Unsupported) if unavailable.
void set_isa(const std::string& name);

// Size of the shared worker pool, counting the calling thread. Default: hardware threads.
size_t num_threads();
void set_num_threads(size_t n);

}  // namespace lowbit
