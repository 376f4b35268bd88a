// integer_kernels_test.cc: every integer kernel table (each supported ISA: avx2 and avx512 where the
// CPU has them, and on aarch64 both NEON variants) against lowbit::ref, bit for bit (q7 against the
// reference q8 on weights in [-64, 64]): odd row counts (tile remainders), every K tail,
// strided rows and outputs, partial panels, both masks, random and extreme values up to kQMaxK,
// and no write outside c[i * ldc + j < 16].
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "cpu/dispatch.h"
#include "harness.h"
#include "integer/kernels.h"

using namespace lowbit;
using lowbit::test::rng;

namespace {

constexpr int32_t kSentinel = 0x5A5A5A5A;
// 1-17 and a few up to 37: every tile remainder of every ISA's row tile (4 to 14 rows).
const size_t kRows[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 23, 29, 31, 37, 64, 97};
// Awkward depths (1-8, primes, around 64 and 128, conv layer sizes 576 and 1152, 4607 / 4608 just
// below and at a panel's K) plus ones whose group count (kp / 4) leaves every vector tail: 4, 7, 15, 255.
const size_t kDepths[] = {1, 2, 3, 4, 5, 7, 8, 13, 25, 31, 57, 63, 64, 65, 127, 576, 1020, 1152, 4607, 4608};

struct Table {
  std::string name;
  const IntegerKernels* k;
};

std::vector<Table> tables() {
  std::vector<Table> out;
  for (Isa isa : supported_isas()) out.push_back({isa_name(isa), &integer_kernels_for(isa)});
#if defined(__aarch64__)
  out.push_back({"neon (no sdot)", &neon::kIntegerKernels});
  if (cpu_has_dotprod()) out.push_back({"neon_dot", &neon_dot::kIntegerKernels});
#endif
  return out;
}

bool failed() { return lowbit::test::failures_in_current() > 0; }

// Activation values (before the mask is applied to make bytes).
enum class Act { Random, Min, Max, MinMax, Sparse, Count };
const char* act_name(Act p) {
  static const char* names[] = {"random", "all -128", "all 127", "-128/127", "sparse extremes"};
  return names[static_cast<int>(p)];
}
int8_t act_value(Act p, std::mt19937_64& g) {
  switch (p) {
    case Act::Min:
      return -128;
    case Act::Max:
      return 127;
    case Act::MinMax:
      return g() % 2 ? -128 : 127;
    case Act::Sparse: {
      static const int8_t v[] = {0, 0, -128, 127, -127, 1, -1};
      return v[g() % 7];
    }
    default:
      return static_cast<int8_t>(g());
  }
}

// Q8 weights; FullRandom and Min contain -128.
enum class W8 { Random, FullRandom, Max, NegMax, Min, Mixed, Count };
const char* w8_name(W8 p) {
  static const char* names[] = {"random [-127,127]", "random [-128,127]", "all 127", "all -127", "all -128", "+-127"};
  return names[static_cast<int>(p)];
}
int8_t w8_value(W8 p, std::mt19937_64& g) {
  switch (p) {
    case W8::FullRandom:
      return static_cast<int8_t>(g());
    case W8::Max:
      return 127;
    case W8::NegMax:
      return -127;
    case W8::Min:
      return -128;
    case W8::Mixed:
      return g() % 2 ? 127 : -127;
    default:
      return static_cast<int8_t>(static_cast<int>(g() % 255) - 127);
  }
}

enum class W4 { Random, Min, Max, Mixed, Count };
const char* w4_name(W4 p) {
  static const char* names[] = {"random [-8,7]", "all -8", "all 7", "-8/7"};
  return names[static_cast<int>(p)];
}
int8_t w4_value(W4 p, std::mt19937_64& g) {
  switch (p) {
    case W4::Min:
      return -8;
    case W4::Max:
      return 7;
    case W4::Mixed:
      return g() % 2 ? -8 : 7;
    default:
      return static_cast<int8_t>(static_cast<int>(g() % 16) - 8);
  }
}

// Q7 weights: [-64, 64], both ends included.
enum class W7 { Random, Min, Max, Mixed, Count };
const char* w7_name(W7 p) {
  static const char* names[] = {"random [-64,64]", "all -64", "all 64", "-64/64"};
  return names[static_cast<int>(p)];
}
int8_t w7_value(W7 p, std::mt19937_64& g) {
  switch (p) {
    case W7::Min:
      return -64;
    case W7::Max:
      return 64;
    case W7::Mixed:
      return g() % 2 ? -64 : 64;
    default:
      return static_cast<int8_t>(static_cast<int>(g() % 129) - 64);
  }
}

// One GEMM case: m rows of K values (padded to kp with the mask byte, junk from kp to lda), a
// panel of `count` channels from a [count][ldw] matrix, c with row stride ldc.
struct Case {
  size_t m, k, kp, lda, ldc, count, ldw;
  uint8_t mask;
  std::vector<uint8_t> a;  // exactly m * lda bytes, so ASan sees any read past the last row
  std::vector<int8_t> w;
};

Case make_case(size_t m, size_t k, uint8_t mask, Act act, std::mt19937_64& g) {
  Case s;
  s.m = m;
  s.k = k;
  s.kp = q_padded_k(k);
  s.lda = s.kp + (g() % 3 == 0 ? g() % 9 : 0);
  s.ldc = kQPanelChannels + (g() % 2 ? g() % 7 : 0);
  s.count = g() % 3 == 0 ? 1 + g() % kQPanelChannels : kQPanelChannels;
  s.ldw = k + (g() % 2 ? g() % 5 : 0);
  s.mask = mask;
  s.a.resize(m * s.lda);
  for (size_t i = 0; i < m; ++i)
    for (size_t kk = 0; kk < s.lda; ++kk) {
      uint8_t& byte = s.a[i * s.lda + kk];
      if (kk < k)
        byte = static_cast<uint8_t>(act_value(act, g)) ^ mask;
      else if (kk < s.kp)
        byte = mask;  // the contract's padding: value 0
      else
        byte = static_cast<uint8_t>(g());  // not part of the row: must not matter
    }
  s.w.assign(s.count * s.ldw, 0);
  return s;
}

std::string describe(const Case& s) {
  return "m=" + std::to_string(s.m) + " K=" + std::to_string(s.k) + " lda=" + std::to_string(s.lda) +
         " ldc=" + std::to_string(s.ldc) + " count=" + std::to_string(s.count) + " ldw=" + std::to_string(s.ldw) +
         " mask=" + std::to_string(s.mask);
}

// Runs `run` (a kernel call writing c) into a sentinel-filled c and compares with want.
template <typename Run>
void check_output(const std::string& what, const Case& s, const std::vector<int32_t>& want, Run run) {
  std::vector<int32_t> got(s.m * s.ldc + 5, kSentinel);
  run(got.data());
  for (size_t i = 0; i < s.m; ++i)
    for (size_t j = 0; j < s.ldc; ++j) {
      const size_t at = i * s.ldc + j;
      if (j < kQPanelChannels)
        CHECK(got[at] == want[i * kQPanelChannels + j], what << " " << describe(s) << " at row " << i << " col " << j
                                                             << ": got " << got[at] << " want "
                                                             << want[i * kQPanelChannels + j]);
      else
        CHECK(got[at] == kSentinel, what << " " << describe(s) << " wrote c[" << i << "][" << j << "] (ldc padding)");
    }
  for (size_t at = s.m * s.ldc; at < got.size(); ++at)
    CHECK(got[at] == kSentinel, what << " " << describe(s) << " wrote past c");
}

void check_q8(const Case& s, W8 wp, std::mt19937_64& g, const std::string& label) {
  Case c = s;
  for (size_t j = 0; j < c.count; ++j)
    for (size_t kk = 0; kk < c.k; ++kk) c.w[j * c.ldw + kk] = w8_value(wp, g);
  std::vector<uint8_t> panel(q8_panel_bytes(c.kp));  // exact size: ASan sees reads past the panel
  pack_q8_panel(c.w.data(), c.count, c.k, c.ldw, panel.data());
  std::vector<int32_t> want(c.m * kQPanelChannels);
  ref::q8_gemm(c.m, c.kp, c.a.data(), c.lda, c.mask, panel.data(), want.data(), kQPanelChannels);
  for (const Table& t : tables()) {
    check_output("q8 " + t.name + " [" + label + ", " + w8_name(wp) + "]", c, want,
                 [&](int32_t* out) { t.k->q8_gemm(c.m, c.kp, c.a.data(), c.lda, c.mask, panel.data(), out, c.ldc); });
    if (failed()) return;
  }
}

void check_q4(const Case& s, W4 wp, std::mt19937_64& g, const std::string& label) {
  Case c = s;
  for (size_t j = 0; j < c.count; ++j)
    for (size_t kk = 0; kk < c.k; ++kk) c.w[j * c.ldw + kk] = w4_value(wp, g);
  std::vector<uint8_t> panel(q4_panel_bytes(c.kp));
  pack_q4_panel(c.w.data(), c.count, c.k, c.ldw, panel.data());
  std::vector<int32_t> want(c.m * kQPanelChannels);
  ref::q4_gemm(c.m, c.kp, c.a.data(), c.lda, c.mask, panel.data(), want.data(), kQPanelChannels);
  for (const Table& t : tables()) {
    check_output("q4 " + t.name + " [" + label + ", " + w4_name(wp) + "]", c, want,
                 [&](int32_t* out) { t.k->q4_gemm(c.m, c.kp, c.a.data(), c.lda, c.mask, panel.data(), out, c.ldc); });
    if (failed()) return;
  }
}

void check_q7(const Case& s, W7 wp, std::mt19937_64& g, const std::string& label) {
  Case c = s;
  for (size_t j = 0; j < c.count; ++j)
    for (size_t kk = 0; kk < c.k; ++kk) c.w[j * c.ldw + kk] = w7_value(wp, g);
  std::vector<uint8_t> panel(q8_panel_bytes(c.kp));  // Q7 panels are Q8 panels
  pack_q8_panel(c.w.data(), c.count, c.k, c.ldw, panel.data());
  std::vector<int32_t> want(c.m * kQPanelChannels);
  ref::q8_gemm(c.m, c.kp, c.a.data(), c.lda, c.mask, panel.data(), want.data(), kQPanelChannels);
  for (const Table& t : tables()) {
    check_output("q7 " + t.name + " [" + label + ", " + w7_name(wp) + "]", c, want,
                 [&](int32_t* out) { t.k->q7_gemm(c.m, c.kp, c.a.data(), c.lda, c.mask, panel.data(), out, c.ldc); });
    if (failed()) return;
  }
}

}  // namespace

