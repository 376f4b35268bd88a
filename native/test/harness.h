// harness.h: a minimal test runner for the native library (no dependencies, runs under qemu).
// Tests register with TEST(name); checks report the first mismatch with context and keep going.
#pragma once
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace lowbit::test {

struct Case {
  const char* name;
  std::function<void()> body;
};
std::vector<Case>& registry();
uint64_t seed();  // LOWBIT_TEST_SEED or a fresh one; printed at start
void record_failure(const std::string& message);
int failures_in_current();

struct Register {
  Register(const char* name, std::function<void()> body) { registry().push_back({name, std::move(body)}); }
};

// A generator seeded from the run's seed and the test's own salt, so a failure replays exactly.
inline std::mt19937_64 rng(uint64_t salt) { return std::mt19937_64(seed() ^ (salt * 0x9E3779B97F4A7C15ull)); }

}  // namespace lowbit::test

#define LOWBIT_CONCAT2(a, b) a##b
#define LOWBIT_CONCAT(a, b) LOWBIT_CONCAT2(a, b)
#define TEST(name)                                                             \
  static void name();                                                          \
  static ::lowbit::test::Register LOWBIT_CONCAT(register_, name)(#name, name); \
  static void name()

// Fails the current test with a message built from stream arguments; returns from the test.
#define CHECK(cond, ...)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::ostringstream lowbit_msg;                                                      \
      lowbit_msg << __FILE__ << ":" << __LINE__ << ": " #cond " failed: " << __VA_ARGS__; \
      ::lowbit::test::record_failure(lowbit_msg.str());                                   \
      return;                                                                             \
    }                                                                                     \
  } while (0)
