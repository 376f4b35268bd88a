// memory_plan.cc: greedy by size, first fit among the placed buffers that are alive at the same time.
#include "graph/memory_plan.h"

#include <algorithm>
#include <numeric>

#include "common/checked_math.h"

namespace lowbit {

Placement place_buffers(const std::vector<PlanBuffer>& buffers) {
  const size_t n = buffers.size();
  Placement out;
  out.offsets.assign(n, 0);
  std::vector<size_t> size(n);
  for (size_t i = 0; i < n; ++i) {
    size[i] = checked_add(buffers[i].bytes, kArenaAlign - 1, "arena size") / kArenaAlign * kArenaAlign;
    out.total_bytes = checked_add(out.total_bytes, size[i], "arena size");
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return size[a] > size[b]; });
  std::vector<size_t> placed;                   // indices, in placement order
  std::vector<std::pair<size_t, size_t>> busy;  // [offset, end) of the conflicting placed buffers
  for (size_t i : order) {
    busy.clear();
    for (size_t j : placed)
      if (buffers[j].first <= buffers[i].last && buffers[i].first <= buffers[j].last)
        busy.emplace_back(out.offsets[j], out.offsets[j] + size[j]);
    std::sort(busy.begin(), busy.end());
    size_t offset = 0;
    for (const auto& [lo, hi] : busy) {
      if (lo >= offset && lo - offset >= size[i]) break;  // fits in the gap below this one
      offset = std::max(offset, hi);
    }
    out.offsets[i] = offset;
    out.arena_bytes = std::max(out.arena_bytes, offset + size[i]);  // <= total_bytes: no overflow
    placed.push_back(i);
  }
  return out;
}

}  // namespace lowbit
