// conv_tile.h: the per-pixel steps shared by the binary conv drivers (dense bconv2d.cc and MST
// bconv2d_mst.cc): im2col of one output pixel, the zero-padding border correction, the epilogue.
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "binary/kernels.h"
#include "epilogue/kernels.h"
#include "lowbit/binary.h"

namespace lowbit {

// One validated call: the geometry, weights, epilogue and the kernel tables it runs with (both of
// one ISA).
struct ConvCall {
  const Conv2dShape& s;
  const BinaryConv2dWeights& w;
  const Conv2dParams& p;
  const BinaryEpilogue& e;
  const BinaryKernels& k;
  const OutputKernels& out;
};

// 1x1, stride 1, no padding, one group: the input's pixel rows are the patch rows themselves.
inline bool patches_are_input(const BinaryConv2dWeights& w, const Conv2dParams& p) {
  return w.kernel_h == 1 && w.kernel_w == 1 && w.groups == 1 && p.stride_h == 1 && p.stride_w == 1 &&
         p.pad_top + p.pad_left + p.pad_bottom + p.pad_right == 0;
}

// Fills the dense patch rows (w.row_words words each) of output pixels [p0, p0 + pn) for group g.
// Padded taps stay 0 bits (+1).
void im2col_rows(const ConvCall& call, const uint64_t* input, size_t p0, size_t pn, size_t g, uint64_t* rows);

// Small-channel layers (in_channels_per_group not a multiple of 64, e.g. 16 or 32): im2col_rows
// copies each tap's few bits on its own, which cost more than the GEMM. Instead the input is
// repacked once per call into row streams: per padded image row (pad_top + in_h + pad_bottom of
// them per image) and group, the icg bits of the row's pad_left + in_w + pad_right pixels back to
// back, padding 0 bits, then a spare word. The kernel_w taps of one kernel row are then one run of
// kernel_w * icg bits, the layout of the weight row, at a bit offset that steps evenly from pixel to pixel.
inline bool use_row_streams(const BinaryConv2dWeights& w) { return w.in_channels_per_group % 64 != 0; }
// Words of one stream (one padded row of one group), and the number of padded rows.
size_t row_stream_words(const ConvCall& call);
size_t row_stream_rows(const ConvCall& call);
// Fills the streams of padded rows [row0, row0 + rows) (row = n * padded_h + py), every group's
// stream of a row after the other: streams + (row * groups + g) * row_stream_words.
void build_row_streams(const ConvCall& call, const uint64_t* input, size_t row0, size_t rows, uint64_t* streams);
// The patch rows (as im2col_rows') of output pixels [p0, p0 + pn) from the row streams: kernel_h runs
// per pixel (kernel_h * kernel_w taps where the dilation along w is not 1). `rows` holds
// pn * row_words words and one spare word after them (wide stores may spill into it).
void im2col_from_streams(const ConvCall& call, const uint64_t* streams, size_t p0, size_t pn, size_t g, uint64_t* rows);

// Zero padding: a padded tap was computed as +1, so remove its contribution from channels
// [c0, c1): y[c - c0] -= sum of that tap's +-1 weights.
void correct_zero_padding(const ConvCall& call, size_t pixel, size_t c0, size_t c1, int32_t* y);

// Zero padding for a whole call: a pixel's padded taps depend only on which kernel rows fall
// outside the image (its row's class) and which kernel columns (its column's class), so the
// correction of each pair of classes is summed once per call, and a border pixel costs one
// vector subtraction instead of a walk over its window.
class ZeroPadCorrections {
 public:
  void build(const ConvCall& call);
  // As correct_zero_padding, for the call given to build(), on pixels [p0, p0 + pn), pixel p0 + i's
  // values at y + i * ldy. The position steps along the tile: no division per pixel.
  void apply(size_t p0, size_t pn, size_t c0, size_t c1, int32_t* y, size_t ldy) const {
    size_t ow = p0 % out_w_, oh = (p0 / out_w_) % out_h_;
    for (size_t i = 0; i < pn; ++i, y += ldy) {
      const size_t k = row_class_[oh] * col_classes_ + col_class_[ow];
      if (k != 0) {  // class 0: the window is inside the image
        const int32_t* sums = sums_.data() + k * out_c_;
        for (size_t c = c0; c < c1; ++c) y[c - c0] -= sums[c];
      }
      if (++ow == out_w_) {
        ow = 0;
        if (++oh == out_h_) oh = 0;
      }
    }
  }

 private:
  size_t out_h_ = 0, out_w_ = 0, out_c_ = 0, col_classes_ = 0;
  std::vector<uint32_t> row_class_, col_class_;                     // per output row / column; class 0: nothing outside
  std::vector<std::pair<size_t, size_t>> row_ranges_, col_ranges_;  // each class's kernel taps inside
  std::vector<int32_t> sums_;                                       // [row class][column class][out_c]
};

// The fused epilogue of channels [c0, c0 + n) of one output pixel (c0 a multiple of 64 for b1).
void epilogue_row(const ConvCall& call, const int32_t* y, size_t pixel, size_t c0, size_t n, void* output);
// The same for pixels [p0, p0 + pn), pixel p0 + i's values at y + i * ldy.
void epilogue_rows(const ConvCall& call, const int32_t* y, size_t ldy, size_t p0, size_t pn, size_t c0, size_t n,
                   void* output);

}  // namespace lowbit