TEST(integer_kernel_tables_cover_every_isa) {
  const std::vector<Table> all = tables();
  CHECK(all.size() == supported_isas().size()
#if defined(__aarch64__)
                          + 1 + (cpu_has_dotprod() ? 1 : 0)
#endif
            ,
        "tables: " << all.size());
  for (const Table& t : all)
    CHECK(t.k->q8_gemm && t.k->q4_gemm && t.k->q7_gemm && t.k->q8_dw && t.k->q16_small_k,
          t.name << " has a null kernel");
}

TEST(q8_gemm_matches_reference) {
  auto g = rng(101);
  for (size_t m : kRows)
    for (size_t k : kDepths) {
      const uint8_t mask = g() % 2 ? 0x80 : 0;
      const auto act = static_cast<Act>(g() % 2 ? 0 : g() % static_cast<int>(Act::Count));
      const auto wp = static_cast<W8>(g() % 2 ? 0 : g() % static_cast<int>(W8::Count));
      check_q8(make_case(m, k, mask, act, g), wp, g, act_name(act));
      if (failed()) return;
    }
}

TEST(q4_gemm_matches_reference) {
  auto g = rng(102);
  for (size_t m : kRows)
    for (size_t k : kDepths) {
      const uint8_t mask = g() % 2 ? 0x80 : 0;
      const auto act = static_cast<Act>(g() % 2 ? 0 : g() % static_cast<int>(Act::Count));
      const auto wp = static_cast<W4>(g() % 2 ? 0 : g() % static_cast<int>(W4::Count));
      check_q4(make_case(m, k, mask, act, g), wp, g, act_name(act));
      if (failed()) return;
    }
}

