// thread_pool.cc: a fixed pool of workers that claim task indices from an atomic counter.
// Workers spin briefly before sleeping: waking a sleeping thread costs tens of microseconds,
// a real share of a sub-millisecond layer.
#include "runtime/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

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
    std::lock_guard<std::mutex> job(job_mutex_);
    if (workers_.empty() || count == 1) {
      for (size_t i = 0; i < count; ++i) task(i);
      return;
    }
    task_ = &task;
    count_ = count;
    next_.store(0);
    error_ = nullptr;
    busy_.store(workers_.size());
    {
      // Publishing under the mutex: a worker checks the generation under it before sleeping.
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    work();
    auto idle = [&] { return busy_.load(std::memory_order_acquire) == 0; };
    if (!spin_until(idle, kSpinMicros)) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, idle);
    }
    task_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void start(size_t threads) {
    quit_.store(false);
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

  void loop(size_t seen) {
    auto woken = [&] { return quit_.load() || generation_.load(std::memory_order_acquire) != seen; };
    for (;;) {
      if (!spin_until(woken, kSpinMicros)) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, woken);
      }
      if (quit_.load()) return;
      seen = generation_.load(std::memory_order_acquire);
      work();
      if (busy_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        { std::lock_guard<std::mutex> lock(mutex_); }  // the waiter is checking or asleep, not in between
        done_.notify_one();
      }
    }
  }

  void work() {
    for (size_t i; (i = next_.fetch_add(1)) < count_;) {
      try {
        (*task_)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
      }
    }
  }

  std::mutex job_mutex_;  // one job at a time
  std::mutex mutex_;
  std::mutex error_mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  const std::function<void(size_t)>* task_ = nullptr;
  size_t count_ = 0;
  std::atomic<size_t> next_{0};
  std::atomic<size_t> busy_{0};
  std::atomic<size_t> generation_{0};
  std::atomic<bool> quit_{false};
  std::exception_ptr error_;
};

size_t default_threads() { return std::max<size_t>(1, std::thread::hardware_concurrency()); }

// Never destroyed: at process exit a libuv thread may still be inside a job, and joining or
// destroying running workers from static destructors would abort the process.
ThreadPool& pool() {
  static ThreadPool* instance = new ThreadPool(default_threads());
  return *instance;
}

constexpr size_t kMaxThreads = 256;

}  // namespace

void parallel_for(size_t count, const std::function<void(size_t)>& task) { pool().run(count, task); }

size_t num_threads() { return pool().size(); }

void set_num_threads(size_t n) {
  if (n < 1 || n > kMaxThreads)
    fail(ErrorKind::Range, "threads must be an integer in [1, " + std::to_string(kMaxThreads) +
                               "], got " + std::to_string(n));
  if (n != pool().size()) pool().resize(n);
}

}  // namespace lowbit
