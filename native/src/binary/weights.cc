// weights.cc: packing binary conv/dense weights and the per-tap sums the zero-padding
// correction needs.
#include "binary/weights.h"

#include <algorithm>
#include <string>

#include "binary/bit_copy.h"
#include "common/checked_math.h"
#include "cpu/dispatch.h"
#include "lowbit/binary.h"
#include "lowbit/error.h"
#include "runtime/thread_pool.h"

namespace lowbit {

size_t b1_words(size_t channels) { return words_for_bits(channels); }

// Bounds the per-thread patch scratch (a few rows of this many bits) and keeps |y| far below 2^31.
constexpr size_t kMaxKbits = size_t{1} << 24;

std::shared_ptr<BinaryConv2dWeights> empty_binary_weights(size_t out_c, size_t kh, size_t kw, size_t icg,
                                                          size_t groups) {
  if (out_c == 0 || kh == 0 || kw == 0 || icg == 0 || groups == 0)
    fail(ErrorKind::Shape, "weights: every dimension must be at least 1 (O=" + std::to_string(out_c) +
                               ", H=" + std::to_string(kh) + ", W=" + std::to_string(kw) +
                               ", I=" + std::to_string(icg) + ", groups=" + std::to_string(groups) + ")");
  if (out_c % groups != 0)
    fail(ErrorKind::Shape, "weights: output channels (" + std::to_string(out_c) + ") must be a multiple of groups (" +
                               std::to_string(groups) + ")");
  auto w = std::make_shared<BinaryConv2dWeights>();
  w->out_channels = out_c;
  w->kernel_h = kh;
  w->kernel_w = kw;
  w->in_channels_per_group = icg;
  w->groups = groups;
  w->kbits = checked_mul(checked_mul(kh, kw, "kernel size"), icg, "weight bits per channel");
  if (w->kbits > kMaxKbits)
    fail(ErrorKind::Range, "weights: kh*kw*I = " + std::to_string(w->kbits) +
                               " bits per output channel exceeds the limit of " + std::to_string(kMaxKbits));
  w->row_words = words_for_bits(w->kbits);
  w->bits.assign(checked_mul(out_c, w->row_words, "packed weight size"), 0);
  w->tap_sums.assign(checked_mul(w->taps(), out_c, "tap sums"), 0);
  return w;
}

void compute_tap_sums(BinaryConv2dWeights& w) {
  const size_t icg = w.in_channels_per_group;
  for (size_t o = 0; o < w.out_channels; ++o)
    for (size_t t = 0; t < w.taps(); ++t)
      w.tap_sums[t * w.out_channels + o] =
          static_cast<int32_t>(icg) - 2 * count_bits(w.bits.data() + o * w.row_words, t * icg, icg);
}

std::shared_ptr<BinaryConv2dWeights> binary_weights_from_bits(std::vector<uint64_t> bits, size_t out_c, size_t kh,
                                                              size_t kw, size_t icg, size_t groups) {
  auto w = empty_binary_weights(out_c, kh, kw, icg, groups);
  if (bits.size() != w->bits.size())
    fail(ErrorKind::Shape, "weights: expected " + std::to_string(w->bits.size()) + " words (" + std::to_string(out_c) +
                               " rows of " + std::to_string(w->row_words) + "), got " + std::to_string(bits.size()));
  const uint64_t tail = w->kbits % 64 ? ~((uint64_t{1} << (w->kbits % 64)) - 1) : 0;
  for (size_t o = 0; o < out_c; ++o)
    if (bits[o * w->row_words + w->row_words - 1] & tail)
      fail(ErrorKind::Range, "weights: output channel " + std::to_string(o) +
                                 " has bits set beyond K = " + std::to_string(w->kbits) + " (tail bits must be zero)");
  w->bits = std::move(bits);
  compute_tap_sums(*w);
  return w;
}

namespace {

template <typename T>
std::shared_ptr<BinaryConv2dWeights> pack_weights(const T* ohwi, size_t out_c, size_t kh, size_t kw, size_t icg,
                                                  size_t groups, void (*pack)(const T*, size_t, size_t, uint64_t*)) {
  auto w = empty_binary_weights(out_c, kh, kw, icg, groups);
  const size_t taps = w->taps();
  std::vector<uint64_t> tap(words_for_bits(icg));
  for (size_t o = 0; o < out_c; ++o)
    for (size_t t = 0; t < taps; ++t) {
      pack(ohwi + (o * taps + t) * icg, 1, icg, tap.data());
      or_bits(tap.data(), 0, w->bits.data() + o * w->row_words, t * icg, icg);
    }
  compute_tap_sums(*w);
  return w;
}

}  // namespace

std::shared_ptr<BinaryConv2dWeights> pack_binary_conv2d_weights_f32(const float* ohwi, size_t out_c, size_t kh,
                                                                    size_t kw, size_t icg, size_t groups) {
  return pack_weights(ohwi, out_c, kh, kw, icg, groups, binary_kernels().pack_f32);
}

std::shared_ptr<BinaryConv2dWeights> pack_binary_conv2d_weights_s8(const int8_t* ohwi, size_t out_c, size_t kh,
                                                                   size_t kw, size_t icg, size_t groups) {
  return pack_weights(ohwi, out_c, kh, kw, icg, groups, binary_kernels().pack_s8);
}

namespace {
// Large tensors are split into row blocks over the pool; packing is memory bound, so blocks are big.
template <typename T>
void bitpack_rows(const T* src, size_t rows, size_t channels, uint64_t* dst,
                  void (*pack)(const T*, size_t, size_t, uint64_t*)) {
  const size_t block = std::max<size_t>(1, (size_t{1} << 16) / std::max<size_t>(channels, 1));
  const size_t blocks = (rows + block - 1) / block;
  const size_t words = b1_words(channels);
  parallel_for(blocks, [&](size_t b) {
    const size_t r0 = b * block, n = std::min(block, rows - r0);
    pack(src + r0 * channels, n, channels, dst + r0 * words);
  });
}
}  // namespace

void bitpack_f32(const float* src, size_t rows, size_t channels, uint64_t* dst) {
  bitpack_rows(src, rows, channels, dst, binary_kernels().pack_f32);
}

void bitpack_s8(const int8_t* src, size_t rows, size_t channels, uint64_t* dst) {
  bitpack_rows(src, rows, channels, dst, binary_kernels().pack_s8);
}

}  // namespace lowbit