TEST(q7_gemm_matches_reference) {
  auto g = rng(110);
  for (size_t m : kRows)
    for (size_t k : kDepths) {
      const uint8_t mask = g() % 2 ? 0x80 : 0;
      const auto act = static_cast<Act>(g() % 2 ? 0 : g() % static_cast<int>(Act::Count));
      const auto wp = static_cast<W7>(g() % 2 ? 0 : g() % static_cast<int>(W7::Count));
      check_q7(make_case(m, k, mask, act, g), wp, g, act_name(act));
      if (failed()) return;
    }
}

// Every activation extreme against every weight extreme, both masks, on shapes that take each
// path (single rows, tile remainders, buffered tiles; short, tailed and multi-chunk K).
TEST(q_gemm_extremes_match_reference) {
  auto g = rng(103);
  const size_t shapes[][2] = {{1, 7}, {3, 64}, {5, 65}, {9, 576}, {13, 1153}, {64, 127}, {97, 300}};
  for (const auto& shape : shapes)
    for (uint8_t mask : {uint8_t{0}, uint8_t{0x80}})
      for (int act = 0; act < static_cast<int>(Act::Count); ++act) {
        const Case s = make_case(shape[0], shape[1], mask, static_cast<Act>(act), g);
        for (int wp = 0; wp < static_cast<int>(W8::Count); ++wp) {
          check_q8(s, static_cast<W8>(wp), g, act_name(static_cast<Act>(act)));
          if (failed()) return;
        }
        for (int wp = 0; wp < static_cast<int>(W4::Count); ++wp) {
          check_q4(s, static_cast<W4>(wp), g, act_name(static_cast<Act>(act)));
          if (failed()) return;
        }
        for (int wp = 0; wp < static_cast<int>(W7::Count); ++wp) {
          check_q7(s, static_cast<W7>(wp), g, act_name(static_cast<Act>(act)));
          if (failed()) return;
        }
      }
}

