// binary_kernels_test.cc: every supported ISA's binary kernels against lowbit::ref, bit for bit,
// on awkward sizes (tails of 1..63 bits, odd tiles, strided rows) and extreme values.
#include <cmath>
#include <cstring>
#include <limits>

#include "binary/kernels.h"
#include "common/checked_math.h"
#include "cpu/dispatch.h"
#include "harness.h"

using namespace lowbit;
using lowbit::test::rng;

namespace {

constexpr uint64_t kSentinel = 0xA5A5A5A5A5A5A5A5ull;
const size_t kChannelSizes[] = {1, 2, 3, 7, 8, 15, 31, 32, 33, 63, 64, 65, 127, 128, 129, 200, 255, 512, 513};

std::vector<Isa> isas() { return supported_isas(); }

float special_float(std::mt19937_64& g) {
  static const float specials[] = {0.0f,
                                   -0.0f,
                                   std::numeric_limits<float>::quiet_NaN(),
                                   -std::numeric_limits<float>::quiet_NaN(),
                                   std::numeric_limits<float>::infinity(),
                                   -std::numeric_limits<float>::infinity(),
                                   1e-40f,
                                   -1e-40f};
  if (g() % 4 == 0) return specials[g() % 8];
  return std::uniform_real_distribution<float>(-2.f, 2.f)(g);
}

template <typename T, typename Fill>
void check_pack(const char* name, Fill fill, uint64_t salt,
                void (*pick)(const BinaryKernels&, const T*, size_t, size_t, uint64_t*)) {
  auto g = rng(salt);
  for (Isa isa : isas()) {
    for (size_t channels : kChannelSizes)
      for (size_t rows : {1, 2, 5}) {
        std::vector<T> src(rows * channels);
        for (T& v : src) v = fill(g);
        const size_t words = words_for_bits(channels);
        std::vector<uint64_t> want(rows * words), got(rows * words + 4, kSentinel);
        pick(ref::kBinaryKernels, src.data(), rows, channels, want.data());
        pick(binary_kernels_for(isa), src.data(), rows, channels, got.data());
        for (size_t i = 0; i < want.size(); ++i)
          CHECK(got[i] == want[i], name << " " << isa_name(isa) << " rows=" << rows << " channels=" << channels
                                        << " word " << i << ": got " << std::hex << got[i] << " want " << want[i]);
        for (size_t i = want.size(); i < got.size(); ++i)
          CHECK(got[i] == kSentinel, name << " " << isa_name(isa) << " wrote past the output, channels=" << channels);
      }
  }
}

}  // namespace

TEST(pack_f32_matches_reference) {
  check_pack<float>(
      "pack_f32", special_float, 1,
      [](const BinaryKernels& k, const float* s, size_t r, size_t c, uint64_t* d) { k.pack_f32(s, r, c, d); });
}

TEST(pack_s8_matches_reference) {
  check_pack<int8_t>(
      "pack_s8",
      [](std::mt19937_64& g) { return static_cast<int8_t>(g() % 4 == 0 ? int(g() % 3) - 1 : int(g() % 256) - 128); }, 2,
      [](const BinaryKernels& k, const int8_t* s, size_t r, size_t c, uint64_t* d) { k.pack_s8(s, r, c, d); });
}

TEST(reference_pack_follows_the_sign_convention) {
  const float v[] = {1.f, -1.f, 0.f, -0.f, NAN, -INFINITY, INFINITY, -1e-30f};
  uint64_t word = 0;
  ref::b1_pack_f32(v, 1, 8, &word);
  CHECK(word == 0b10100010ull, "bits " << std::hex << word);
}

TEST(gemm_matches_reference) {
  auto g = rng(3);
  const size_t ms[] = {1, 2, 3, 4, 5, 7, 9, 17, 64};
  const size_t ns[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 15, 16, 17, 24, 31, 32, 40, 64, 65};
  const size_t kws[] = {1, 2, 3, 4, 5, 7, 8, 9, 17, 18, 19, 20, 36, 72, 80, 124, 127, 128, 130, 301};
  for (Isa isa : isas())
    for (size_t m : ms)
      for (size_t n : ns)
        for (size_t kw : kws) {
          if (m * n * kw > 200000) continue;
          // Row strides longer than kw (a prime extra) so a stride bug cannot hide.
          const size_t lda = kw + (g() % 2) * 3, ldb = kw + (g() % 2) * 5, ldc = n + (g() % 2) * 7;
          std::vector<uint64_t> a(m * lda), b(n * ldb);
          const int pattern = static_cast<int>(g() % 4);  // random, all-ones vs zeros (max counts), sparse
          for (auto& w : a) w = pattern == 1 ? ~0ull : pattern == 3 ? (g() & g() & g()) : g();
          for (auto& w : b) w = pattern == 1 ? 0ull : g();
          const int32_t kbits = static_cast<int32_t>(kw * 64 - g() % 64);
          std::vector<int32_t> want(m * ldc, -7), got(m * ldc + 8, -7);
          ref::b1_gemm(m, n, kw, a.data(), lda, b.data(), ldb, kbits, want.data(), ldc);
          binary_kernels_for(isa).gemm(m, n, kw, a.data(), lda, b.data(), ldb, kbits, got.data(), ldc);
          for (size_t i = 0; i < want.size(); ++i)
            CHECK(got[i] == want[i], "gemm " << isa_name(isa) << " m=" << m << " n=" << n << " kw=" << kw
                                             << " lda=" << lda << " ldb=" << ldb << " ldc=" << ldc
                                             << " pattern=" << pattern << " at row " << i / ldc << " col " << i % ldc
                                             << ": got " << got[i] << " want " << want[i]);
          for (size_t i = want.size(); i < got.size(); ++i) CHECK(got[i] == -7, "gemm wrote past c");
        }
}
