// bconv2d_mst.cc: binary convolution through an MST schedule (see lowbit/mst.h): per tile of 256
// output pixels, im2col the patches, transpose them into bit rows (one weight position for all
// pixels, both polarities), run every channel in schedule order with the ISA's MST channel kernel,
// then hand the int32 results to the same border correction and epilogue as the dense driver.
#include <algorithm>
#include <cmath>
#include <string>

#include "binary/conv_tile.h"
#include "binary/mst_count.h"
#include "common/checked_math.h"
#include "cpu/dispatch.h"
#include "lowbit/aligned_buffer.h"
#include "lowbit/error.h"
#include "lowbit/mst.h"
#include "runtime/thread_pool.h"

namespace lowbit {
namespace {

int bit(const uint64_t* row, size_t k) { return static_cast<int>((row[k / 64] >> (k % 64)) & 1); }

// Byte offset in the tile of row `row` (g * K + k) with polarity `flip` (1: the complement).
uint32_t row_offset(size_t row, int flip) { return static_cast<uint32_t>((2 * row + flip) * kMstRowBytes); }

// One stage of the 64 x 64 bit transpose: swaps the off-diagonal width x width blocks. A constant
// width lets the compiler unroll and vectorise the stage.
template <size_t width>
inline void transpose_stage(uint64_t a[64], uint64_t mask) {
  for (size_t i = 0; i < 64; i += 2 * width)
    for (size_t j = i; j < i + width; ++j) {
      const uint64_t t = ((a[j] >> width) ^ a[j + width]) & mask;
      a[j] ^= t << width;
      a[j + width] ^= t;
    }
}

// Transposes the 64 x 64 bit matrix a in place: bit j of a[i] becomes bit i of a[j].
void transpose64(uint64_t a[64]) {
  transpose_stage<32>(a, 0x00000000FFFFFFFFULL);
  transpose_stage<16>(a, 0x0000FFFF0000FFFFULL);
  transpose_stage<8>(a, 0x00FF00FF00FF00FFULL);
  transpose_stage<4>(a, 0x0F0F0F0F0F0F0F0FULL);
  transpose_stage<2>(a, 0x3333333333333333ULL);
  transpose_stage<1>(a, 0x5555555555555555ULL);
}

// Per-thread scratch, reused across calls.
struct Scratch {
  AlignedBuffer<uint64_t> patches;    // kMstTile x row_words: one group's im2col
  AlignedBuffer<uint64_t> rows;       // plan.rows x 2 polarities x kMstTile bits
  AlignedBuffer<int32_t> by_channel;  // out_c x kMstTile: the MST kernel's results
  AlignedBuffer<int32_t> by_pixel;    // kMstTile x out_c: the layout of the epilogue
};
thread_local Scratch t_scratch;

// The tile's patches of group g (pn rows of row_words words) into transposed rows g * K ... g * K + K - 1.
void transpose_patches(const uint64_t* patches, size_t pn, size_t row_words, size_t kbits, size_t first_row,
                       uint64_t* rows) {
  constexpr size_t kWords = kMstTile / 64;
  uint64_t block[64];
  for (size_t b = 0; b * 64 < pn; ++b) {  // lanes of missing pixels keep old values: their results are unused
    for (size_t w = 0; w < row_words; ++w) {
      for (size_t i = 0; i < 64; ++i) {
        const size_t pixel = b * 64 + i;
        block[i] = pixel < pn ? patches[pixel * row_words + w] : 0;
      }
      transpose64(block);
      for (size_t j = 0; j < 64 && w * 64 + j < kbits; ++j) {
        uint64_t* out = rows + (first_row + w * 64 + j) * 2 * kWords;
        out[b] = block[j];
        out[kWords + b] = ~block[j];
      }
    }
  }
}

void run_tile(const ConvCall& call, const MstPlan& plan, const uint64_t* input, size_t p0, size_t pn, void* output) {
  const BinaryConv2dWeights& w = call.w;
  const size_t oc = w.out_channels;
  Scratch& sc = t_scratch;
  constexpr size_t kRowWords = kMstTile / 64;
  sc.rows.resize((plan.rows + 1) * 2 * kRowWords);
  std::fill_n(sc.rows.data() + plan.rows * 2 * kRowWords, kRowWords, 0);  // the zero row of the padding
  sc.by_channel.resize(oc * kMstTile);
  sc.by_pixel.resize(kMstTile * oc);
  const bool direct = patches_are_input(w, call.p);
  if (!direct) sc.patches.resize(kMstTile * w.row_words);
  for (size_t g = 0; g < w.groups; ++g) {
    const uint64_t* patches = input + p0 * w.row_words;
    if (!direct) {
      im2col_rows(call, input, p0, pn, g, sc.patches.data());
      patches = sc.patches.data();
    }
    transpose_patches(patches, pn, w.row_words, w.kbits, g * w.kbits, sc.rows.data());
  }
  int32_t* y = sc.by_channel.data();
  for (const MstPlan::Step& step : plan.steps)
    call.k.mst_channel(sc.rows.data(), plan.entries.data() + step.first, step.count,
                       step.parent < 0 ? nullptr : y + step.parent * kMstTile, step.sign, step.base, step.shift,
                       y + step.channel * kMstTile);
  // To the epilogue's layout (pixel-major), 16 channels at a time so both sides stay in cache lines.
  int32_t* by_pixel = sc.by_pixel.data();
  for (size_t c0 = 0; c0 < oc; c0 += 16) {
    const size_t c1 = std::min(oc, c0 + 16);
    for (size_t i = 0; i < pn; ++i)
      for (size_t c = c0; c < c1; ++c) by_pixel[i * oc + c] = y[c * kMstTile + i];
  }
  const bool zero_pad = call.p.pad_value == PadValue::Zero;
  for (size_t i = 0; i < pn; ++i) {
    if (zero_pad) correct_zero_padding(call, p0 + i, 0, oc, by_pixel + i * oc);
    epilogue_row(call, by_pixel + i * oc, p0 + i, 0, oc, output);
  }
}

// Costs in nanoseconds, per ISA. AVX2 and scalar: fitted to native/bench/mst_bench and the `mst`
// bench suite on a Zen 3 core; NEON: scaled from instruction counts (unmeasured on hardware).
struct CostConstants {
  double dense_word;  // dense kernel: one output pixel x one channel x one 64-bit weight word
  double row;         // MST: one transposed row added for 256 pixels (the tile mostly in L2)
  double plane;       // MST: one counter plane converted to integers, per channel and tile
  double channel;     // MST: fixed work per channel and tile (combine, layout, epilogue share)
  double block_row;   // MST: im2col + transpose of one weight position for 64 pixels
};

CostConstants cost_constants(Isa isa) {
  switch (isa) {
    case Isa::Avx2:
    case Isa::Avx512:  // runs the avx2 binary kernels
      return {0.16, 1.0, 8.0, 60.0, 6.0};
    case Isa::Neon:
      return {0.5, 2.0, 10.0, 80.0, 8.0};
    default:
      return {0.68, 2.4, 40.0, 80.0, 6.0};
  }
}

}  // namespace

std::shared_ptr<const MstPlan> compile_mst(const MstSchedule& s, const BinaryConv2dWeights& w) {
  validate_mst(s, w);
  const size_t k = w.kbits, ocg = w.out_channels / w.groups;
  const size_t rows = checked_mul(w.groups, k, "mst rows");
  uint64_t total = 0;
  for (uint32_t c : s.cost) total += c;
  if (rows > kMstMaxRows || total > kMstMaxEntries) return nullptr;
  auto plan = std::make_shared<MstPlan>();
  plan->weights = &w;
  plan->rows = rows;
  plan->entries.reserve(total);
  for (int32_t c : s.order) {
    const uint64_t* own = w.bits.data() + size_t(c) * w.row_words;
    const size_t first_row = (size_t(c) / ocg) * k;
    const int32_t parent = s.parent[c];
    MstPlan::Step step{uint32_t(c), parent, 0, int32_t(k), 1, plan->entries.size(), 0};
    if (parent >= 0) {
      const uint64_t* from = w.bits.data() + size_t(parent) * w.row_words;
      step.sign = s.negate[c] ? -1 : 1;
      step.base = 2 * int32_t(s.cost[c]);
      step.shift = 2;
      for (size_t i = 0; i < k; ++i)
        if ((bit(from, i) != bit(own, i)) != static_cast<bool>(s.negate[c]))
          plan->entries.push_back(row_offset(first_row + i, bit(own, i)));
    } else {
      for (size_t i = 0; i < k; ++i) plan->entries.push_back(row_offset(first_row + i, bit(own, i)));
    }
    // Whole blocks of 16 for the carry-save counter: pad with the tile's zero row (after the last
    // real row), which counts nothing but saves the slow one-row-at-a-time tail.
    while ((plan->entries.size() - step.first) % 16 != 0) plan->entries.push_back(row_offset(rows, 0));
    step.count = plan->entries.size() - step.first;
    plan->planes += mst_count::planes_for(step.count);
    plan->steps.push_back(step);
  }
  return plan;
}

MstCost mst_cost(const MstPlan& plan, size_t pixels, size_t threads, Isa isa) {
  const CostConstants k = cost_constants(isa);
  const BinaryConv2dWeights& w = *plan.weights;
  threads = std::max<size_t>(threads, 1);
  MstCost cost;
  // Dense splits pixels and channel chunks over every thread.
  cost.dense = k.dense_word * double(pixels) * double(w.out_channels) * double(w.row_words) / double(threads);
  // The last tile may be partial; its im2col and transpose cover only the 64-pixel blocks it uses.
  const size_t tiles = (pixels + kMstTile - 1) / kMstTile;
  const size_t blocks = (std::min(pixels, kMstTile) + 63) / 64;
  double tile = k.block_row * double(plan.rows) * double(blocks);
  tile += k.row * double(plan.entries.size()) + k.plane * double(plan.planes) + k.channel * double(plan.steps.size());
  cost.mst = tile * double((tiles + threads - 1) / threads);
  cost.use_mst = cost.mst * 1.1 <= cost.dense;
  return cost;
}

void bconv2d_mst(const uint64_t* input, const Conv2dShape& s, const BinaryConv2dWeights& w, const MstPlan& plan,
                 const Conv2dParams& p, const BinaryEpilogue& e, void* output, MstPolicy policy) {
  if (plan.weights != &w) fail(ErrorKind::Shape, "mst: the schedule was compiled for other weights");
  const size_t pixels = s.batch * s.out_h * s.out_w;
  const size_t threads = num_threads();
  if (policy == MstPolicy::Auto && !mst_cost(plan, pixels, threads, active_isa()).use_mst) {
    bconv2d(input, s, w, p, e, output);
    return;
  }
  validate_epilogue(e, s.out_c);
  const Isa isa = active_isa();
  const ConvCall call{s, w, p, e, binary_kernels_for(isa), output_kernels_for(isa)};
  const size_t tiles = (pixels + kMstTile - 1) / kMstTile;
  parallel_for(tiles, [&](size_t t) {
    const size_t p0 = t * kMstTile;
    run_tile(call, plan, input, p0, std::min(kMstTile, pixels - p0), output);
  });
}

void bdense_mst(const uint64_t* input, size_t rows, size_t in_c, const BinaryConv2dWeights& w, const MstPlan& plan,
                const BinaryEpilogue& e, void* output, MstPolicy policy) {
  const Conv2dShape s = bdense_shape(rows, in_c, w);
  bconv2d_mst(input, s, w, plan, Conv2dParams{}, e, output, policy);
}

}  // namespace lowbit