// kp = kQMaxK with the largest products: sums reach +-2^30 and must not wrap anywhere.
TEST(q_gemm_exact_at_max_k) {
  auto g = rng(104);
  for (size_t m : {1, 9})
    for (uint8_t mask : {uint8_t{0}, uint8_t{0x80}})
      for (Act act : {Act::Min, Act::Max}) {
        Case s = make_case(m, kQMaxK, mask, act, g);
        for (W8 wp : {W8::Min, W8::Max}) {
          check_q8(s, wp, g, std::string("max K, ") + act_name(act));
          if (failed()) return;
        }
        for (W4 wp : {W4::Min, W4::Max}) {
          check_q4(s, wp, g, std::string("max K, ") + act_name(act));
          if (failed()) return;
        }
        for (W7 wp : {W7::Min, W7::Max}) {
          check_q7(s, wp, g, std::string("max K, ") + act_name(act));
          if (failed()) return;
        }
      }
}

TEST(q_gemm_zero_depth_writes_zeros) {
  std::vector<uint8_t> panel8(q8_panel_bytes(0)), panel4(q4_panel_bytes(0));
  pack_q8_panel(nullptr, 0, 0, 0, panel8.data());
  pack_q4_panel(nullptr, 0, 0, 0, panel4.data());
  const uint8_t a[1] = {0};
  for (const Table& t : tables()) {
    std::vector<int32_t> c(3 * 16, kSentinel);
    t.k->q8_gemm(3, 0, a, 0, 0, panel8.data(), c.data(), 16);
    for (int32_t v : c) CHECK(v == 0, "q8 " << t.name << " kp=0");
    std::fill(c.begin(), c.end(), kSentinel);
    t.k->q4_gemm(3, 0, a, 0, 0x80, panel4.data(), c.data(), 16);
    for (int32_t v : c) CHECK(v == 0, "q4 " << t.name << " kp=0");
    for (uint8_t mask : {uint8_t{0}, uint8_t{0x80}}) {
      std::fill(c.begin(), c.end(), kSentinel);
      t.k->q7_gemm(3, 0, a, 0, mask, panel8.data(), c.data(), 16);
      for (int32_t v : c) CHECK(v == 0, "q7 " << t.name << " kp=0 mask=" << int(mask));
      std::fill(c.begin(), c.end(), kSentinel);
      t.k->q8_gemm(3, 0, a, 0, mask, panel8.data(), c.data(), 16);
      for (int32_t v : c) CHECK(v == 0, "q8 " << t.name << " kp=0 mask=" << int(mask));
    }
  }
}

