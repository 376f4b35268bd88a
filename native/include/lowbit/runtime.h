// runtime.h: process-wide settings of the kernel library: which ISA runs, how many threads.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace lowbit {

// Avx512: AVX-512 F+BW+VL+VNNI (with AVX2); families without AVX-512 kernels run their avx2 ones.
enum class Isa { Scalar, Avx2, Avx512, Neon };

const char* isa_name(Isa isa);
// The ISA the kernels use now. Chosen once at load: the best the CPU supports, or LOWBIT_ISA.
Isa active_isa();
// Every ISA this build and this CPU can run, best last.
std::vector<Isa> supported_isas();
// Forces an ISA by name ("scalar", "avx2", "avx512", "neon"); throws Error(Unsupported) if unavailable.
void set_isa(const std::string& name);

// CPUs this process may run on: its affinity mask (sched_getaffinity), further limited by a
// cgroup CPU quota (v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us), rounded up. At least 1.
size_t usable_cpus();

// Size of the shared worker pool, counting the calling thread. Default: usable_cpus(), or
// LOWBIT_THREADS (an integer in [1, 256]; a bad value throws Error(Range) on first use).
size_t num_threads();
// Resizes the pool to n in [1, 256] (Error(Range) outside). Above usable_cpus() idle workers
// sleep at once instead of spinning, so they do not take time from the working threads.
void set_num_threads(size_t n);

}  // namespace lowbit
