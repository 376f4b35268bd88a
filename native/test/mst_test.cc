// mst_test.cc: the child-from-parent formulas against dense dot products, and MST schedules:
// minimality against Kruskal, depth bounds, negation, groups, validation of corrupted schedules.
#include "lowbit/mst.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>

#include "harness.h"
#include "lowbit/error.h"

using namespace lowbit;
using lowbit::test::rng;

namespace {

std::shared_ptr<BinaryConv2dWeights> random_weights(std::mt19937_64& g, size_t out_c, size_t k, size_t groups = 1,
                                                    double flip = 0.5) {
  // Channels derived from a few prototypes with flip probability `flip`, so distances vary.
  std::vector<float> proto(k), w(out_c * k);
  for (auto& v : proto) v = g() % 2 ? 1.f : -1.f;
  std::uniform_real_distribution<double> u(0, 1);
  for (size_t c = 0; c < out_c; ++c)
    for (size_t i = 0; i < k; ++i) w[c * k + i] = u(g) < flip ? -proto[i] : proto[i];
  return pack_binary_conv2d_weights_f32(w.data(), out_c, 1, 1, k, groups);
}

int bit(const uint64_t* row, size_t i) { return (row[i / 64] >> (i % 64)) & 1; }

int dot(const uint64_t* a, const uint64_t* b, size_t k) {  // +-1 dot product of packed rows
  int y = 0;
  for (size_t i = 0; i < k; ++i) y += bit(a, i) == bit(b, i) ? 1 : -1;
  return y;
}

}  // namespace

TEST(child_from_parent_formulas_equal_the_dense_dot) {
  auto g = rng(41);
  for (size_t k : {1, 7, 64, 65, 300, 576}) {
    auto w = random_weights(g, 6, k, 1, 0.3);
    std::vector<uint64_t> x(w->row_words, 0);
    for (size_t i = 0; i < k; ++i) x[i / 64] |= uint64_t(g() % 2) << (i % 64);
    for (size_t i = 0; i < 6; ++i)
      for (size_t j = 0; j < 6; ++j) {
        const uint64_t *bi = w->bits.data() + i * w->row_words, *bj = w->bits.data() + j * w->row_words;
        int d = 0, c = 0, ce = 0;
        for (size_t p = 0; p < k; ++p) {
          const bool m = bit(bi, p) != bit(bj, p);
          d += m;
          c += m && bit(bj, p) != bit(x.data(), p);
          ce += !m && bit(bj, p) != bit(x.data(), p);
        }
        const int yi = dot(bi, x.data(), k), yj = dot(bj, x.data(), k), e = int(k) - d;
        CHECK(yj == yi + 2 * d - 4 * c, "child form, k=" << k << " " << i << "->" << j);
        CHECK(yj == -yi + 2 * e - 4 * ce, "negated form, k=" << k << " " << i << "->" << j);
      }
  }
}

TEST(mst_total_distance_is_minimal_and_the_schedule_valid) {
  auto g = rng(42);
  for (int iter = 0; iter < 20; ++iter) {
    const size_t n = 2 + g() % 30, k = 1 + g() % 200;
    auto w = random_weights(g, n, k, 1, 0.02 + 0.3 * (g() % 4) / 3.0);
    auto s = build_mst(*w, MstOptions{});
    validate_mst(*s, *w);
    // Kruskal over channels + virtual root (edge K to every channel): the minimum spanning weight.
    std::vector<std::tuple<uint32_t, size_t, size_t>> edges;
    for (size_t i = 0; i < n; ++i) {
      edges.emplace_back(uint32_t(k), i, n);
      for (size_t j = i + 1; j < n; ++j) {
        uint32_t d = 0;
        for (size_t p = 0; p < k; ++p)
          d += bit(w->bits.data() + i * w->row_words, p) != bit(w->bits.data() + j * w->row_words, p);
        edges.emplace_back(d, i, j);
      }
    }
    std::sort(edges.begin(), edges.end());
    std::vector<size_t> up(n + 1);
    std::iota(up.begin(), up.end(), 0);
    auto find = [&](size_t a) {
      while (up[a] != a) a = up[a] = up[up[a]];
      return a;
    };
    uint64_t best = 0;
    for (auto [d, i, j] : edges)
      if (find(i) != find(j)) up[find(i)] = find(j), best += d;
    uint64_t total = 0;
    for (size_t c = 0; c < n; ++c) total += s->cost[c];
    CHECK(total == best, "n=" << n << " k=" << k << ": Prim " << total << " vs Kruskal " << best);
    for (size_t c = 0; c < n; ++c)
      CHECK(mst_positions(*s, *w, c).size() == (s->parent[c] < 0 ? 0 : s->cost[c]), "positions of channel " << c);
  }
}

TEST(mst_depth_bound_negation_groups_and_identical_channels) {
  auto g = rng(43);
  auto w = random_weights(g, 40, 256, 1, 0.05);
  for (size_t bound : {0, 1, 2, 3}) {
    auto s = build_mst(*w, MstOptions{bound, false});
    validate_mst(*s, *w);
    CHECK(s->max_depth <= bound, "depth " << s->max_depth << " over the bound " << bound);
  }
  CHECK(build_mst(*w, MstOptions{0, false})->op_ratio == 1.0, "depth 0: every channel dense");
  // A channel and its complement: with negation it costs 0, without it K.
  std::vector<float> pair(2 * 128);
  for (size_t i = 0; i < 128; ++i) pair[i] = g() % 2 ? 1.f : -1.f, pair[128 + i] = -pair[i];
  auto wp = pack_binary_conv2d_weights_f32(pair.data(), 2, 1, 1, 128, 1);
  auto neg = build_mst(*wp, MstOptions{SIZE_MAX, true});
  validate_mst(*neg, *wp);
  CHECK(neg->total_distance == 0 && neg->negate[neg->order[1]] == 1, "complement channel should cost 0 negated");
  CHECK(build_mst(*wp, MstOptions{})->parent[1] == -1, "without negation the complement is a root");
  // Identical channels cost 0; channels of other groups never become parents.
  auto wg = random_weights(g, 12, 32, 3, 0.0);
  auto sg = build_mst(*wg, MstOptions{});
  validate_mst(*sg, *wg);
  for (size_t c = 0; c < 12; ++c)
    if (sg->parent[c] >= 0) CHECK(size_t(sg->parent[c]) / 4 == c / 4 && sg->cost[c] == 0, "group of channel " << c);
  CHECK(std::count(sg->parent.begin(), sg->parent.end(), -1) == 3, "one root per group");
}