TEST(panels_round_trip_every_value) {
  auto g = rng(105);
  for (size_t k : {1, 3, 4, 5, 63, 64, 65, 300})
    for (size_t count : {1, 7, 8, 9, 15, 16}) {
      const size_t ldw = k + g() % 4, kp = q_padded_k(k);
      std::vector<int8_t> w8(count * ldw), w4(count * ldw);
      for (auto& v : w8) v = static_cast<int8_t>(g());
      for (auto& v : w4) v = static_cast<int8_t>(static_cast<int>(g() % 16) - 8);
      std::vector<uint8_t> p8(q8_panel_bytes(kp)), p4(q4_panel_bytes(kp));
      pack_q8_panel(w8.data(), count, k, ldw, p8.data());
      pack_q4_panel(w4.data(), count, k, ldw, p4.data());
      for (size_t j = 0; j < kQPanelChannels; ++j)
        for (size_t kk = 0; kk < kp; ++kk) {
          const bool real = j < count && kk < k;
          const int want8 = real ? w8[j * ldw + kk] : 0, want4 = real ? w4[j * ldw + kk] : 0;
          CHECK(q8_panel_value(p8.data(), j, kk) == want8,
                "q8 k=" << k << " count=" << count << " j=" << j << " k=" << kk << ": got "
                        << int(q8_panel_value(p8.data(), j, kk)) << " want " << want8);
          CHECK(q4_panel_value(p4.data(), j, kk) == want4,
                "q4 k=" << k << " count=" << count << " j=" << j << " k=" << kk << ": got "
                        << int(q4_panel_value(p4.data(), j, kk)) << " want " << want4);
        }
    }
}

TEST(panel_header_holds_the_row_sums) {
  auto g = rng(106);
  for (size_t k : {1, 5, 64, 4607})
    for (size_t count : {1, 9, 16}) {
      const size_t ldw = k + 3, kp = q_padded_k(k);
      std::vector<int8_t> w8(count * ldw), w4(count * ldw);
      for (auto& v : w8) v = static_cast<int8_t>(g() % 4 == 0 ? -128 : g());
      for (auto& v : w4) v = static_cast<int8_t>(static_cast<int>(g() % 16) - 8);
      std::vector<uint8_t> p8(q8_panel_bytes(kp)), p4(q4_panel_bytes(kp));
      pack_q8_panel(w8.data(), count, k, ldw, p8.data());
      pack_q4_panel(w4.data(), count, k, ldw, p4.data());
      int32_t sums8[kQPanelChannels], sums4[kQPanelChannels];
      std::memcpy(sums8, p8.data(), sizeof sums8);
      std::memcpy(sums4, p4.data(), sizeof sums4);
      for (size_t j = 0; j < kQPanelChannels; ++j) {
        int32_t want8 = 0, want4 = 0;
        for (size_t kk = 0; j < count && kk < k; ++kk) {
          want8 += w8[j * ldw + kk];
          want4 += w4[j * ldw + kk];
        }
        CHECK(sums8[j] == want8,
              "q8 wsum k=" << k << " count=" << count << " j=" << j << ": " << sums8[j] << " vs " << want8);
        CHECK(sums4[j] == want4,
              "q4 wsum k=" << k << " count=" << count << " j=" << j << ": " << sums4[j] << " vs " << want4);
      }
    }
}

// q8_gemm_runs / q4_gemm_runs where an ISA has them: rows of `runs` pieces that overlap as a
// stride-1 conv's windows do (row i's piece r at image row r, i * step bytes on), some at one
// shared pad piece; buffers of exact size (ASan sees reads past a piece), every row tile
// remainder, both masks and another, extremes, and at kQMaxK. ref's runs GEMMs themselves equal
// ref::q8_gemm / q4_gemm on the gathered rows. wp: a W8 pattern, or for Q4 a W4 one (modulo).
void check_runs(bool q4, size_t m, size_t runs, size_t len, uint8_t mask, Act act, int wp, std::mt19937_64& g) {
  const size_t kp = runs * len, step = g() % 2 ? 4 * (1 + g() % 4) : len;
  const size_t line = step * (m - 1) + len;  // bytes of one image row
  std::vector<uint8_t> image(runs * line), pad(len);
  for (auto& v : image) v = static_cast<uint8_t>(act_value(act, g)) ^ mask;
  for (auto& v : pad) v = static_cast<uint8_t>(act_value(act, g)) ^ mask;
  std::vector<const uint8_t*> a(m * runs);
  Case c;  // the gathered rows, for ref::q8_gemm / q4_gemm and check_output
  c.m = m, c.k = c.kp = c.lda = kp, c.ldc = kQPanelChannels + (g() % 2 ? g() % 7 : 0), c.mask = mask;
  c.count = g() % 3 == 0 ? 1 + g() % kQPanelChannels : kQPanelChannels, c.ldw = kp;
  c.a.resize(m * kp);
  for (size_t i = 0; i < m; ++i)
    for (size_t r = 0; r < runs; ++r) {
      a[i * runs + r] = g() % 5 ? image.data() + r * line + i * step : pad.data();
      std::memcpy(c.a.data() + i * kp + r * len, a[i * runs + r], len);
    }
  const W4 w4 = static_cast<W4>(wp % static_cast<int>(W4::Count));
  c.w.resize(c.count * kp);
  for (auto& v : c.w) v = q4 ? w4_value(w4, g) : w8_value(static_cast<W8>(wp), g);
  std::vector<uint8_t> panel(q4 ? q4_panel_bytes(kp) : q8_panel_bytes(kp));
  (q4 ? pack_q4_panel : pack_q8_panel)(c.w.data(), c.count, kp, kp, panel.data());
  std::vector<int32_t> want(m * kQPanelChannels);
  (q4 ? ref::q4_gemm : ref::q8_gemm)(m, kp, c.a.data(), kp, mask, panel.data(), want.data(), kQPanelChannels);
  const std::string label = std::string(q4 ? "q4" : "q8") + " runs=" + std::to_string(runs) +
                            " step=" + std::to_string(step) + " [" + act_name(act) + ", " +
                            (q4 ? w4_name(w4) : w8_name(static_cast<W8>(wp))) + "]";
  const auto check = [&](const std::string& who, Q8GemmRunsFn fn) {
    check_output(who + " " + label, c, want,
                 [&](int32_t* out) { fn(m, kp, runs, a.data(), mask, panel.data(), out, c.ldc); });
  };
  check("ref", q4 ? ref::q4_gemm_runs : ref::q8_gemm_runs);
  for (const Table& t : tables()) {
    const Q8GemmRunsFn fn = q4 ? t.k->q4_gemm_runs : t.k->q8_gemm_runs;
    if (fn && !failed()) check(t.name, fn);
  }
}

