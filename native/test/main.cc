// main.cc: runs every registered native test, prints the seed, exits non-zero on any failure.
#include <cstdlib>
#include <cstring>
#include <string>

#include "harness.h"
#include "lowbit/runtime.h"

namespace lowbit::test {

std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}

uint64_t seed() {
  static const uint64_t value = [] {
    const char* env = std::getenv("LOWBIT_TEST_SEED");
    return env && *env ? std::strtoull(env, nullptr, 0) : std::random_device{}() * 0x100000001ull;
  }();
  return value;
}

static int g_failures_in_case = 0;
void record_failure(const std::string& message) {
  ++g_failures_in_case;
  std::fprintf(stderr, "    %s\n", message.c_str());
}
int failures_in_current() { return g_failures_in_case; }

}  // namespace lowbit::test

int main(int argc, char** argv) {
  using namespace lowbit::test;
  const char* filter = argc > 1 ? argv[1] : nullptr;
  std::string isas;
  for (lowbit::Isa isa : lowbit::supported_isas()) isas += std::string(" ") + lowbit::isa_name(isa);
  std::printf("lowbit native tests: seed %llu (replay with LOWBIT_TEST_SEED=%llu), ISAs:%s\n",
              static_cast<unsigned long long>(seed()), static_cast<unsigned long long>(seed()), isas.c_str());
  int passed = 0, failed = 0;
  for (const Case& c : registry()) {
    if (filter && !std::strstr(c.name, filter)) continue;
    g_failures_in_case = 0;
    try {
      c.body();
    } catch (const std::exception& e) {
      record_failure(std::string("unexpected exception: ") + e.what());
    }
    if (g_failures_in_case == 0) {
      ++passed;
      std::printf("  ok   %s\n", c.name);
    } else {
      ++failed;
      std::printf("  FAIL %s\n", c.name);
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
