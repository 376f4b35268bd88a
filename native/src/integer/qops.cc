// qops.cc: integer element-wise and pooling operators of the dyadic family (see lowbit/qops.h).
// The inner loops are the element-wise kernels of the active ISA (eltwise/kernels.h), exact on
// every ISA, so results never depend on the CPU. qadd's rescales run in 32-bit lanes wherever the
// dyadic shift allows (eltwise/kernels.h proves the form equal); otherwise, and for qconcat, an
// 8-bit input's 256 values make the rescale a table built once per call (exactly the formula,
// applied to each byte value). Average pooling rescales each window sum with the dyadic pair of
// its tap count, through the requantizer of the output kernels.
#include "lowbit/qops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/checked_math.h"
#include "cpu/dispatch.h"
#include "integer/checks.h"
#include "lowbit/binary.h"  // bmaxpool2d_shape: the pools share its geometry rules
#include "lowbit/error.h"
#include "lowbit/quantize.h"
#include "runtime/thread_pool.h"

namespace lowbit {
namespace {

std::string num_real(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

void check_scale(double scale, const std::string& name) {
  if (!std::isfinite(scale) || !(scale > 0))
    fail(ErrorKind::Quantization, name + ".scale: expected a finite number > 0, got " + num_real(scale));
}

void check_input(const QuantParams& q, bool is_signed, const std::string& name) {
  check_scale(q.scale, name);
  const int32_t min = is_signed ? -128 : 0, max = is_signed ? 127 : 255;
  if (q.zero_point < min || q.zero_point > max)
    fail(ErrorKind::Range, name + ".zeroPoint: expected an integer in [" + std::to_string(min) + ", " +
                               std::to_string(max) + "] for " + (is_signed ? "s8" : "u8") + ", got " +
                               std::to_string(q.zero_point));
}

void check_output(const QuantOutput& o) {
  check_scale(o.q.scale, "output");
  check_8bit_clamp(o.lo, o.hi);
  if (o.q.zero_point < o.lo || o.q.zero_point > o.hi)
    fail(ErrorKind::Range, "output.zeroPoint: expected an integer in the clamp [" + std::to_string(o.lo) + ", " +
                               std::to_string(o.hi) + "], got " + std::to_string(o.q.zero_point));
}

// to_dyadic of a ratio, naming it when it has no dyadic form.
Dyadic ratio_dyadic(double ratio, const std::string& what) {
  try {
    return to_dyadic(ratio);
  } catch (const Error&) {
    fail(ErrorKind::Quantization, what + " = " + num_real(ratio) + " has no dyadic form (outside [2^-32, 2^31))");
  }
}

// The shape a caller passes must be the one qpool2d_shape gives for these parameters.
void check_pool_shape(const Conv2dShape& s, const Pool2dParams& p) {
  const Conv2dShape c = qpool2d_shape(s.batch, s.in_h, s.in_w, s.in_c, p);
  if (c.out_h != s.out_h || c.out_w != s.out_w || c.out_c != s.out_c)
    fail(ErrorKind::Shape, "pool: the output shape does not match the pool parameters (use qpool2d_shape)");
}

inline int64_t clamp64(int64_t v, int32_t lo, int32_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

// rs(q - z, m, e) for each of the 256 byte values of an input, indexed by the stored byte.
void rescale_table(bool is_signed, int32_t zero_point, Dyadic d, int64_t* table) {
  for (int byte = 0; byte < 256; ++byte) {
    const int32_t q = is_signed ? static_cast<int8_t>(byte) : byte;
    table[byte] = dyadic_rescale(q - zero_point, d.multiplier, d.shift);
  }
}

// Blocks of 64 Ki values over the pool.
template <typename F>
void for_blocks(size_t n, F f) {
  constexpr size_t kBlock = size_t{1} << 16;
  parallel_for((n + kBlock - 1) / kBlock, [&](size_t b) { f(b * kBlock, std::min(n, (b + 1) * kBlock)); });
}

// Largest window whose sum of (x - z), each in [-255, 255], stays inside int32.
constexpr size_t kMaxWindow = 2147483647 / 255;  // 8421504

void check_window(size_t taps, const char* what) {
  if (taps > kMaxWindow)
    fail(ErrorKind::Range, std::string(what) + ": a window of " + std::to_string(taps) +
                               " taps could overflow the int32 sum (at most " + std::to_string(kMaxWindow) + " taps)");
}

std::string avg_ratio_name(size_t n) { return "input.scale / (output.scale * " + std::to_string(n) + " taps)"; }

}  // namespace

void qadd(const uint8_t* a, bool a_signed, const QuantParams& qa, const uint8_t* b, bool b_signed,
          const QuantParams& qb, size_t n, const QuantOutput& o, uint8_t* out) {
  check_input(qa, a_signed, "a");
  check_input(qb, b_signed, "b");
  check_output(o);
  const Dyadic da = ratio_dyadic(qa.scale / o.q.scale, "a.scale / output.scale");
  const Dyadic db = ratio_dyadic(qb.scale / o.q.scale, "b.scale / output.scale");
  QAddParams p{{}, {}, o.q.zero_point, o.lo, o.hi};
  if (qadd_term_for(a_signed, qa.zero_point, da.multiplier, da.shift, &p.a) &&
      qadd_term_for(b_signed, qb.zero_point, db.multiplier, db.shift, &p.b)) {
    const QAddFn kernel = eltwise_kernels().qadd;
    for_blocks(n, [&](size_t i0, size_t i1) { kernel(i1 - i0, a + i0, b + i0, p, out + i0); });
    return;
  }
  // A ratio of at least 2^21: the rescales in int64.
  int64_t ta[256], tb[256];
  rescale_table(a_signed, qa.zero_point, da, ta);
  rescale_table(b_signed, qb.zero_point, db, tb);
  // The output zero point folds into a's table; |ta| + |tb| < 2^40, no overflow.
  for (int64_t& v : ta) v += o.q.zero_point;
  const int32_t lo = o.lo, hi = o.hi;
  for_blocks(n, [&](size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; ++i) out[i] = static_cast<uint8_t>(clamp64(ta[a[i]] + tb[b[i]], lo, hi));
  });
}

void qclamp(const uint8_t* x, bool is_signed, size_t n, int32_t lo, int32_t hi, uint8_t* out) {
  const int32_t min = is_signed ? -128 : 0, max = is_signed ? 127 : 255;
  if (lo > hi || lo < min || hi > max)
    fail(ErrorKind::Range, "clamp [" + std::to_string(lo) + ", " + std::to_string(hi) +
                               "] must have lo <= hi inside [" + std::to_string(min) + ", " + std::to_string(max) +
                               "] (" + (is_signed ? "s8" : "u8") + ")");
  const Clamp8Fn clamp8 = eltwise_kernels().clamp8;
  for_blocks(n, [&](size_t i0, size_t i1) { clamp8(i1 - i0, x + i0, is_signed, lo, hi, out + i0); });
}

Conv2dShape qpool2d_shape(size_t batch, size_t in_h, size_t in_w, size_t channels, const Pool2dParams& p) {
  // The geometry rules (and messages) of bmaxpool2d; then the 8-bit sizes.
  const Conv2dShape s = bmaxpool2d_shape(batch, in_h, in_w, channels, p);
  checked_mul(checked_mul(checked_mul(batch, in_h, "input size"), in_w, "input size"), channels, "input size");
  checked_mul(checked_mul(checked_mul(batch, s.out_h, "output size"), s.out_w, "output size"), channels, "output size");
  return s;
}

namespace {

// The in-image rows [y0, y1) of output row oh (never empty: each pad < the kernel).
inline void window(size_t o, size_t stride, size_t pad, size_t kernel, size_t in, size_t& a, size_t& b) {
  a = o * stride < pad ? 0 : o * stride - pad;
  b = std::min(in, o * stride + kernel - pad);
}

// Calls f(taps, count) with the addresses of the window's in-image taps [y0, y1) x [x0, x1) of
// `image` (rows of row_stride bytes, pixels of pixel_stride), at most kTapChunk at a time.
constexpr size_t kTapChunk = 64;
template <typename F>
void for_tap_chunks(const uint8_t* image, size_t row_stride, size_t pixel_stride, size_t y0, size_t y1, size_t x0,
                    size_t x1, F f) {
  const uint8_t* taps[kTapChunk];
  size_t count = 0;
  for (size_t iy = y0; iy < y1; ++iy)
    for (size_t ix = x0; ix < x1; ++ix) {
      taps[count++] = image + iy * row_stride + ix * pixel_stride;
      if (count == kTapChunk) {
        f(taps, count);
        count = 0;
      }
    }
  if (count != 0) f(taps, count);
}

void maxpool(const uint8_t* x, bool is_signed, const Conv2dShape& s, const Pool2dParams& p, uint8_t* out) {
  const MaxTaps8Fn max_taps8 = eltwise_kernels().max_taps8;
  const size_t c = s.in_c;
  parallel_for(s.batch * s.out_h, [&](size_t row) {
    const size_t n = row / s.out_h, oh = row % s.out_h;
    const uint8_t* image = x + n * s.in_h * s.in_w * c;
    size_t y0, y1;
    window(oh, p.stride_h, p.pad_top, p.kernel_h, s.in_h, y0, y1);
    for (size_t ow = 0; ow < s.out_w; ++ow) {
      size_t x0, x1;
      window(ow, p.stride_w, p.pad_left, p.kernel_w, s.in_w, x0, x1);
      uint8_t* dst = out + (row * s.out_w + ow) * c;
      std::memcpy(dst, image + (y0 * s.in_w + x0) * c, c);
      for_tap_chunks(image, s.in_w * c, c, y0, y1, x0, x1,
                     [&](const uint8_t* const* taps, size_t count) { max_taps8(c, taps, count, is_signed, dst); });
    }
  });
}

// Sums the window's (x - zi) per channel into acc[0, count), over the in-image taps [y0, y1) x
// [x0, x1); x points at the first channel of the block in the image's first pixel.
void window_sum(SumTaps8Fn sum_taps8, const uint8_t* x, size_t row_stride, size_t c, size_t count, size_t y0, size_t y1,
                size_t x0, size_t x1, UnsignedReading in, int32_t* acc) {
  std::fill(acc, acc + count, 0);
  for_tap_chunks(x, row_stride, c, y0, y1, x0, x1,
                 [&](const uint8_t* const* taps, size_t n) { sum_taps8(count, taps, n, in.mask, acc); });
  // sum(x - zi) = sum(u) - taps * zero, both inside int32 (taps <= kMaxWindow, u and zero <= 255).
  const int32_t offset = static_cast<int32_t>((y1 - y0) * (x1 - x0)) * in.zero;
  for (size_t k = 0; k < count; ++k) acc[k] -= offset;
}

// clamp(rs(acc, m, e) + zo, lo, hi) of `width` (at most N) sums at a time: the output kernels'
// requantizer with the one dyadic pair broadcast (filled again only when the pair changes).
template <size_t N>
class SumRescaler {
 public:
  SumRescaler(const OutputS8Fn output_s8, const QuantOutput& o, size_t width)
      : output_s8_(output_s8), lo_(o.lo), hi_(o.hi), width_(width) {
    std::fill(bias_, bias_ + width, o.q.zero_point);
  }
  void operator()(const int32_t* acc, Dyadic d, uint8_t* dst) {
    if (d.multiplier != current_.multiplier || d.shift != current_.shift) {
      std::fill(mult_, mult_ + width_, d.multiplier);
      std::fill(shift_, shift_ + width_, static_cast<uint8_t>(d.shift));
      current_ = d;
    }
    output_s8_(1, width_, acc, width_, RequantizeParams{mult_, shift_, bias_, lo_, hi_}, reinterpret_cast<int8_t*>(dst),
               width_);
  }