TEST(gemm_runs_match_reference) {
  auto g = rng(111);
  // Piece lengths: kernel_w * C for C = 4 / 12 / 20 / 68 and the ResNet-18 widths, one group, odd.
  const size_t kLens[] = {4, 8, 12, 36, 60, 192, 204, 384, 1536, 4};
  for (bool q4 : {false, true})
    for (size_t m : kRows)
      for (size_t runs : {1, 2, 3, 5}) {
        const uint8_t mask = g() % 5 == 0 ? static_cast<uint8_t>(g()) : g() % 2 ? 0x80 : 0;
        const auto act = static_cast<Act>(g() % 2 ? 0 : g() % static_cast<int>(Act::Count));
        const int wp = g() % 2 ? 0 : static_cast<int>(g() % static_cast<int>(W8::Count));
        check_runs(q4, m, runs, kLens[g() % std::size(kLens)], mask, act, wp, g);
        if (failed()) return;
      }
  for (uint8_t mask : {uint8_t{0}, uint8_t{0x80}, uint8_t{0x3C}})
    for (Act act : {Act::Min, Act::Max}) {
      for (W8 wp : {W8::Min, W8::Max}) check_runs(false, 9, 4, kQMaxK / 4, mask, act, static_cast<int>(wp), g);
      for (W4 wp : {W4::Min, W4::Max}) check_runs(true, 9, 4, kQMaxK / 4, mask, act, static_cast<int>(wp), g);
      if (failed()) return;
    }
}

