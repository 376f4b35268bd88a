// thread_pool.h: the one worker pool of the process, shared by every operator and every
// concurrent call, so parallel requests queue for the cores instead of oversubscribing them.
#pragma once
#include <algorithm>
#include <cstddef>
#include <functional>
#include <string>

namespace lowbit {

// Runs task(i) for i in [0, count), spread over the pool; the calling thread takes part.
// Calls from several threads at once are served one after another. A task must not call
// parallel_for itself. The first exception a task throws is rethrown here after all tasks end.
void parallel_for(size_t count, const std::function<void(size_t)>& task);

// Rows of `width` values in blocks of about 64 Ki values over the pool: f(first_row, end_row). The
// element-wise operators' split: blocks large enough to amortise a task, enough of them to share.
template <typename F>
void for_rows(size_t rows, size_t width, F f) {
  const size_t block = std::max<size_t>(1, (size_t{1} << 16) / std::max<size_t>(width, 1));
  parallel_for((rows + block - 1) / block, [&](size_t b) { f(b * block, std::min(rows, (b + 1) * block)); });
}

// The CPU limit of the cgroups listed in `proc_self_cgroup` (the text of /proc/self/cgroup) under
// `cgroup_root` (/sys/fs/cgroup): v2 cpu.max, v1 cpu/cpu.cfs_quota_us over cpu.cfs_period_us,
// rounded up, the tightest over each cgroup and its parents; 0 where none is set.
size_t cgroup_cpu_limit(const std::string& proc_self_cgroup, const std::string& cgroup_root);

}  // namespace lowbit
