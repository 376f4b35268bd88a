// memory_plan.h: places the activation buffers of a run in one arena. Buffers whose lifetimes
// (in node steps) overlap get disjoint bytes; the others may share.
#pragma once
#include <cstddef>
#include <vector>

namespace lowbit {

constexpr size_t kArenaAlign = 64;

struct PlanBuffer {
  size_t first = 0, last = 0;  // the node steps that write it first and read it last, inclusive
  size_t bytes = 0;
};

struct Placement {
  std::vector<size_t> offsets;  // per buffer, multiples of kArenaAlign
  size_t arena_bytes = 0;       // the end of the highest buffer
  size_t total_bytes = 0;       // the sum of the (aligned) buffer sizes: the arena without sharing
};

// Greedy: the largest buffers first, each at the lowest offset (kArenaAlign-aligned) where it
// overlaps no placed buffer whose lifetime meets its own. Throws Error(Range) on size overflow.
Placement place_buffers(const std::vector<PlanBuffer>& buffers);

}  // namespace lowbit
