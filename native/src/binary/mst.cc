// mst.cc: building and checking MST schedules of binary layers (see lowbit/mst.h).
#include "lowbit/mst.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "lowbit/error.h"

namespace lowbit {
namespace {

std::string num(size_t v) { return std::to_string(v); }

uint32_t hamming(const uint64_t* a, const uint64_t* b, size_t words) {
  uint32_t d = 0;
  for (size_t i = 0; i < words; ++i) d += static_cast<uint32_t>(__builtin_popcountll(a[i] ^ b[i]));
  return d;
}

size_t bits_for(size_t values) {  // bits to store an index in [0, values)
  size_t b = 0;
  while ((size_t{1} << b) < values) ++b;
  return std::max<size_t>(b, 1);
}

void finish_stats(MstSchedule& s) {
  const double k = static_cast<double>(s.kbits);
  double ops = 0, bits = 0;
  const double parent_bits = static_cast<double>(bits_for(s.channels)) + 1;  // index + negate flag
  const double index_bits = static_cast<double>(bits_for(s.kbits));
  for (size_t c = 0; c < s.channels; ++c) {
    ops += s.cost[c];
    if (s.parent[c] < 0) {
      bits += k;
    } else {
      s.total_distance += s.cost[c];
      bits += parent_bits + std::min(k, s.cost[c] * index_bits);
    }
    s.max_depth = std::max<size_t>(s.max_depth, s.depth[c]);
  }
  s.op_ratio = ops > 0 ? s.channels * k / ops : 1;
  s.storage_ratio = bits > 0 ? s.channels * k / bits : 1;
}

}  // namespace

std::shared_ptr<MstSchedule> build_mst(const BinaryConv2dWeights& w, const MstOptions& options) {
  auto s = std::make_shared<MstSchedule>();
  const size_t n = w.out_channels, k = w.kbits, ocg = n / w.groups;
  s->channels = n, s->kbits = k, s->groups = w.groups;
  s->parent.assign(n, -1);
  s->negate.assign(n, 0);
  s->depth.assign(n, 0);
  s->cost.assign(n, static_cast<uint32_t>(k));
  const auto row = [&](size_t c) { return w.bits.data() + c * w.row_words; };
  std::vector<uint8_t> done(n, 0);
  std::vector<uint32_t> key(n);
  std::vector<int32_t> via(n);
  std::vector<uint8_t> flip(n);
  for (size_t g = 0; g < w.groups; ++g) {
    const size_t c0 = g * ocg, c1 = c0 + ocg;
    for (size_t c = c0; c < c1; ++c) key[c] = static_cast<uint32_t>(k), via[c] = -1, flip[c] = 0;
    for (size_t step = c0; step < c1; ++step) {
      // The cheapest channel not yet in the tree; ties go to the shallower attachment.
      size_t v = SIZE_MAX;
      for (size_t c = c0; c < c1; ++c) {
        if (done[c]) continue;
        if (v == SIZE_MAX || key[c] < key[v] ||
            (key[c] == key[v] && (via[c] < 0 ? 0 : s->depth[via[c]] + 1) < (via[v] < 0 ? 0 : s->depth[via[v]] + 1)))
          v = c;
      }
      done[v] = 1;
      s->parent[v] = via[v];
      s->negate[v] = flip[v];
      s->cost[v] = key[v];
      s->depth[v] = via[v] < 0 ? 0 : s->depth[via[v]] + 1;
      if (s->depth[v] >= options.max_depth) continue;  // v may not become a parent
      for (size_t c = c0; c < c1; ++c) {
        if (done[c]) continue;
        const uint32_t d = hamming(row(v), row(c), w.row_words);
        const bool neg = options.allow_negation && k - d < d;
        const uint32_t cost = neg ? static_cast<uint32_t>(k - d) : d;
        if (cost < key[c] || (cost == key[c] && via[c] >= 0 && s->depth[v] < s->depth[via[c]])) {
          key[c] = cost, via[c] = static_cast<int32_t>(v), flip[c] = neg;
        }
      }
    }
  }
  // Order: by depth (a parent is one level above its children), channel index within a level.
  s->order.resize(n);
  for (size_t c = 0; c < n; ++c) s->order[c] = static_cast<int32_t>(c);
  std::stable_sort(s->order.begin(), s->order.end(), [&](int32_t a, int32_t b) { return s->depth[a] < s->depth[b]; });
  finish_stats(*s);
  return s;
}

void validate_mst(const MstSchedule& s, const BinaryConv2dWeights& w) {
  const size_t n = w.out_channels;
  if (s.channels != n || s.kbits != w.kbits || s.groups != w.groups)
    fail(ErrorKind::Shape, "mst schedule: built for " + num(s.channels) + " channels of " + num(s.kbits) + " bits in " +
                               num(s.groups) + " groups, the weights have " + num(n) + " of " + num(w.kbits) + " in " +
                               num(w.groups));
  if (s.order.size() != n || s.parent.size() != n || s.negate.size() != n || s.depth.size() != n || s.cost.size() != n)
    fail(ErrorKind::Shape, "mst schedule: every per-channel field must hold " + num(n) + " entries");
  std::vector<size_t> position(n, SIZE_MAX);
  for (size_t i = 0; i < n; ++i) {
    const int32_t c = s.order[i];
    if (c < 0 || static_cast<size_t>(c) >= n || position[c] != SIZE_MAX)
      fail(ErrorKind::Range, "mst schedule: order[" + num(i) + "] = " + std::to_string(c) + " is out of range or repeated");
    position[c] = i;
  }
  const size_t ocg = n / w.groups;
  for (size_t c = 0; c < n; ++c) {
    const int32_t p = s.parent[c];
    const std::string at = "mst schedule: channel " + num(c);
    if (s.negate[c] > 1) fail(ErrorKind::Range, at + ": negate must be 0 or 1");
    if (p < 0) {
      if (p != -1 || s.depth[c] != 0 || s.negate[c] || s.cost[c] != w.kbits)
        fail(ErrorKind::Range, at + ": a root has parent -1, depth 0, no negation and cost K");
      continue;
    }
    if (static_cast<size_t>(p) >= n || static_cast<size_t>(p) / ocg != c / ocg)
      fail(ErrorKind::Range, at + ": parent " + std::to_string(p) + " is out of range or in another group");
    // Parents come first in `order`, so following parents always ends at a root: no cycle.
    if (position[p] >= position[c]) fail(ErrorKind::Range, at + ": its parent " + std::to_string(p) + " comes after it in order");
    if (s.depth[c] != s.depth[p] + 1) fail(ErrorKind::Range, at + ": depth must be its parent's + 1");
    const uint32_t d = hamming(w.bits.data() + p * w.row_words, w.bits.data() + c * w.row_words, w.row_words);
    if (s.cost[c] != (s.negate[c] ? w.kbits - d : d))
      fail(ErrorKind::Range, at + ": cost " + num(s.cost[c]) + " does not match the weights");
  }
}

std::vector<uint32_t> mst_positions(const MstSchedule& s, const BinaryConv2dWeights& w, size_t c) {
  std::vector<uint32_t> out;
  if (c >= s.channels || s.parent[c] < 0) return out;
  const uint64_t* a = w.bits.data() + s.parent[c] * w.row_words;
  const uint64_t* b = w.bits.data() + c * w.row_words;
  for (size_t i = 0; i < w.kbits; ++i) {
    const bool differ = ((a[i / 64] ^ b[i / 64]) >> (i % 64)) & 1;
    if (differ != static_cast<bool>(s.negate[c])) out.push_back(static_cast<uint32_t>(i));
  }
  return out;
}

}  // namespace lowbit