TEST(q8_dw_matches_reference) {
  auto g = rng(107);
  std::vector<size_t> ns;
  for (size_t n = 1; n <= 70; ++n) ns.push_back(n);
  for (size_t n : {95, 96, 97, 127, 128, 255, 256, 257, 1000, 1024}) ns.push_back(n);
  // Tap counts: 1, 2, odd and even, 3x3, 5x5, 7x7, and past the 32 taps of one AVX2 chunk.
  const size_t kTaps[] = {1, 2, 3, 4, 9, 25, 32, 33, 49, 66};
  for (size_t n : ns)
    for (uint8_t mask : {uint8_t{0}, uint8_t{0x80}})
      for (int pattern = 0; pattern < 4; ++pattern) {
        const size_t taps = kTaps[g() % std::size(kTaps)], pixels = 1 + g() % 9;  // pixel blocks and remainders
        // 0: random; 1: -128 * -128 = 16384 everywhere; 2: 127 * -128 (byte 255 with mask 0x80);
        // 3: a random mix of 127 and -128 on both sides.
        const auto value = [&](bool weight) {
          if (pattern == 0) return static_cast<int8_t>(g());
          if (pattern == 3) return static_cast<int8_t>(g() % 2 ? 127 : -128);
          return static_cast<int8_t>(pattern == 2 && !weight ? 127 : -128);
        };
        // One buffer of exactly n bytes per pointer (ASan sees reads past n); the last one is
        // shared by several taps, as the row of zero points is.
        std::vector<std::vector<uint8_t>> rows(pixels * taps + 1, std::vector<uint8_t>(n));
        for (auto& row : rows)
          for (auto& v : row) v = static_cast<uint8_t>(value(false)) ^ mask;
        std::vector<const uint8_t*> x(pixels * taps);
        for (size_t i = 0; i < x.size(); ++i) x[i] = (g() % 4 ? rows[i] : rows.back()).data();
        std::vector<int8_t> w(taps * n);
        for (auto& v : w) v = value(true);
        std::vector<int32_t> bias(n);  // extremes too: the sum wraps modulo 2^32
        for (auto& b : bias) b = g() % 8 ? static_cast<int32_t>(g() % 2000001) - 1000000 : static_cast<int32_t>(g());
        std::vector<int32_t> want(pixels * n);
        ref::q8_dw(n, taps, pixels, x.data(), mask, w.data(), bias.data(), want.data());
        for (const Table& t : tables()) {
          std::vector<int32_t> got(want.size() + 3, kSentinel);
          t.k->q8_dw(n, taps, pixels, x.data(), mask, w.data(), bias.data(), got.data());
          for (size_t i = 0; i < want.size(); ++i)
            CHECK(got[i] == want[i], "q8_dw " << t.name << " n=" << n << " taps=" << taps << " pixels=" << pixels
                                              << " mask=" << int(mask) << " pattern=" << pattern << " element " << i
                                              << ": got " << got[i] << " want " << want[i]);
          for (size_t i = want.size(); i < got.size(); ++i)
            CHECK(got[i] == kSentinel, "q8_dw " << t.name << " wrote past " << pixels << " x " << n);
          if (failed()) return;
        }
      }
}

TEST(q16_small_k_matches_reference) {
  auto g = rng(109);
  for (size_t k = 1; k <= kQSmallK; ++k)
    for (size_t n : {1, 3, 15, 16, 17, 31, 32, 33, 64, 70})
      for (int pattern = 0; pattern < 3; ++pattern) {
        const size_t stride = (n + 15) / 16 * 16 + (g() % 2) * 16;
        // 1-9 pixels: the 4-pixel blocks and every remainder; rows of x at a stride >= k
        const size_t pixels = 1 + g() % 9, ldx = k + g() % 3;
        // exact sizes, so ASan sees any read past the weights, inputs or biases
        std::vector<int16_t> x((pixels - 1) * ldx + k), w(k * stride, 0);
        std::vector<int32_t> bias(n);
        // 0: random; 1: the extremes (-255 x -128 and 255 x 127, largest sums); 2: zeros among them
        for (auto& v : x)
          v = pattern == 1                   ? (g() % 2 ? 255 : -255)
              : pattern == 2 && g() % 3 == 0 ? 0
                                             : static_cast<int16_t>(static_cast<int>(g() % 511) - 255);
        for (size_t i = 0; i < k; ++i)
          for (size_t c = 0; c < n; ++c)
            w[i * stride + c] =
                pattern == 1 ? (g() % 2 ? 127 : -128) : static_cast<int16_t>(static_cast<int>(g() % 256) - 128);
        for (int32_t& b : bias) b = static_cast<int32_t>(g() % 2000001) - 1000000;
        std::vector<int32_t> want(pixels * n);
        ref::q16_small_k(k, n, pixels, x.data(), ldx, w.data(), stride, bias.data(), want.data());
        for (const Table& t : tables()) {
          std::vector<int32_t> out(want.size() + 3, kSentinel);
          t.k->q16_small_k(k, n, pixels, x.data(), ldx, w.data(), stride, bias.data(), out.data());
          for (size_t i = 0; i < want.size(); ++i)
            CHECK(out[i] == want[i], "q16_small_k " << t.name << " k=" << k << " n=" << n << " pixels=" << pixels
                                                    << " pattern=" << pattern << " element " << i << ": got " << out[i]
                                                    << " want " << want[i]);
          for (size_t i = want.size(); i < out.size(); ++i)
            CHECK(out[i] == kSentinel, "q16_small_k " << t.name << " wrote past " << pixels << " x " << n);
          if (failed()) return;
        }
      }
}
