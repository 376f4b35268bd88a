// mst.h: MST schedules of binary layers (MST-compression, Vo et al., ICCV 2023): an output channel
// is computed from another channel's result plus a correction over only the weight positions where
// the two differ. This is the offline part: distances, the tree, its statistics.
//
// With parent i, child j, M = B[i] XOR B[j] (d = popcount M) and the +-1 dot products y:
//   y_j =  y_i + 2d - 4 popcount((B[j] XOR X) AND M)              (child from parent)
//   y_j = -y_i + 2e - 4 popcount((B[j] XOR X) AND NOT M), e = K - d (child from a negated parent)
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "lowbit/binary.h"
#include "lowbit/runtime.h"

namespace lowbit {

struct MstOptions {
  size_t max_depth = SIZE_MAX;  // a root has depth 0; children at most this deep (>= 1 to allow any)
  bool allow_negation = false;  // let a child hang off the complement of its parent (cost K - d)
};

struct MstSchedule {
  size_t channels = 0, kbits = 0, groups = 1;
  std::vector<int32_t> order;   // every channel once, parents before their children (BFS by depth)
  std::vector<int32_t> parent;  // per channel: -1 for a root (computed densely), else its parent
  std::vector<uint8_t> negate;  // per channel: 1 if computed from the complement of its parent
  std::vector<uint32_t> depth;  // per channel: 0 for a root
  std::vector<uint32_t> cost;   // per channel: bit positions it evaluates (K for a root, d or K - d)
  // Statistics: the sum of the children's costs, the deepest channel, dense bit-ops / MST bit-ops,
  // and dense weight bits / MST weight bits (a root stores K bits; a child its parent index, the
  // negate bit and the smaller of a K-bit mask or an index list of its cost positions).
  uint64_t total_distance = 0;
  size_t max_depth = 0;
  double op_ratio = 1, storage_ratio = 1;
};

// Prim's algorithm over the output channels of each group plus a virtual root at distance K
// (compute from scratch); channels of different groups never attach to each other. Ties prefer the
// shallower parent. O(C^2 * K / 64) word operations.
std::shared_ptr<MstSchedule> build_mst(const BinaryConv2dWeights& w, const MstOptions& options);

// Checks a schedule against its weights: sizes, every parent in range, in the same group, before its
// child in `order`, no cycle, depths and costs consistent. Throws Error(Shape/Range) naming the field.
void validate_mst(const MstSchedule& s, const BinaryConv2dWeights& w);

// The bit positions child c evaluates: where it differs from its parent (or agrees, if negated).
std::vector<uint32_t> mst_positions(const MstSchedule& s, const BinaryConv2dWeights& w, size_t c);

// The file form of a schedule with its compressed weights (little-endian):
//   magic "LBMST" 0 1 0 (format 1), u32 out_channels, kernel_h, kernel_w, in_channels_per_group, groups,
//   then per channel in schedule order: u32 channel, i32 parent, u8 negate, u8 encoding, payload:
//     encoding 0 (root): the channel's packed bits, row_words u64;
//     encoding 1 (child, mask): the positions it evaluates as a K-bit mask, row_words u64;
//     encoding 2 (child, list): u32 count, then count u16 positions (u32 when K > 65536), ascending.
// A child's bits are its parent's, flipped on the listed positions (negated: everywhere else).
std::vector<uint8_t> serialize_mst(const MstSchedule& s, const BinaryConv2dWeights& w);

struct MstLayer {
  std::shared_ptr<BinaryConv2dWeights> weights;
  std::shared_ptr<MstSchedule> schedule;
};
// Reads serialize_mst's form, checking every size, index and enum before use (a parent must be read
// before its child, so there is no cycle), then rebuilds the weights and validates the schedule.
// Throws Error(Shape / Range) naming the field.
MstLayer deserialize_mst(const uint8_t* data, size_t size);

// ---- Running a schedule: bconv2d / bdense through the tree ------------------------------------------
//
// The pixel-packed (bit-transposed) formulation: the patch bits of a tile of kMstTile (256) output
// pixels are transposed so that one row holds one weight position for all the tile's pixels. A root
// channel adds its K rows, a child only the d rows where it differs from its parent (K - d where it
// agrees, for a negated parent), into bit-sliced carry-save counters; then
// y_child = +-y_parent + 2d - 4 count. So time follows the op ratio, not the words the differences
// touch. Outputs equal the dense kernel's bit for bit in every padding mode and epilogue: padded taps
// read +1 on both paths, and the zero-padding correction uses each channel's own tap sums afterwards.

// A schedule compiled against its weights: per channel in schedule order, the transposed rows it adds.
struct MstPlan {
  struct Step {
    uint32_t channel;
    int32_t parent;             // -1 for a root
    int32_t sign, base, shift;  // y = base - (count << shift) + sign * y_parent (kernels.h)
    size_t first, count;        // its span of `entries`
  };
  const BinaryConv2dWeights* weights = nullptr;  // the weights it was compiled for (identity only)
  size_t rows = 0;                               // transposed rows of a tile: groups * K, then a zero row
  std::vector<Step> steps;                       // in schedule order: parents first
  std::vector<uint32_t> entries;                 // byte offsets into the tile: row and polarity;
                                                 // each step's padded with the zero row to a multiple of 16
  size_t planes = 0;                             // counter planes over all steps (for the cost model)
};
constexpr size_t kMstMaxRows = size_t{1} << 18;     // 16 MiB of transposed tile per thread
constexpr size_t kMstMaxEntries = size_t{1} << 25;  // 128 MiB of plan

// Validates the schedule against the weights, then compiles it. Returns nullptr where the layer
// exceeds kMstMaxRows or kMstMaxEntries: it then always runs dense.
std::shared_ptr<const MstPlan> compile_mst(const MstSchedule& s, const BinaryConv2dWeights& w);

// The per-layer cost model: predicted time (the same arbitrary unit for both) of one call over
// `pixels` output pixels on `threads` threads with the ISA's kernels, dense and through the tree.
// The MST path parallelises over tiles of 256 pixels only. use_mst: MST predicted at least 10%
// faster, a margin for the model's error, so choosing MST never makes a layer slower.
struct MstCost {
  double dense = 0, mst = 0;
  bool use_mst = false;
};
MstCost mst_cost(const MstPlan& plan, size_t pixels, size_t threads, Isa isa);

enum class MstPolicy {
  Auto,    // the cost model picks dense or MST for each call
  Always,  // through the tree (tests and benchmarks)
};

// bconv2d / bdense (binary.h) with the layer's compiled schedule; same shapes, same outputs.
void bconv2d_mst(const uint64_t* input, const Conv2dShape& shape, const BinaryConv2dWeights& w, const MstPlan& plan,
                 const Conv2dParams& p, const BinaryEpilogue& e, void* output, MstPolicy policy);
void bdense_mst(const uint64_t* input, size_t rows, size_t in_c, const BinaryConv2dWeights& w, const MstPlan& plan,
                const BinaryEpilogue& e, void* output, MstPolicy policy);

}  // namespace lowbit
