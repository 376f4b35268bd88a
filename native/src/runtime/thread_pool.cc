// thread_pool.cc: a fixed pool of workers that claim task indices from an atomic counter, and
// the count of CPUs this process may use (affinity and cgroup quota), which sizes it by default.
//
// A job ends when its tasks are done, not when every worker has joined it: the calling thread
// takes part and claims whatever the workers have not, so a worker the scheduler leaves waiting
// (a busy or oversubscribed machine) delays nothing. Before, every job waited for every worker to
// check in, and 16 threads on 2 cores made a batch-1 model 36x slower.
// Idle workers spin briefly before sleeping (waking a sleeping thread costs tens of microseconds,
// a real share of a sub-millisecond layer), but only while the pool fits the usable CPUs: a
// spinning thread without a core of its own steals the time of the threads doing the work.
#include "runtime/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

#include "lowbit/error.h"
#include "lowbit/runtime.h"

namespace lowbit {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Spins until done() or about `micros` have passed; true if done() held.
template <typename Done>
bool spin_until(Done done, int micros) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(micros);
  for (int i = 0;; ++i) {
    if (done()) return true;
    cpu_relax();
    if (i % 64 == 63 && std::chrono::steady_clock::now() > deadline) return false;
  }
}

constexpr int kSpinMicros = 100;
constexpr size_t kMaxThreads = 256;

// One parallel_for call. Shared with the workers that join it, so one that wakes after the job
// has ended still reads valid counters (and finds no index left to claim).
struct Job {
  const std::function<void(size_t)>* task;  // valid while an index < count is unfinished
  size_t count;
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  std::mutex error_mutex;
  std::exception_ptr error;

  // Runs indices until none is left; returns how many this thread ran.
  size_t work() {
    size_t ran = 0;
    for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < count; ++ran) {
      try {
        (*task)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
    return ran;
  }
};

class ThreadPool {
 public:
  explicit ThreadPool(size_t threads) { start(threads); }

  size_t size() const { return workers_.size() + 1; }

  void resize(size_t threads) {
    std::lock_guard<std::mutex> job(job_mutex_);  // waits for the running job
    stop();
    start(threads);
  }

  void run(size_t count, const std::function<void(size_t)>& task) {
    if (count == 0) return;
    std::lock_guard<std::mutex> one_at_a_time(job_mutex_);
    if (workers_.empty() || count == 1) {
      for (size_t i = 0; i < count; ++i) task(i);
      return;
    }
    auto job = std::make_shared<Job>();
    job->task = &task;
    job->count = count;
    {
      // Published under the mutex: a worker checks the generation under it before sleeping.
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = job;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    finished(*job, job->work());
    auto all_done = [&] { return job->done.load(std::memory_order_acquire) == count; };
    if (!spin_ || !spin_until(all_done, kSpinMicros)) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, all_done);
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_.reset();
    }
    if (job->error) std::rethrow_exception(job->error);
  }

 private:
  void start(size_t threads) {
    quit_.store(false);
    spin_ = threads <= usable_cpus();
    // Workers start from the current generation, read here rather than in the new thread:
    // a job may begin before the thread first runs.
    const size_t generation = generation_.load();
    for (size_t i = 1; i < threads; ++i) workers_.emplace_back([this, generation] { loop(generation); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      quit_.store(true);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  // Counts `ran` finished tasks; whoever finishes the job's last one wakes the caller.
  void finished(Job& job, size_t ran) {
    if (ran == 0) return;
    if (job.done.fetch_add(ran, std::memory_order_acq_rel) + ran == job.count) {
      { std::lock_guard<std::mutex> lock(mutex_); }  // the caller is checking or asleep, not in between
      done_.notify_one();
    }
  }

  void loop(size_t seen) {
    auto woken = [&] { return quit_.load() || generation_.load(std::memory_order_acquire) != seen; };
    for (;;) {
      if (!spin_ || !spin_until(woken, kSpinMicros)) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, woken);
      }
      if (quit_.load()) return;
      std::shared_ptr<Job> job;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        seen = generation_.load(std::memory_order_acquire);
        job = job_;
      }
      if (job) finished(*job, job->work());
    }
  }

  std::mutex job_mutex_;  // one job at a time
  std::mutex mutex_;      // guards job_ and the sleeping of workers and caller
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  std::shared_ptr<Job> job_;
  std::atomic<size_t> generation_{0};
  std::atomic<bool> quit_{false};
  bool spin_ = true;
};

