// thread_pool.cc: a fixed pool of workers that claim task indices from an atomic counter.
#include "runtime/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "lowbit/error.h"
#include "lowbit/runtime.h"

namespace lowbit {
namespace {

class ThreadPool {
 public:
  explicit ThreadPool(size_t threads) { start(threads); }
  ~ThreadPool() { stop(); }

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
    {
      std::lock_guard<std::mutex> lock(mutex_);
      task_ = &task;
      count_ = count;
      next_.store(0);
      error_ = nullptr;
      busy_ = workers_.size();
      ++generation_;
    }
    wake_.notify_all();
    work();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return busy_ == 0; });
    task_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void start(size_t threads) {
    quit_ = false;
    // Workers start from the current generation, read here rather than in the new thread:
    // a job may begin before the thread first runs.
    const size_t generation = generation_;
    for (size_t i = 1; i < threads; ++i) workers_.emplace_back([this, generation] { loop(generation); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      quit_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  void loop(size_t seen) {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return quit_ || generation_ != seen; });
        if (quit_) return;
        seen = generation_;
      }
      work();
      std::lock_guard<std::mutex> lock(mutex_);
      if (--busy_ == 0) done_.notify_one();
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
  size_t busy_ = 0;
  size_t generation_ = 0;
  bool quit_ = false;
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