TEST(mst_validation_rejects_corrupted_schedules) {
  auto g = rng(44);
  auto w = random_weights(g, 10, 100, 1, 0.05);
  auto good = build_mst(*w, MstOptions{});
  const auto kind = [&](auto mutate) {
    MstSchedule s = *good;
    mutate(s);
    try {
      validate_mst(s, *w);
    } catch (const Error& e) {
      return int(e.kind());
    }
    return -1;
  };
  size_t child = 0;
  while (good->parent[child] < 0) ++child;
  CHECK(kind([](MstSchedule& s) { s.parent[s.order[0]] = 99; }) == int(ErrorKind::Range), "parent out of range");
  CHECK(kind([&](MstSchedule& s) { s.parent[child] = int32_t(child); }) == int(ErrorKind::Range),
        "self parent (cycle)");
  CHECK(kind([](MstSchedule& s) { std::reverse(s.order.begin(), s.order.end()); }) == int(ErrorKind::Range),
        "children first");
  CHECK(kind([](MstSchedule& s) { s.order[1] = s.order[0]; }) == int(ErrorKind::Range), "repeated channel");
  CHECK(kind([&](MstSchedule& s) { s.cost[child] += 1; }) == int(ErrorKind::Range), "cost mismatch");
  CHECK(kind([](MstSchedule& s) { s.parent.pop_back(); }) == int(ErrorKind::Shape), "short field");
}

TEST(mst_builds_512_channels_of_4608_bits_quickly) {
  auto g = rng(45);
  auto w = random_weights(g, 512, 4608, 1, 0.05);
  const auto t0 = std::chrono::steady_clock::now();
  auto s = build_mst(*w, MstOptions{SIZE_MAX, true});
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  validate_mst(*s, *w);
  std::printf("       512 x 4608-bit MST: %.1f ms, op ratio %.2f, storage ratio %.2f, depth %zu\n", ms, s->op_ratio,
              s->storage_ratio, s->max_depth);
  CHECK(s->op_ratio > 4, "5% flips around a prototype should give a large op ratio, got " << s->op_ratio);
}

TEST(mst_file_round_trips_schedule_and_weights) {
  auto g = rng(46);
  for (int iter = 0; iter < 12; ++iter) {
    const size_t groups = iter % 3 == 0 ? 2 : 1, n = groups * (1 + g() % 20), k = 1 + g() % 700;
    auto w = random_weights(g, n, k, groups, iter % 2 ? 0.01 : 0.3);
    auto s = build_mst(*w, MstOptions{iter % 4 == 0 ? 2 : SIZE_MAX, iter % 2 == 0});
    const auto bytes = serialize_mst(*s, *w);
    const MstLayer back = deserialize_mst(bytes.data(), bytes.size());
    CHECK(back.weights->bits == w->bits, "iter " << iter << ": weights differ after the round trip");
    CHECK(back.weights->tap_sums == w->tap_sums, "iter " << iter << ": tap sums differ");
    CHECK(back.schedule->parent == s->parent && back.schedule->negate == s->negate && back.schedule->cost == s->cost &&
              back.schedule->depth == s->depth && back.schedule->order == s->order,
          "iter " << iter << ": schedule differs");
    CHECK(back.schedule->op_ratio == s->op_ratio, "stats differ");
  }
}

TEST(mst_file_corruption_throws_named_errors) {
  auto g = rng(47);
  auto w = random_weights(g, 9, 130, 1, 0.05);
  auto s = build_mst(*w, MstOptions{SIZE_MAX, true});
  const auto bytes = serialize_mst(*s, *w);
  const auto outcome = [&](const std::vector<uint8_t>& b) {
    try {
      deserialize_mst(b.data(), b.size());
    } catch (const Error& e) {
      return int(e.kind());
    }
    return -1;  // accepted: must then be a valid schedule (validate_mst ran)
  };
  for (size_t len = 0; len < bytes.size(); ++len) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + len);
    CHECK(outcome(cut) >= 0, "truncated to " << len << " bytes was accepted");
  }
  int accepted = 0;
  for (int i = 0; i < 2000; ++i) {  // flipped bytes: an error or a valid layer, never a crash
    auto b = bytes;
    b[g() % b.size()] ^= uint8_t(1 + g() % 255);
    accepted += outcome(b) < 0;
  }
  std::printf("       2000 single-byte corruptions: %d decoded to other valid layers, the rest refused\n", accepted);
  auto huge = bytes;
  const uint32_t big = 0xFFFFFFF0u;
  std::memcpy(huge.data() + 8, &big, 4);
  CHECK(outcome(huge) == int(ErrorKind::Shape), "huge channel count");
  auto extra = bytes;
  extra.push_back(0);
  CHECK(outcome(extra) == int(ErrorKind::Shape), "trailing bytes");
  auto magic = bytes;
  magic[0] = 'X';
  CHECK(outcome(magic) == int(ErrorKind::Shape), "bad magic");
}
