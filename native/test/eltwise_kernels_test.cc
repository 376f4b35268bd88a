// eltwise_kernels_test.cc: every supported ISA's element-wise kernels (eltwise/kernels.h) against
// lowbit::ref, bit for bit, on lengths around the vector widths, every mask and extreme
// parameters, with sentinels past the output; and qadd's 32-bit form against the int64 rescale,
// exhaustively over the 8-bit differences.
#include <cmath>
#include <cstring>
#include <limits>

#include "common/checked_math.h"
#include "cpu/dispatch.h"
#include "eltwise/kernels.h"
#include "harness.h"
#include "lowbit/quantize.h"

using namespace lowbit;
using lowbit::test::rng;

namespace {

// Lengths: every one around the vector widths (16, 32, 64 bytes), then larger ones.
std::vector<size_t> lengths() {
  std::vector<size_t> n;
  for (size_t i = 0; i <= 70; ++i) n.push_back(i);
  for (size_t i : {95, 96, 97, 100, 127, 128, 129, 255, 1000, 4099}) n.push_back(i);
  return n;
}

// memcmp == 0, also for empty vectors (whose data() may be null).
bool same_bytes(const void* a, const void* b, size_t bytes) { return bytes == 0 || std::memcmp(a, b, bytes) == 0; }

std::vector<uint8_t> random_bytes(std::mt19937_64& g, size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& x : v) x = static_cast<uint8_t>(g());
  return v;
}

// A clamp range of one of the 8-bit dtypes (s8, u8, s4, u4, or a narrower random one) as
// lo, hi in the stored reading, and whether it is signed.
void random_range(std::mt19937_64& g, bool& is_signed, int32_t& lo, int32_t& hi) {
  is_signed = g() % 2;
  const int32_t min = is_signed ? -128 : 0, max = is_signed ? 127 : 255;
  switch (g() % 4) {
    case 0:
      lo = min, hi = max;
      break;
    case 1:
      lo = is_signed ? -8 : 0, hi = is_signed ? 7 : 15;
      break;
    default:
      lo = min + static_cast<int32_t>(g() % 100), hi = max - static_cast<int32_t>(g() % 100);
  }
}

}  // namespace

TEST(eltwise_rescale32_equals_the_int64_rescale_exhaustively) {
  auto g = rng(201);
  std::vector<int32_t> mults = {
      0, 1, 2, 12345, 1 << 30, (1 << 30) + 1, (1 << 30) + (1 << 29), INT32_MAX, INT32_MAX - 1};
  for (int i = 0; i < 120; ++i) mults.push_back(static_cast<int32_t>(g() % (uint64_t{1} << 31)));
  for (int i = 0; i < 120; ++i) mults.push_back((1 << 30) + static_cast<int32_t>(g() % (uint64_t{1} << 30)));
  for (size_t i = 0, count = mults.size(); i < count; ++i) mults.push_back(-mults[i]);  // prelu's negative slopes
  for (int e = 0; e <= 62; ++e)
    for (int32_t m : mults) {
      int32_t mult, shift;
      const bool ok = rescale32_for(m, e, &mult, &shift);
      CHECK(ok == (e >= 10), "rescale32_for e=" << e);
      if (!ok) continue;
      CHECK(shift >= 1 && shift <= 30 && mult != INT32_MIN, "r32 pair out of contract e=" << e);
      for (int32_t v = -255; v <= 255; ++v) {
        const int64_t want = dyadic_rescale(v, m, e);
        const int32_t got = rescale32(v, mult, shift);
        CHECK(got == want, "m=" << m << " e=" << e << " v=" << v << ": got " << got << " want " << want);
      }
    }
  // qadd's terms read the bytes of both dtypes through the mask.
  for (bool is_signed : {false, true})
    for (int32_t zp : is_signed ? std::vector<int32_t>{-128, 0, 127} : std::vector<int32_t>{0, 128, 255}) {
      QAddTerm t;
      CHECK(qadd_term_for(is_signed, zp, 1234567891, 33, &t), "qadd_term_for");
      for (int x = 0; x < 256; ++x) {
        const int32_t q = is_signed ? static_cast<int8_t>(x) : x;
        CHECK(qadd_term(static_cast<uint8_t>(x), t) == dyadic_rescale(q - zp, 1234567891, 33), "qadd_term q=" << q);
      }
    }
}