// LOWBIT_THREADS if set (an integer in [1, 256]), else the usable CPUs.
size_t default_threads() {
  const char* env = std::getenv("LOWBIT_THREADS");
  if (env == nullptr || *env == '\0') return usable_cpus();
  char* end = nullptr;
  const long n = std::strtol(env, &end, 10);
  if (*end != '\0' || n < 1 || n > static_cast<long>(kMaxThreads))
    fail(ErrorKind::Range,
         std::string("LOWBIT_THREADS=") + env + ": expected an integer in [1, " + std::to_string(kMaxThreads) + "]");
  return static_cast<size_t>(n);
}

// Never destroyed: at process exit a libuv thread may still be inside a job, and joining or
// destroying running workers from static destructors would abort the process.
ThreadPool& pool() {
  static ThreadPool* instance = new ThreadPool(default_threads());
  return *instance;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return in ? s.str() : std::string();
}

// CPUs a quota allows, rounded up (a quota of 1.5 CPUs can keep 2 threads busy part of the
// time); 0 for no limit or an unreadable value.
size_t quota_cpus(double quota, double period) {
  if (!(quota > 0) || !(period > 0)) return 0;
  return std::max<size_t>(1, static_cast<size_t>(std::ceil(quota / period)));
}

// The tightest limit over `dir` and its parents up to `root` (ancestors' quotas apply too; in a
// container whose cgroup path is not visible, the walk reaches the container's own mount).
template <typename Limit>
size_t tightest(const std::string& root, std::string path, Limit limit) {
  size_t best = 0;
  for (;;) {
    const size_t cpus = limit(root + path);
    if (cpus != 0 && (best == 0 || cpus < best)) best = cpus;
    if (path.empty() || path == "/") return best;
    const size_t slash = path.find_last_of('/');
    path = slash == 0 || slash == std::string::npos ? std::string("/") : path.substr(0, slash);
  }
}

}  // namespace

size_t cgroup_cpu_limit(const std::string& proc_self_cgroup, const std::string& cgroup_root) {
  size_t best = 0;
  auto keep = [&](size_t cpus) {
    if (cpus != 0 && (best == 0 || cpus < best)) best = cpus;
  };
  std::istringstream lines(proc_self_cgroup);
  for (std::string line; std::getline(lines, line);) {
    // hierarchy-id:controllers:path
    const size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string controllers = "," + line.substr(a + 1, b - a - 1) + ",";
    const std::string path = line.substr(b + 1);
    if (line.compare(0, a, "0") == 0 && controllers == ",,") {
      // cgroup v2: cpu.max is "max <period>" or "<quota> <period>"
      keep(tightest(cgroup_root, path, [](const std::string& dir) {
        std::istringstream f(read_file(dir + "/cpu.max"));
        std::string quota;
        double period = 0;
        return f >> quota >> period && quota != "max" ? quota_cpus(std::atof(quota.c_str()), period) : 0;
      }));
    } else if (controllers.find(",cpu,") != std::string::npos) {
      // cgroup v1: a quota of -1 is no limit
      keep(tightest(cgroup_root + "/cpu", path, [](const std::string& dir) {
        return quota_cpus(std::atof(read_file(dir + "/cpu.cfs_quota_us").c_str()),
                          std::atof(read_file(dir + "/cpu.cfs_period_us").c_str()));
      }));
    }
  }
  return best;
}

size_t usable_cpus() {
  size_t cpus = std::max<size_t>(1, std::thread::hardware_concurrency());
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = std::max(1, CPU_COUNT(&set));
  const size_t quota = cgroup_cpu_limit(read_file("/proc/self/cgroup"), "/sys/fs/cgroup");
  if (quota != 0) cpus = std::min(cpus, quota);
#endif
  return cpus;
}

void parallel_for(size_t count, const std::function<void(size_t)>& task) { pool().run(count, task); }

size_t num_threads() { return pool().size(); }

void set_num_threads(size_t n) {
  if (n < 1 || n > kMaxThreads)
    fail(ErrorKind::Range,
         "threads must be an integer in [1, " + std::to_string(kMaxThreads) + "], got " + std::to_string(n));
  if (n != pool().size()) pool().resize(n);
}

}  // namespace lowbit