 private:
  OutputS8Fn output_s8_;
  int32_t lo_, hi_;
  size_t width_;
  Dyadic current_{0, -1};
  int32_t mult_[N], bias_[N];
  uint8_t shift_[N];
};

void avgpool(const uint8_t* x, bool is_signed, const Conv2dShape& s, const Pool2dParams& p,
             const std::vector<Dyadic>& dy_rows, const std::vector<size_t>& class_h, const std::vector<size_t>& class_w,
             size_t classes_w, int32_t zi, const QuantOutput& o, uint8_t* out) {
  const SumTaps8Fn sum_taps8 = eltwise_kernels().sum_taps8;
  const OutputS8Fn output_s8 = output_kernels().output_s8;
  const UnsignedReading in = unsigned_reading(is_signed, zi);
  const size_t c = s.in_c;
  // Channel blocks keep the accumulators in L1 and give the pool work when N * OH is small.
  constexpr size_t kCBlock = 512;
  const size_t cblocks = (c + kCBlock - 1) / kCBlock;
  parallel_for(s.batch * s.out_h * cblocks, [&](size_t task) {
    const size_t row = task / cblocks, cb = task % cblocks;
    const size_t c0 = cb * kCBlock, c1 = std::min(c, c0 + kCBlock);
    const size_t n = row / s.out_h, oh = row % s.out_h;
    int32_t acc[kCBlock];
    SumRescaler<kCBlock> rescale(output_s8, o, c1 - c0);
    size_t y0, y1;
    window(oh, p.stride_h, p.pad_top, p.kernel_h, s.in_h, y0, y1);
    const uint8_t* image = x + n * s.in_h * s.in_w * c + c0;
    for (size_t ow = 0; ow < s.out_w; ++ow) {
      size_t x0, x1;
      window(ow, p.stride_w, p.pad_left, p.kernel_w, s.in_w, x0, x1);
      window_sum(sum_taps8, image, s.in_w * c, c, c1 - c0, y0, y1, x0, x1, in, acc);
      rescale(acc, dy_rows[class_h[oh] * classes_w + class_w[ow]], out + (row * s.out_w + ow) * c + c0);
    }
  });
}

// The in-image tap counts of each output position along one axis, as indices into a list of
// distinct counts (`counts`).
void axis_classes(size_t out, size_t stride, size_t pad, size_t kernel, size_t in, bool include_pad,
                  std::vector<size_t>& classes, std::vector<size_t>& counts) {
  classes.resize(out);
  for (size_t o = 0; o < out; ++o) {
    size_t a, b;
    window(o, stride, pad, kernel, in, a, b);
    const size_t count = include_pad ? kernel : b - a;
    auto it = std::find(counts.begin(), counts.end(), count);
    if (it == counts.end()) it = counts.insert(counts.end(), count);
    classes[o] = static_cast<size_t>(it - counts.begin());
  }
}

}  // namespace

void qmaxpool2d(const uint8_t* x, bool is_signed, const Conv2dShape& s, const Pool2dParams& p, uint8_t* out) {
  check_pool_shape(s, p);
  maxpool(x, is_signed, s, p, out);
}

namespace {

// The dyadic pair of each window class of an average pool (see avgpool), validating every argument.
struct AvgPoolPlan {
  std::vector<size_t> class_h, class_w;
  size_t classes_w = 0;
  std::vector<Dyadic> table;
};

AvgPoolPlan plan_avgpool(const Conv2dShape& s, const Pool2dParams& p, bool count_include_pad, bool is_signed,
                         const QuantParams& in_q, const QuantOutput& o) {
  check_pool_shape(s, p);
  check_input(in_q, is_signed, "input");
  check_output(o);
  check_window(checked_mul(p.kernel_h, p.kernel_w, "kernel size"), "kernel");
  // Distinct tap counts per axis; a window's count is their product. One dyadic pair per
  // distinct product, computed once.
  AvgPoolPlan plan;
  std::vector<size_t> counts_h, counts_w;
  axis_classes(s.out_h, p.stride_h, p.pad_top, p.kernel_h, s.in_h, count_include_pad, plan.class_h, counts_h);
  axis_classes(s.out_w, p.stride_w, p.pad_left, p.kernel_w, s.in_w, count_include_pad, plan.class_w, counts_w);
  plan.classes_w = counts_w.size();
  std::map<size_t, Dyadic> by_count;
  plan.table.resize(counts_h.size() * counts_w.size());
  for (size_t i = 0; i < counts_h.size(); ++i)
    for (size_t j = 0; j < counts_w.size(); ++j) {
      const size_t n = counts_h[i] * counts_w[j];
      auto it = by_count.find(n);
      if (it == by_count.end())
        it = by_count.emplace(n, ratio_dyadic(in_q.scale / (o.q.scale * static_cast<double>(n)), avg_ratio_name(n)))
                 .first;
      plan.table[i * counts_w.size() + j] = it->second;
    }
  return plan;
}

// The one dyadic pair of a global average pool over taps = H * W, validating every argument.
Dyadic plan_globalavgpool(bool is_signed, size_t batch, size_t in_h, size_t in_w, size_t channels,
                          const QuantParams& in_q, const QuantOutput& o) {
  if (batch == 0 || in_h == 0 || in_w == 0 || channels == 0)
    fail(ErrorKind::Shape, "input: every dimension of [N, H, W, C] must be at least 1");
  const size_t taps = checked_mul(in_h, in_w, "input size");
  checked_mul(checked_mul(batch, taps, "input size"), channels, "input size");
  check_input(in_q, is_signed, "input");
  check_output(o);
  check_window(taps, "input");
  return ratio_dyadic(in_q.scale / (o.q.scale * static_cast<double>(taps)), avg_ratio_name(taps));
}

}  // namespace

void validate_qavgpool2d(bool is_signed, const Conv2dShape& s, const Pool2dParams& p, bool count_include_pad,
                         const QuantParams& in_q, const QuantOutput& out_q) {
  plan_avgpool(s, p, count_include_pad, is_signed, in_q, out_q);
}

void qavgpool2d(const uint8_t* x, bool is_signed, const Conv2dShape& s, const Pool2dParams& p, bool count_include_pad,
                const QuantParams& in_q, const QuantOutput& o, uint8_t* out) {
  const AvgPoolPlan plan = plan_avgpool(s, p, count_include_pad, is_signed, in_q, o);
  avgpool(x, is_signed, s, p, plan.table, plan.class_h, plan.class_w, plan.classes_w, in_q.zero_point, o, out);
}

void validate_qglobalavgpool(bool is_signed, size_t in_h, size_t in_w, size_t channels, const QuantParams& in_q,
                             const QuantOutput& out_q) {
  plan_globalavgpool(is_signed, 1, in_h, in_w, channels, in_q, out_q);
}

void qglobalavgpool(const uint8_t* x, bool is_signed, size_t batch, size_t in_h, size_t in_w, size_t channels,
                    const QuantParams& in_q, const QuantOutput& o, uint8_t* out) {
  const Dyadic d = plan_globalavgpool(is_signed, batch, in_h, in_w, channels, in_q, o);
  const size_t taps = in_h * in_w;
  constexpr size_t kCBlock = 64;
  const size_t cblocks = (channels + kCBlock - 1) / kCBlock;
  const SumTaps8Fn sum_taps8 = eltwise_kernels().sum_taps8;
  const OutputS8Fn output_s8 = output_kernels().output_s8;
  const UnsignedReading in = unsigned_reading(is_signed, in_q.zero_point);
  parallel_for(batch * cblocks, [&](size_t task) {
    const size_t n = task / cblocks, c0 = (task % cblocks) * kCBlock, c1 = std::min(channels, c0 + kCBlock);
    int32_t acc[kCBlock];
    window_sum(sum_taps8, x + n * taps * channels + c0, in_w * channels, channels, c1 - c0, 0, in_h, 0, in_w, in, acc);
    SumRescaler<kCBlock> rescale(output_s8, o, c1 - c0);
    rescale(acc, d, out + n * channels + c0);
  });
}

void qconcat(const QConcatInput* inputs, size_t count, size_t outer, size_t inner, const QuantOutput& o, uint8_t* out) {
  if (count == 0) fail(ErrorKind::Shape, "inputs: expected at least one tensor");
  check_output(o);
  // Per input: the byte -> byte table of clamp(rs(x - zi, mi, ei) + zo), and whether it is the identity.
  std::vector<uint8_t> tables(count * 256);
  std::vector<char> identity(count);
  std::vector<size_t> row_bytes(count), offset(count);
  size_t out_row = 0;
  for (size_t i = 0; i < count; ++i) {
    const QConcatInput& in = inputs[i];
    const std::string name = "inputs[" + std::to_string(i) + "]";
    check_input(in.q, in.is_signed, name);
    const Dyadic d = ratio_dyadic(in.q.scale / o.q.scale, name + ".scale / output.scale");
    int64_t t[256];
    rescale_table(in.is_signed, in.q.zero_point, d, t);
    bool same = true;
    for (int byte = 0; byte < 256; ++byte) {
      const uint8_t v = static_cast<uint8_t>(clamp64(t[byte] + o.q.zero_point, o.lo, o.hi));
      tables[i * 256 + byte] = v;
      same = same && v == byte;
    }
    identity[i] = same;
    row_bytes[i] = checked_mul(in.axis_size, inner, "input row");
    offset[i] = out_row;
    out_row = checked_add(out_row, row_bytes[i], "output row");
  }
  checked_mul(outer, out_row, "output size");
  // Rows in blocks of about 64 Ki output bytes.
  const size_t block = std::max<size_t>(1, (size_t{1} << 16) / std::max<size_t>(out_row, 1));
  parallel_for((outer + block - 1) / block, [&](size_t b) {
    for (size_t r = b * block; r < std::min(outer, (b + 1) * block); ++r)
      for (size_t i = 0; i < count; ++i) {
        const size_t len = row_bytes[i];
        const uint8_t* src = inputs[i].data + r * len;
        uint8_t* dst = out + r * out_row + offset[i];
        if (identity[i]) {
          if (len != 0) std::memcpy(dst, src, len);
        } else {
          const uint8_t* t = &tables[i * 256];
          for (size_t k = 0; k < len; ++k) dst[k] = t[src[k]];
        }
      }
  });
}

}  // namespace lowbit