TEST(eltwise_qadd_kernel_matches_reference) {
  auto g = rng(202);
  const int32_t extreme_mults[] = {0, 1, 1 << 30, INT32_MAX};
  for (Isa isa : supported_isas())
    for (size_t n : lengths())
      for (int round = 0; round < (n < 80 ? 6 : 2); ++round) {
        QAddParams p{};
        for (QAddTerm* t : {&p.a, &p.b}) {
          t->mask = g() % 2 ? 0x80 : 0;
          t->zero = g() % 3 == 0 ? (g() % 2 ? 0 : 255) : static_cast<int32_t>(g() % 256);
          t->mult = g() % 4 == 0 ? extreme_mults[g() % 4] : static_cast<int32_t>(g() % (uint64_t{1} << 31));
          t->shift = g() % 4 == 0 ? (g() % 2 ? 1 : 30) : 1 + static_cast<int32_t>(g() % 30);
        }
        bool is_signed;
        random_range(g, is_signed, p.lo, p.hi);
        p.out_zero = p.lo + static_cast<int32_t>(g() % static_cast<uint64_t>(p.hi - p.lo + 1));
        const auto a = random_bytes(g, n), b = random_bytes(g, n);
        std::vector<uint8_t> want(n), got(n + 4, 0xA5);
        ref::qadd(n, a.data(), b.data(), p, want.data());
        eltwise_kernels_for(isa).qadd(n, a.data(), b.data(), p, got.data());
        for (size_t i = 0; i < n; ++i)
          CHECK(got[i] == want[i], "qadd " << isa_name(isa) << " n=" << n << " i=" << i << " a=" << int(a[i])
                                           << " b=" << int(b[i]) << " ma=" << p.a.mult << " sa=" << p.a.shift
                                           << " mb=" << p.b.mult << " sb=" << p.b.shift << ": got " << int(got[i])
                                           << " want " << int(want[i]));
        CHECK(got[n] == 0xA5 && got[n + 3] == 0xA5, "qadd wrote past the end, n=" << n);
      }
}

TEST(eltwise_prelu8_kernel_matches_reference) {
  auto g = rng(206);
  const size_t channels[] = {1, 3, 7, 8, 9, 16, 17, 31, 33, 64, 65, 100};
  for (Isa isa : supported_isas())
    for (size_t c : channels)
      for (size_t rows : {1, 3})
        for (int round = 0; round < 6; ++round) {
          std::vector<int32_t> slopes(4 * c);
          for (size_t ch = 0; ch < 2 * c; ++ch) {
            const int32_t m =
                g() % 5 == 0 ? (g() % 2 ? INT32_MAX : 0) : static_cast<int32_t>(g() % (uint64_t{1} << 31));
            slopes[ch] = g() % 3 == 0 ? -m : m;  // negative slopes too
            slopes[2 * c + ch] = g() % 4 == 0 ? (g() % 2 ? 1 : 30) : 1 + static_cast<int32_t>(g() % 30);
          }
          bool is_signed;
          Prelu8Params p{slopes.data(), slopes.data() + 2 * c, slopes.data() + c, slopes.data() + 3 * c, 0, 0, 0, 0, 0};
          p.mask = g() % 2 ? 0x80 : 0;
          p.zero = g() % 3 == 0 ? (g() % 2 ? 0 : 255) : static_cast<int32_t>(g() % 256);
          random_range(g, is_signed, p.lo, p.hi);
          p.out_zero = p.lo + static_cast<int32_t>(g() % static_cast<uint64_t>(p.hi - p.lo + 1));
          const auto x = random_bytes(g, rows * c);
          std::vector<uint8_t> want(rows * c), got(rows * c + 4, 0xA5);
          ref::prelu8(rows, c, x.data(), p, want.data());
          eltwise_kernels_for(isa).prelu8(rows, c, x.data(), p, got.data());
          for (size_t i = 0; i < rows * c; ++i)
            CHECK(got[i] == want[i], "prelu8 " << isa_name(isa) << " c=" << c << " i=" << i << ": got " << int(got[i])
                                               << " want " << int(want[i]));
          CHECK(got[rows * c] == 0xA5 && got[rows * c + 3] == 0xA5, "prelu8 wrote past the end, c=" << c);
        }
}

