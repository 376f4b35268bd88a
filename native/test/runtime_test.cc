// runtime_test.cc: the CPU limit read from cgroups (on a fake /sys/fs/cgroup tree) and the worker
// pool with more threads than cores: every index runs once, errors propagate, nothing deadlocks.
#include "lowbit/runtime.h"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "harness.h"
#include "runtime/thread_pool.h"

namespace {

std::string make_tree() {
  char dir[] = "/tmp/lowbit-cgroup-XXXXXX";
  if (mkdtemp(dir) == nullptr) return "";
  return dir;
}

void write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

}  // namespace

TEST(cgroup_cpu_limit_v2_v1_and_parents) {
  using lowbit::cgroup_cpu_limit;
  const std::string root = make_tree();
  CHECK(!root.empty(), "mkdtemp failed");
  // v2: the process cgroup sets no limit, its parent 1.5 CPUs (rounded up to 2), the root none.
  write(root + "/app/cpu.max", "max 100000\n");
  write(root + "/app/job/cpu.max", "max 100000\n");
  CHECK(cgroup_cpu_limit("0::/app/job\n", root) == 0, "no quota anywhere");
  write(root + "/app/cpu.max", "150000 100000\n");
  CHECK(cgroup_cpu_limit("0::/app/job\n", root) == 2, "got " << cgroup_cpu_limit("0::/app/job\n", root));
  write(root + "/app/job/cpu.max", "50000 100000\n");  // half a CPU: still one thread
  CHECK(cgroup_cpu_limit("0::/app/job\n", root) == 1, "got " << cgroup_cpu_limit("0::/app/job\n", root));
  // A path not visible from here (a container's view): the walk reaches the mount itself.
  write(root + "/cpu.max", "300000 100000\n");
  CHECK(cgroup_cpu_limit("0::/docker/abc\n", root) == 3, "got " << cgroup_cpu_limit("0::/docker/abc\n", root));
  // v1: the cpu controller (alone or with cpuacct); -1 is no limit; other controllers are ignored.
  write(root + "/cpu/k8s/cpu.cfs_quota_us", "-1\n");
  write(root + "/cpu/k8s/cpu.cfs_period_us", "100000\n");
  const std::string v1 = "12:memory:/k8s\n4:cpu,cpuacct:/k8s\n1:name=systemd:/k8s\n";
  CHECK(cgroup_cpu_limit(v1, root + "/nowhere") == 0, "unreadable files are no limit");
  const std::string v1_only = "4:cpu,cpuacct:/k8s\n";
  CHECK(cgroup_cpu_limit(v1_only, root) == 0, "quota -1");
  write(root + "/cpu/k8s/cpu.cfs_quota_us", "250000\n");
  CHECK(cgroup_cpu_limit(v1_only, root) == 3, "got " << cgroup_cpu_limit(v1_only, root));
  CHECK(cgroup_cpu_limit("3:cpuacct:/k8s\n", root) == 0, "cpuacct alone sets no quota");
  // Both hierarchies (hybrid): the tightest wins.
  CHECK(cgroup_cpu_limit("0::/app/job\n4:cpu:/k8s\n", root) == 1, "hybrid");
  CHECK(cgroup_cpu_limit("garbage\n\n0:x\n", root) == 0, "malformed lines are skipped");
  std::filesystem::remove_all(root);
  CHECK(lowbit::usable_cpus() >= 1, "usable_cpus");
}

TEST(thread_pool_oversubscribed_runs_each_index_once) {
  const size_t saved = lowbit::num_threads();
  for (size_t threads : {1, 3, 64}) {
    lowbit::set_num_threads(threads);
    for (size_t job = 0; job < 300; ++job) {
      const size_t count = 1 + job % 17;
      std::vector<std::atomic<int>> hits(count);
      lowbit::parallel_for(count, [&](size_t i) { hits[i].fetch_add(1); });
      for (size_t i = 0; i < count; ++i)
        CHECK(hits[i].load() == 1,
              threads << " threads, job " << job << ": index " << i << " ran " << hits[i].load() << " times");
    }
    bool thrown = false;
    try {
      lowbit::parallel_for(40, [](size_t i) {
        if (i == 33) throw std::runtime_error("task 33");
      });
    } catch (const std::runtime_error& e) {
      thrown = std::string(e.what()) == "task 33";
    }
    CHECK(thrown, threads << " threads: the task's exception was not rethrown");
  }
  lowbit::set_num_threads(saved);
}