TEST(eltwise_sign8_matches_reference) {
  auto g = rng(203);
  const size_t channels[] = {1, 3, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 200, 512};
  for (Isa isa : supported_isas())
    for (size_t c : channels)
      for (size_t rows : {1, 2, 5})
        for (int round = 0; round < 4; ++round) {
          const uint8_t mask = g() % 2 ? 0x80 : 0;
          const int32_t threshold = round == 0 ? 0 : round == 1 ? 255 : static_cast<int32_t>(g() % 256);
          auto x = random_bytes(g, rows * c);
          // Values at the threshold and either side of it.
          for (auto& v : x)
            if (g() % 2) v = static_cast<uint8_t>((threshold + static_cast<int32_t>(g() % 3) - 1) ^ mask);
          const size_t words = words_for_bits(c);
          std::vector<uint64_t> want(rows * words), got(rows * words + 1, 0xA5A5A5A5A5A5A5A5ull);
          ref::sign8(rows, c, x.data(), mask, threshold, want.data());
          eltwise_kernels_for(isa).sign8(rows, c, x.data(), mask, threshold, got.data());
          for (size_t w = 0; w < rows * words; ++w)
            CHECK(got[w] == want[w], "sign8 " << isa_name(isa) << " c=" << c << " rows=" << rows << " word " << w
                                              << " threshold=" << threshold);
          CHECK(got[rows * words] == 0xA5A5A5A5A5A5A5A5ull, "sign8 wrote past the end, c=" << c);
        }
}

TEST(eltwise_quantize_f32_kernel_matches_reference) {
  auto g = rng(204);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const float scales[] = {1.0f,
                          0.5f,
                          0.1f,
                          3.0f,
                          1e-30f,
                          1e30f,
                          std::numeric_limits<float>::denorm_min(),
                          std::numeric_limits<float>::max()};
  for (Isa isa : supported_isas())
    for (size_t n : lengths()) {
      const float scale = g() % 2 ? scales[g() % 8] : std::uniform_real_distribution<float>(0.001f, 10.0f)(g);
      bool is_signed;
      int32_t lo, hi;
      random_range(g, is_signed, lo, hi);
      const int32_t zp = lo + static_cast<int32_t>(g() % static_cast<uint64_t>(hi - lo + 1));
      std::vector<float> x(n);
      for (auto& v : x) switch (g() % 6) {
          case 0:  // exact halves: ties to even
            v = (static_cast<float>(static_cast<int>(g() % 601) - 300) + 0.5f) * scale;
            break;
          case 1: {
            const float special[] = {nan, -nan, inf, -inf, 0.0f, -0.0f, 1e38f, -1e38f, 511.5f, -512.5f};
            v = special[g() % 10];
            break;
          }
          default:
            v = std::uniform_real_distribution<float>(-400.0f, 400.0f)(g) * scale;
        }
      std::vector<uint8_t> want(n), got(n + 4, 0xA5);
      ref::quantize_f32(n, x.data(), scale, zp, lo, hi, want.data());
      eltwise_kernels_for(isa).quantize_f32(n, x.data(), scale, zp, lo, hi, got.data());
      for (size_t i = 0; i < n; ++i)
        CHECK(got[i] == want[i], "quantize_f32 " << isa_name(isa) << " n=" << n << " x=" << x[i] << " scale=" << scale
                                                 << " zp=" << zp << ": got " << int(got[i]) << " want "
                                                 << int(want[i]));
      CHECK(got[n] == 0xA5 && got[n + 3] == 0xA5, "quantize_f32 wrote past the end, n=" << n);
    }
}

TEST(eltwise_dequantize_pool_clamp_unpack_kernels_match_reference) {
  auto g = rng(205);
  for (Isa isa : supported_isas()) {
    const EltwiseKernels& k = eltwise_kernels_for(isa);
    for (size_t n : lengths()) {
      const auto x = random_bytes(g, n), y = random_bytes(g, n);
      const uint8_t mask = g() % 2 ? 0x80 : 0;
      const bool is_signed = mask != 0;
      const int32_t zero = static_cast<int32_t>(g() % 256);
      const float scale = g() % 2 ? std::uniform_real_distribution<float>(1e-6f, 1e3f)(g) : 3e38f;

      std::vector<float> fwant(n), fgot(n + 1, 7.0f);
      ref::dequantize8(n, x.data(), mask, zero, scale, fwant.data());
      k.dequantize8(n, x.data(), mask, zero, scale, fgot.data());
      CHECK(same_bytes(fwant.data(), fgot.data(), n * sizeof(float)), "dequantize8 " << isa_name(isa) << " n=" << n);
      CHECK(fgot[n] == 7.0f, "dequantize8 wrote past the end");

      // Tap counts around the 16-bit runs of the sums (128 taps).
      const size_t tap_counts[] = {1, 2, 9, 127, 128, 129, 300};
      const size_t taps = n > 200 ? 1 + g() % 9 : tap_counts[g() % 7];
      std::vector<std::vector<uint8_t>> rows(taps);
      std::vector<const uint8_t*> src(taps);
      for (size_t t = 0; t < taps; ++t) {
        rows[t] = random_bytes(g, n);
        if (t == 0 || g() % 2)  // saturating rows: every value at the top of the range
          std::fill(rows[t].begin(), rows[t].end(), static_cast<uint8_t>(0xFF ^ mask));
        src[t] = rows[t].data();
      }
      std::vector<uint8_t> want(y), got(y);
      got.push_back(0xA5);
      ref::max_taps8(n, src.data(), taps, is_signed, want.data());
      k.max_taps8(n, src.data(), taps, is_signed, got.data());
      CHECK(same_bytes(want.data(), got.data(), n) && got[n] == 0xA5,
            "max_taps8 " << isa_name(isa) << " n=" << n << " taps=" << taps);
      for (size_t t = 0; t < taps; ++t) {
        rows[t] = random_bytes(g, n);
        src[t] = rows[t].data();
      }
      ref::max_taps8(n, src.data(), taps, is_signed, want.data());
      k.max_taps8(n, src.data(), taps, is_signed, got.data());
      CHECK(same_bytes(want.data(), got.data(), n), "max_taps8 " << isa_name(isa) << " n=" << n);

      std::vector<int32_t> awant(n), agot(n + 1, 77);
      for (size_t i = 0; i < n; ++i) awant[i] = agot[i] = static_cast<int32_t>(g() % 2000001) - 1000000;
      ref::sum_taps8(n, src.data(), taps, mask, awant.data());
      k.sum_taps8(n, src.data(), taps, mask, agot.data());
      CHECK(same_bytes(awant.data(), agot.data(), n * 4) && agot[n] == 77,
            "sum_taps8 " << isa_name(isa) << " n=" << n << " taps=" << taps);

      const int32_t min = is_signed ? -128 : 0, max = is_signed ? 127 : 255;
      int32_t lo = min + static_cast<int32_t>(g() % 256), hi = min + static_cast<int32_t>(g() % 256);
      if (lo > hi) std::swap(lo, hi);
      if (g() % 4 == 0) lo = min, hi = max;
      std::vector<uint8_t> cwant(n), cgot(n + 1, 0xA5);
      ref::clamp8(n, x.data(), is_signed, lo, hi, cwant.data());
      k.clamp8(n, x.data(), is_signed, lo, hi, cgot.data());
      CHECK(same_bytes(cwant.data(), cgot.data(), n) && cgot[n] == 0xA5,
            "clamp8 " << isa_name(isa) << " n=" << n << " [" << lo << ", " << hi << "]");

      std::vector<uint64_t> bits(words_for_bits(n) + 1);
      for (auto& w : bits) w = g();
      std::vector<int8_t> uwant(n), ugot(n + 1, 99);
      ref::unpack_b1(n, bits.data(), uwant.data());
      k.unpack_b1(n, bits.data(), ugot.data());
      CHECK(same_bytes(uwant.data(), ugot.data(), n) && ugot[n] == 99, "unpack_b1 " << isa_name(isa) << " n=" << n);
    }
  }
}
