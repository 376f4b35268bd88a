// model_fuzz_test.cc: malformed `.lowbit` files. Every one must fail to load with
// Error(ErrorKind::Format) and a message naming the field, and never crash: the strict JSON parser,
// the container (each header and table field), every prefix of a valid file, every byte flipped
// with and without resealed CRCs (so the checks behind the CRCs run), and a table of targeted
// mutations of the JSON graph and of data sections.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "graph/json.h"
#include "harness.h"
#include "lowbit/binary.h"
#include "lowbit/error.h"
#include "lowbit/model.h"
#include "lowbit/mst.h"
#include "model_writer.h"

using namespace lowbit;
using namespace lowbit::test;

namespace {

// The outcome of a load: "" on success, else the message (kind Format asserted by the caller).
struct Outcome {
  bool loaded = false;
  bool format = false;  // the error was Error(ErrorKind::Format)
  std::string message;
  std::shared_ptr<const Model> model;
};

Outcome try_load(const std::vector<uint8_t>& f, size_t size) {
  Outcome o;
  try {
    // A private copy of exactly `size` bytes, so ASan sees any read past the end.
    std::vector<uint8_t> copy(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(size));
    o.model = load_model(copy.empty() ? nullptr : copy.data(), copy.size());
    o.loaded = true;
  } catch (const Error& e) {
    o.format = e.kind() == ErrorKind::Format;
    o.message = e.what();
  }
  return o;
}
Outcome try_load(const std::vector<uint8_t>& f) { return try_load(f, f.size()); }

// A loaded model must run; sizes are small in these tests (a mutation may grow a tensor: those are skipped).
std::string run_once(const Model& m) {
  try {
    if (m.memory_plan(1).arena_bytes > (size_t{64} << 20)) return "";
    std::vector<std::vector<float>> in, out;
    std::vector<const float*> ip;
    std::vector<float*> op;
    for (const ModelIo& io : m.inputs()) {
      if (io.elements > (size_t{16} << 20)) return "";
      in.emplace_back(io.elements, 0.25f);
    }
    for (const ModelIo& io : m.outputs()) {
      if (io.elements > (size_t{16} << 20)) return "";
      out.emplace_back(io.elements);
    }
    for (auto& v : in) ip.push_back(v.data());
    for (auto& v : out) op.push_back(v.data());
    m.run(1, ip.data(), op.data());
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// The fuzz model: most operators and every kind of data field in a few kilobytes.
struct FuzzModel {
  GraphWriter w;
  size_t conv1_weights = 0, conv2_weights = 0, conv2_mst = 0, bn_flip = 0, prelu_shift_pos = 0, prelu_mult_neg = 0,
         fc_scale = 0, rprelu_slope = 0, rsign_threshold = 0;
};

size_t last_section(const GraphWriter& w) { return w.sections.size(); }

FuzzModel fuzz_model() {
  auto g = rng(400);
  FuzzModel f;
  GraphWriter& w = f.w;
  auto bytes = [&](size_t n, int lo, int hi) {
    std::vector<int8_t> v(n);
    for (auto& x : v) x = static_cast<int8_t>(lo + static_cast<int>(g() % static_cast<uint64_t>(hi - lo + 1)));
    return v;
  };
  auto s32 = [&](size_t n, int lo, int hi) {
    std::vector<int32_t> v(n);
    for (auto& x : v) x = lo + static_cast<int32_t>(g() % static_cast<uint64_t>(hi - lo + 1));
    return v;
  };
  const size_t C1 = 15, C2 = 16, N = 4;
  const auto x = w.tensor("x", "f32", {3, 6, 6}), xq = w.tensor("xq", "u8", {6, 6, 3}, 0.05, 128);
  const auto acc = w.tensor("acc", "s32", {6, 6, C1}), b = w.tensor("b", "b1", {6, 6, C1});
  const auto b2 = w.tensor("b2", "b1", {3, 3, C2}), b3 = w.tensor("b3", "b1", {3, 3, C2});
  const auto u = w.tensor("u", "s8", {3, 3, C2}, 1, 0), r = w.tensor("r", "s8", {9 * C2}, 1, 0);
  const auto d = w.tensor("d", "s32", {N}), logits = w.tensor("logits", "f32", {N}),
             prob = w.tensor("prob", "f32", {N});
  const auto s = w.tensor("s", "u8", {6, 6, 3}, 0.1, 128), pr = w.tensor("pr", "s8", {6, 6, 3}, 0.1, 0);
  const auto av = w.tensor("av", "s8", {3, 3, 3}, 0.1, 0), gp = w.tensor("gp", "s8", {1, 1, 3}, 0.05, 0);
  const auto pooled = w.tensor("pooled", "f32", {3, 1, 1});
  w.input("x", x), w.output("prob", prob), w.output("pooled", pooled);
  w.node("quantize", "quantize", {x}, xq);
  std::vector<uint8_t> nibbles((C1 * 27 + 1) / 2);  // 405 values: the last byte's high nibble is unused
  for (auto& v : nibbles) v = static_cast<uint8_t>(g());
  nibbles.back() &= 0x0F;
  const std::string conv1_weights = w.data(nibbles);
  f.conv1_weights = last_section(w);
  w.node("conv1", "qconv2d", {xq}, acc,
         "\"kernel\": [3, 3], \"stride\": [1, 1], \"dilation\": [1, 1], \"pads\": [1, 1, 1, 1], \"groups\": 1, "
         "\"bits\": 4, "
         "\"weights\": " +
             conv1_weights + ", \"bias\": " + w.data(s32(C1, -100, 100)));
  const std::string thr = w.data(s32(C1, -20, 20)), flip = w.data(bytes(C1, 0, 1));
  f.bn_flip = last_section(w);
  w.node("bn", "threshold", {acc}, b, "\"threshold\": " + thr + ", \"flip\": " + flip);
  std::vector<float> signs(C2 * 9 * C1);
  for (size_t i = 0; i < signs.size(); ++i) signs[i] = (i % 7 == 0 || g() % 9 == 0) ? -1.f : 1.f;
  const auto bw = pack_binary_conv2d_weights_f32(signs.data(), C2, 3, 3, C1, 1);
  const std::string conv2_weights = w.data(bw->bits);
  f.conv2_weights = last_section(w);
  const std::string mst = w.data(serialize_mst(*build_mst(*bw, MstOptions{}), *bw));
  f.conv2_mst = last_section(w);
  w.node("conv2", "bconv2d", {b}, b2,
         "\"kernel\": [3, 3], \"stride\": [2, 2], \"dilation\": [1, 1], \"pads\": [1, 1, 1, 1], \"groups\": 1, "
         "\"pad_value\": \"one\", \"weights\": " +
             conv2_weights + ", \"threshold\": " + w.data(s32(C2, -9, 9)) + ", \"flip\": " + w.data(bytes(C2, 0, 1)) +
             ", \"mst\": " + mst + ", \"mst_policy\": \"auto\"");
  w.node("pool", "maxpool", {b2}, b3, "\"kernel\": [2, 2], \"stride\": [1, 1], \"pads\": [0, 0, 1, 1]");
  w.node("unpack", "unpack", {b3}, u);
  w.node("flatten", "reshape", {u}, r);
  w.node("fc", "qdense", {r}, d, "\"bits\": 8, \"weights\": " + w.data(bytes(N * 9 * C2, -127, 127)));
  const std::string fc_scale = w.data(std::vector<float>{0.01f, 0.02f, -0.01f, 0.005f});
  f.fc_scale = last_section(w);
  w.node("fc.scale", "affine", {d}, logits,
         "\"scale\": " + fc_scale + ", \"bias\": " + w.data(std::vector<float>(N, 0.5f)));
  w.node("softmax", "softmax", {logits}, prob);
  w.node("add", "add", {xq, xq}, s, "\"clamp\": [0, 255]");
  const std::string mult_pos = w.data(s32(3, 1 << 30, 1 << 30)), mult_neg = w.data(s32(3, 1 << 28, 1 << 28));
  f.prelu_mult_neg = last_section(w);
  const std::string shift_pos = w.data(bytes(3, 30, 31));
  f.prelu_shift_pos = last_section(w);
  w.node("prelu", "prelu", {s}, pr,
         "\"multiplier_pos\": " + mult_pos + ", \"multiplier_neg\": " + mult_neg + ", \"shift_pos\": " + shift_pos +
             ", \"shift_neg\": " + w.data(bytes(3, 31, 32)) + ", \"clamp\": [-128, 127]");
  w.node("avgpool", "avgpool", {pr}, av,
         "\"kernel\": [2, 2], \"stride\": [2, 2], \"pads\": [0, 0, 0, 0], \"count_include_pad\": true, \"clamp\": "
         "[-128, 127]");
  w.node("gap", "global_avgpool", {av}, gp, "\"clamp\": [-128, 127]");
  w.node("dq", "dequantize", {gp}, pooled);

  // The float path (f32 hwc activations): transpose, RPReLU, residual add, clamp, pad, affine, pools,
  // concat, sign with thresholds, global average, back to chw.
  const auto xh = w.tensor_hwc("xh", {6, 6, 3}), fp = w.tensor_hwc("fp", {6, 6, 3});
  const auto fa = w.tensor_hwc("fa", {6, 6, 3}), fc = w.tensor_hwc("fc", {6, 6, 3});
  const auto fmp = w.tensor_hwc("fmp", {3, 3, 3}), fap = w.tensor_hwc("fap", {3, 3, 3});
  const auto fcat = w.tensor_hwc("fcat", {3, 3, 6}), fb = w.tensor("fb", "b1", {3, 3, 6});
  const auto fgp = w.tensor_hwc("fgp", {1, 1, 6}), fout = w.tensor("fout", "f32", {6, 1, 1});
  w.output("fpooled", fout);
  w.node("f.to_hwc", "transpose", {x}, xh);
  const std::string slope = w.data(std::vector<float>{0.25f, -0.5f, 1.0f});
  f.rprelu_slope = last_section(w);
  w.node("f.rprelu", "prelu", {xh}, fp,
         "\"slope\": " + slope + ", \"input_bias\": " + w.data(std::vector<float>{0.1f, -0.1f, 0.0f}) +
             ", \"output_bias\": " + w.data(std::vector<float>{-0.2f, 0.3f, 0.0f}));
  w.node("f.add", "add", {fp, xh}, fa, "\"clamp\": [-4.0, 4.0]");
  w.node("f.clamp", "clamp", {fa}, fc, "\"clamp\": [-3.0, 3.0]");
  const auto fpad = w.tensor_hwc("fpad", {7, 7, 3}), faf = w.tensor_hwc("faf", {7, 7, 3});
  w.node("f.pad", "pad", {fc}, fpad, "\"pads\": [1, 0, 0, 1], \"value\": -0.5");
  w.node("f.affine", "affine", {fpad}, faf,
         "\"scale\": " + w.data(std::vector<float>{0.5f, -1.0f, 2.0f}) +
             ", \"bias\": " + w.data(std::vector<float>{0.0f, 0.1f, -0.1f}) + ", \"clamp\": [-2.0, 2.0]");
  w.node("f.maxpool", "maxpool", {faf}, fmp, "\"kernel\": [2, 2], \"stride\": [2, 2], \"pads\": [0, 0, 0, 0]");
  w.node("f.avgpool", "avgpool", {fc}, fap,
         "\"kernel\": [3, 3], \"stride\": [2, 2], \"pads\": [1, 1, 1, 1], \"count_include_pad\": false");
  w.node("f.concat", "concat", {fmp, fap}, fcat);
  const std::string threshold = w.data(std::vector<float>{0.0f, 0.5f, -0.5f, 1.0f, -1.0f, 0.25f});
  f.rsign_threshold = last_section(w);
  w.node("f.sign", "sign", {fcat}, fb, "\"threshold\": " + threshold);
  w.node("f.gap", "global_avgpool", {fcat}, fgp);
  w.node("f.to_chw", "transpose", {fgp}, fout);
  // A fused binary block: bconv2d with the residual input, RPReLU, clamp and the sign bits out.
  const auto fz = w.tensor_hwc("fz", {3, 3, 6}), fzb = w.tensor("fzb", "b1", {3, 3, 6});
  std::vector<float> block_signs(36);
  for (auto& v : block_signs) v = g() % 2 ? 1.f : -1.f;
  const auto block_weights = pack_binary_conv2d_weights_f32(block_signs.data(), 6, 1, 1, 6, 1);
  const std::vector<float> six{0.5f, -0.25f, 1.0f, 0.0f, 0.125f, -1.0f};
  w.node("f.block", "bconv2d", {fb, fcat}, std::vector<uint32_t>{fz, fzb},
         "\"kernel\": [1, 1], \"stride\": [1, 1], \"dilation\": [1, 1], \"pads\": [0, 0, 0, 0], \"groups\": 1, "
         "\"pad_value\": \"one\", \"weights\": " +
             w.data(block_weights->bits) + ", \"scale\": " + w.data(six) + ", \"bias\": " + w.data(six) +
             ", \"prelu_slope\": " + w.data(six) + ", \"prelu_output_bias\": " + w.data(six) +
             ", \"clamp\": [-2.0, 2.0], \"sign_threshold\": " + w.data(six));
  return f;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Replaces the first occurrence of `from` (which must occur) in `text`.
bool replace_first(std::string& text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  if (at == std::string::npos) return false;
  text.replace(at, from.size(), to);
  return true;
}

}  // namespace

TEST(model_fuzz_json_parser_is_strict) {
  {
    const json::Document doc("{\"a\": [1, -0.5e2, true, false, null, \"x\\u00e9\\ud83d\\ude00\\n\\/\"], \"b\": {}}");
    const json::Value a = json::Value::root(doc).get("a");
    CHECK(a.size() == 6 && a[1].number() == -50 && a[2].boolean() && a[4].type() == json::Type::Null, "values");
    CHECK(a[5].string() == "x\xC3\xA9\xF0\x9F\x98\x80\n/", "escapes decode to UTF-8");
  }
  const std::pair<std::string, std::string> bad[] = {
      {"", "byte 0: unexpected end of input"},
      {" ", "byte 1: unexpected end of input"},
      {"[1,]", "byte 3: expected a JSON value"},
      {"{\"a\": 1,}", "expected a string key"},
      {"01", "leading zero"},
      {"1.", "expected a digit"},
      {".5", "expected a JSON value"},
      {"+1", "expected a JSON value"},
      {"-", "expected a digit"},
      {"1e", "expected a digit"},
      {"[1 2]", "byte 3: expected ',' or ']'"},
      {"{\"a\" 1}", "expected ':'"},
      {"{a: 1}", "expected a string key"},
      {"\"\\x\"", "invalid escape"},
      {"\"\\ud800\"", "high surrogate"},
      {"\"\\udc00\"", "lone low surrogate"},
      {"\"\\ud800\\u0041\"", "high surrogate"},
      {"\"\\u12g4\"", "4 hex digits"},
      {"\"a\x01\"", "control character"},
      {"\"\xC0\xAF\"", "invalid UTF-8"},
      {"\"\xED\xA0\x80\"", "invalid UTF-8"},
      {"\"\xF4\x90\x80\x80\"", "invalid UTF-8"},
      {"\"\xE2\x82\"", "invalid UTF-8"},
      {"\"abc", "end of input in a string"},
      {"tru", "invalid literal"},
      {"nul", "invalid literal"},
      {"1e400", "outside the range of a double"},
      {"[1] x", "unexpected data after"},
      {"\xEF\xBB\xBF{}", "expected a JSON value"},
      {"{\"a\": 1, \"b\": 2, \"a\": 3}", "duplicate key \"a\""},
      {std::string(65, '[') + std::string(65, ']'), "nesting deeper than 64"},
  };
  for (const auto& [text, part] : bad) {
    std::string message = "(no error)";
    try {
      json::Document doc(text);
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::Format, "kind for " << text);
      message = e.what();
    }
    CHECK(contains(message, part), "'" << text << "': expected '" << part << "' in: " << message);
  }
  json::Document deep(std::string(64, '[') + "1" + std::string(64, ']'));  // 64 levels are fine
  std::string many = "[0";
  for (size_t i = 1; i <= json::kMaxValues; ++i) many += ",0";
  std::string message;
  try {
    json::Document doc(many + "]");
  } catch (const Error& e) {
    message = e.what();
  }
  CHECK(contains(message, "more than 4194304 values"), "the value limit: " << message);

  // Accessors name the path, what they expected and what they got.
  const json::Document doc("{\"nodes\": [{}, {}, {}, {\"kernel\": [3, 0], \"op\": 7, \"x\": 1.5}]}");
  const json::Value node = json::Value::root(doc).get("nodes")[3];
  const std::pair<std::function<void()>, std::string> access[] = {
      {[&] { node.get("kernel")[1].integer(1, 65535); },
       "json: nodes[3].kernel[1]: expected an integer in [1, 65535], got 0"},
      {[&] { node.get("op").string(); }, "json: nodes[3].op: expected a string, got 7"},
      {[&] { node.get("x").integer(0, 10); }, "json: nodes[3].x: expected an integer in [0, 10], got 1.5"},
      {[&] { node.get("stride"); }, "json: nodes[3]: missing field 'stride'"},
      {[&] { node.get("kernel")[2]; }, "json: nodes[3].kernel: index 2 is past the end"},
      {[&] { json::Value::root(doc).get("nodes").get("a"); }, "json: nodes: expected an object, got an array"},
  };
  for (const auto& [f, part] : access) {
    message = "(no error)";
    try {
      f();
    } catch (const Error& e) {
      message = e.what();
    }
    CHECK(message == part, "expected '" << part << "', got '" << message << "'");
  }
}

TEST(model_fuzz_container_fields) {
  const FuzzModel fm = fuzz_model();
  const std::vector<uint8_t> good = fm.w.file();
  CHECK(try_load(good).loaded, "the fuzz model must load: " << try_load(good).message);
  const size_t table = kHeaderBytes, s1 = table + kTableEntryBytes;  // section 0's and 1's entries
  const uint64_t off1 = get_u64(good, s1 + 8), len1 = get_u64(good, s1 + 16);
  const uint64_t off0 = get_u64(good, table + 8);
  // A padding byte between two sections, and the index of the section after it.
  size_t pad_at = 0, pad_before = 0;
  for (size_t i = 0; i + 1 < get_u32(good, 12) && !pad_at; ++i) {
    const size_t e = table + kTableEntryBytes * i;
    const uint64_t end = get_u64(good, e + 8) + get_u64(good, e + 16);
    if (end < get_u64(good, e + kTableEntryBytes + 8)) pad_at = end, pad_before = i + 1;
  }
  CHECK(pad_at != 0, "the fuzz model has no padding between sections");
  struct Case {
    const char* what;
    std::function<void(std::vector<uint8_t>&)> mutate;
    bool seal;
    std::string part;
  };
  const Case cases[] = {
      {"magic", [](auto& f) { f[0] = 'X'; }, true, "header: magic"},
      {"version", [](auto& f) { put_u32(f, 8, 2); }, true, "header: format version 2 is not supported"},
      {"no sections", [](auto& f) { put_u32(f, 12, 0); }, true, "header: section count 0 must be in [1, 65536]"},
      {"too many sections", [](auto& f) { put_u32(f, 12, 65537); }, true, "section count 65537"},
      {"table past the end", [](auto& f) { put_u32(f, 12, 60000); }, true, "does not fit in the file"},
      {"file size", [](auto& f) { put_u64(f, 16, f.size() + 1); }, true,
       "does not match the buffer (" + std::to_string(good.size()) + " bytes)"},
      {"header crc", [](auto& f) { f[25] ^= 1; }, false, "header: crc32 0x"},
      {"reserved header", [](auto& f) { f[40] = 1; }, true, "header: reserved bytes 28..63 must be zero"},
      {"kind 3", [&](auto& f) { put_u32(f, s1, 3); }, true, "section 1: kind 3 is neither 1 (JSON graph) nor 2 (data)"},
      {"section 0 as data", [&](auto& f) { put_u32(f, table, 2); }, true, "section 0: kind must be 1"},
      {"second JSON", [&](auto& f) { put_u32(f, s1, 1); }, true,
       "section 1: kind 1 (JSON graph) is only valid for section 0"},
      {"entry reserved", [&](auto& f) { put_u64(f, s1 + 24, 5); }, true, "section 1: the reserved field must be zero"},
      {"misaligned", [&](auto& f) { put_u64(f, s1 + 8, off1 + 8); }, true,
       "section 1: offset " + std::to_string(off1 + 8) + " is not a multiple of 64"},
      {"overlap", [&](auto& f) { put_u64(f, s1 + 8, off0); }, true,
       "section 1: offset " + std::to_string(off0) + " overlaps section 0"},
      {"inside the table", [&](auto& f) { put_u64(f, table + 8, 0); }, true, "overlaps the header and section table"},
      {"past the end", [&](auto& f) { put_u64(f, s1 + 16, f.size()); }, true,
       "section 1: offset " + std::to_string(off1) + " + length"},
      {"huge length", [&](auto& f) { put_u64(f, s1 + 16, ~uint64_t{0}); }, true, "runs past the end of the file"},
      {"padding", [&](auto& f) { f[pad_at] = 1; }, true,
       "section " + std::to_string(pad_before) + ": the padding before it"},
      {"data crc", [&](auto& f) { f[off1 + len1 - 1] ^= 0x40; }, false, "section 1: crc32 0x"},
      {"json crc", [&](auto& f) { f[off0 + 3] ^= 0x01; }, false, "section 0: crc32 0x"},
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> f = good;
    c.mutate(f);
    if (c.seal) reseal(f);
    const Outcome o = try_load(f);
    CHECK(!o.loaded && o.format, c.what << ": expected a format error, got " << (o.loaded ? "success" : o.message));
    CHECK(contains(o.message, c.part), c.what << ": expected '" << c.part << "' in: " << o.message);
  }
  {  // trailing bytes after the last section must be zero
    std::vector<uint8_t> f = good;
    f.push_back(7);
    put_u64(f, 16, f.size());
    reseal(f);
    const Outcome o = try_load(f);
    CHECK(!o.loaded && contains(o.message, "after the last section"), "trailing byte: " << o.message);
    f.back() = 0;
    reseal(f);
    CHECK(try_load(f).loaded, "trailing zero bytes are padding: " << try_load(f).message);
  }
  {  // a JSON section over 64 MiB is refused before its CRC is computed
    std::vector<uint8_t> f(kHeaderBytes + kTableEntryBytes, 0);
    f.resize(128 + kMaxJsonBytes + 1, 0);
    std::memcpy(f.data(), kModelMagic, 8);
    put_u32(f, 8, 1), put_u32(f, 12, 1), put_u64(f, 16, f.size());
    put_u32(f, 64, 1), put_u64(f, 72, 128), put_u64(f, 80, kMaxJsonBytes + 1);
    put_u32(f, 24, crc32(f.data(), 96));
    const Outcome o = try_load(f);
    CHECK(!o.loaded && contains(o.message, "section 0: the JSON graph is 67108865 bytes, more than the 64 MiB limit"),
          "JSON size limit: " << o.message);
  }
}

TEST(model_fuzz_every_truncation_and_byte_flip) {
  const FuzzModel fm = fuzz_model();
  const std::vector<uint8_t> good = fm.w.file();
  CHECK(try_load(good).loaded, "the fuzz model must load");
  CHECK(run_once(*try_load(good).model).empty(), "the fuzz model must run");
  for (size_t n = 0; n < good.size(); ++n) {
    const Outcome o = try_load(good, n);
    CHECK(!o.loaded && o.format, "a file cut at " << n << " of " << good.size() << " bytes: " << o.message);
  }
  size_t loaded = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    std::vector<uint8_t> f = good;
    f[i] ^= 0xFF;
    const Outcome raw = try_load(f);
    CHECK(!raw.loaded && raw.format, "byte " << i << " flipped: " << raw.message);
    // With the CRCs recomputed, the structure and graph checks must catch it, or it is a valid model.
    reseal(f);
    const Outcome o = try_load(f);
    CHECK(o.loaded || o.format, "byte " << i << " flipped and resealed: not a format error: " << o.message);
    if (o.loaded) {
      ++loaded;
      const std::string failure = run_once(*o.model);
      CHECK(failure.empty(), "byte " << i << " flipped and resealed loads but fails to run: " << failure);
    }
  }
  // Random multi-byte mutations of the JSON and the data, resealed.
  auto g = rng(401);
  for (int r = 0; r < 300; ++r) {
    std::vector<uint8_t> f = good;
    for (int k = 0; k < 3; ++k) f[kHeaderBytes + g() % (f.size() - kHeaderBytes)] = static_cast<uint8_t>(g());
    reseal(f);
    const Outcome o = try_load(f);
    CHECK(o.loaded || o.format, "mutation " << r << ": not a format error: " << o.message);
    if (o.loaded) CHECK(run_once(*o.model).empty(), "mutation " << r << " loads but fails to run");
  }
  std::printf("    (%zu of %zu resealed single-byte flips still load as valid models)\n", loaded, good.size());
}

TEST(model_fuzz_json_mutations_name_the_field) {
  const FuzzModel fm = fuzz_model();
  const std::string json = fm.w.json();
  struct Case {
    std::string from, to, part;
  };
  const std::string deep = std::string(65, '[') + std::string(65, ']');
  const Case cases[] = {
      {"\"shape\": [3, 6, 6]", "\"shape\": [3, 6, 1099511627776]",
       "json: tensors[0].shape[2]: expected an integer in [1, 16777216], got 1099511627776"},
      {"\"shape\": [3, 6, 6]", "\"shape\": [3, -6, 6]",
       "tensors[0].shape[1]: expected an integer in [1, 16777216], got -6"},
      {"\"shape\": [3, 6, 6]", "\"shape\": [3, 6.5, 6]",
       "tensors[0].shape[1]: expected an integer in [1, 16777216], got 6.5"},
      {"\"shape\": [3, 6, 6]", "\"shape\": [16777216, 16777216, 6]",
       "tensors[0].shape: the dimensions' product exceeds 2^31 - 1"},
      {"\"shape\": [3, 6, 6]", "\"shape\": [1, 3, 6, 6]", "tensors[0].shape: expected 1 to 3 dimensions"},
      {"\"shape\": [3, 6, 6]", "\"shape\": []", "tensors[0].shape: expected 1 to 3 dimensions (one sample), got 0"},
      {"\"shape\": [3, 6, 6]", "\"shap\": [3, 6, 6]", "tensors[0]: missing field 'shape'"},
      {"\"dtype\": \"s32\"", "\"dtype\": \"s16\"",
       "tensors[2].dtype: expected one of \"f32\", \"u8\", \"s8\", \"s32\", \"b1\", got \"s16\""},
      {"\"scale\": 0.050000000000000003", "\"scale\": 0", "tensors[1].scale: expected a finite number > 0, got 0"},
      {"\"scale\": 0.050000000000000003", "\"scale\": -1", "tensors[1].scale: expected a finite number > 0, got -1"},
      {"\"zero_point\": 128", "\"zero_point\": 300", "tensors[1].zero_point: expected an integer in [0, 255], got 300"},
      {"\"lowbit\": 1", "\"lowbit\": 2", "json: lowbit: expected 1 (the graph format version), got 2"},
      {"\"nodes\": [", "\"nodez\": [", "json: (the document): missing field 'nodes'"},
      {"\"inputs\": [0], \"outputs\": [1]", "\"inputs\": [99], \"outputs\": [1]",
       "node 'quantize' (quantize): json: nodes[0].inputs[0]: expected an integer in [0, 29], got 99"},
      {"\"inputs\": [0], \"outputs\": [1]", "\"inputs\": [0], \"outputs\": [0]",
       "nodes[0].outputs[0]: tensor 0 'x' is a graph input"},
      {"\"inputs\": [0], \"outputs\": [1]", "\"inputs\": [0], \"outputs\": [1, 2]",
       "nodes[0].outputs: expected 1 output, got 2"},
      {"\"weights\": {\"section\": 1}", "\"weights\": {\"section\": 999}",
       "node 'conv1' (qconv2d): json: nodes[1].weights.section: expected an integer in [1, "},
      {"\"weights\": {\"section\": 1}", "\"weights\": {\"section\": 2}",
       "node 'conv1' (qconv2d): json: nodes[1].weights: the section holds 60 bytes, expected 203 (203 x int4 pair "
       "bytes)"},
      {"\"weights\": {\"section\": 1}", "\"weights\": 1", "nodes[1].weights: expected an object, got 1"},
      {"\"bits\": 4", "\"bits\": 5", "node 'conv1' (qconv2d): json: nodes[1].bits: expected 8, 7 or 4, got 5"},
      {"\"bits\": 4", "\"bits\": 8", "nodes[1].weights: the section holds 203 bytes, expected 405 (405 x int8)"},
      {"\"kernel\": [3, 3]", "\"kernel\": [3, 0]",
       "node 'conv1' (qconv2d): json: nodes[1].kernel[1]: expected an integer in [1, 65535], got 0"},
      {"\"kernel\": [3, 3]", "\"kernel\": [3]", "nodes[1].kernel: expected an array of 2 integers, got 1 values"},
      {"\"stride\": [1, 1], ", "", "node 'conv1' (qconv2d): json: nodes[1]: missing field 'stride'"},
      {"\"stride\": [1, 1]", "\"stride\": [65536, 1]",
       "nodes[1].stride[0]: expected an integer in [1, 65535], got 65536"},
      {"\"pads\": [1, 1, 1, 1]", "\"pads\": [3, 1, 1, 1]",
       "node 'conv1' (qconv2d): pads [3, 1, 1, 1] must each be smaller"},
      {"\"groups\": 1", "\"groups\": 2",
       "node 'conv1' (qconv2d): inputs[0] (tensor 1 'xq'): 3 channels do not divide into 2 groups"},
      {"\"op\": \"qconv2d\", \"inputs\": [1]", "\"op\": \"qconv2d\", \"inputs\": [2]",
       "node 'conv1' (qconv2d): json: nodes[1].inputs[0]: tensor 2 'acc' is neither a graph input nor written by an "
       "earlier node"},
      {"\"op\": \"threshold\", \"inputs\": [2]", "\"op\": \"threshold\", \"inputs\": [4]",
       "tensor 4 'b2' is neither a graph input"},
      {"\"op\": \"prelu\", \"inputs\": [11], \"outputs\": [12]",
       "\"op\": \"prelu\", \"inputs\": [11], \"outputs\": [11]",
       "node 'prelu' (prelu): json: nodes[11].outputs[0]: tensor 11 's' is already written by node 'add'"},
      {"\"op\": \"softmax\"", "\"op\": \"softmax2\"",
       "node 'softmax' (softmax2): json: nodes[9].op: unknown op \"softmax2\""},
      {"\"op\": \"quantize\"", "\"op\": \"quantize\", \"op\": \"quantize\"", "duplicate key \"op\""},
      {"\"op\": \"add\", \"inputs\": [1, 1]", "\"op\": \"add\", \"inputs\": [1]",
       "node 'add' (add): json: nodes[10].inputs: expected 2 inputs, got 1"},
      {"\"pad_value\": \"one\"", "\"pad_value\": \"two\"",
       "nodes[3].pad_value: expected one of \"zero\", \"one\", got \"two\""},
      {"\"mst_policy\": \"auto\"", "\"mst_policy\": \"sometimes\"",
       "nodes[3].mst_policy: expected one of \"auto\", \"always\""},
      {"\"clamp\": [0, 255]", "\"clamp\": [0, 256]",
       "node 'add' (add): json: nodes[10].clamp[1]: expected an integer in [0, 255], got 256"},
      {"\"clamp\": [0, 255]", "\"clamp\": [200, 100]", "nodes[10].clamp: expected lo <= hi, got [200, 100]"},
      {"\"count_include_pad\": true", "\"count_include_pad\": 1",
       "nodes[12].count_include_pad: expected true or false, got 1"},
      {"\"name\": \"b2\", \"dtype\": \"b1\", \"shape\": [3, 3, 16]",
       "\"name\": \"b2\", \"dtype\": \"b1\", \"shape\": [4, 4, 16]",
       "node 'conv2' (bconv2d): outputs[0] (tensor 4 'b2'): expected shape [3, 3, 16], got [4, 4, 16]"},
      {"\"name\": \"u\", \"dtype\": \"s8\"", "\"name\": \"u\", \"dtype\": \"u8\"",
       "node 'unpack' (unpack): outputs[0] (tensor 6 'u'): expected dtype s8 or f32, got u8"},
      {"\"name\": \"u\", \"dtype\": \"s8\", \"shape\": [3, 3, 16], \"scale\": 1",
       "\"name\": \"u\", \"dtype\": \"s8\", \"shape\": [3, 3, 16], \"scale\": 2",
       "node 'unpack' (unpack): outputs[0] (tensor 6 'u'): +-1 values need scale 1 and zero point 0"},
      {"\"name\": \"r\", \"dtype\": \"s8\", \"shape\": [144]", "\"name\": \"r\", \"dtype\": \"s8\", \"shape\": [145]",
       "node 'flatten' (reshape): outputs[0] (tensor 7 'r'): 145 elements, expected the input's 144"},
      {"\"name\": \"av\", \"dtype\": \"s8\", \"shape\": [3, 3, 3], \"scale\": 0.10000000000000001",
       "\"name\": \"av\", \"dtype\": \"s8\", \"shape\": [3, 3, 3], \"scale\": 1e30",
       "node 'avgpool' (avgpool): input.scale / (output.scale * 4 taps)"},
      {"{\"name\": \"x\", \"tensor\": 0}", "{\"name\": \"x\", \"tensor\": 1}",
       "json: inputs[0].tensor: tensor 1 'xq' is u8, but graph inputs and outputs are f32"},
      {"{\"name\": \"prob\", \"tensor\": 10}", "{\"name\": \"prob\", \"tensor\": 0}",
       "json: outputs[0].tensor: tensor 0 'x' is not written by any node"},
      {"{\"name\": \"pooled\", \"tensor\": 15}", "{\"name\": \"prob\", \"tensor\": 15}",
       "json: outputs[1].name: the name \"prob\" is used twice"},
      {"{\"name\": \"pooled\", \"tensor\": 15}", "{\"name\": \"p2\", \"tensor\": 10}",
       "json: outputs[1].tensor: tensor 10 is listed twice"},
      {"\"metadata\": {\"note\": \"written by model_writer.h\"}", "\"metadata\": " + deep,
       "nesting deeper than 64 levels"},
      {"\"lowbit\": 1", "\"lowbit\": 1, \"lowbit\": 1", "duplicate key \"lowbit\""},
      {"\"layout\": \"hwc\"", "\"layout\": \"nhwc\"",
       "json: tensors[16].layout: expected one of \"chw\", \"hwc\", got \"nhwc\""},
      {"\"name\": \"xh\", \"dtype\": \"f32\", \"shape\": [6, 6, 3], \"layout\": \"hwc\"",
       "\"name\": \"xh\", \"dtype\": \"f32\", \"shape\": [6, 6, 3], \"layout\": \"chw\"",
       "node 'f.to_hwc' (transpose): outputs[0] (tensor 16 'xh'): expected layout hwc"},
      {"\"name\": \"fc\", \"dtype\": \"f32\", \"shape\": [6, 6, 3], \"layout\": \"hwc\"",
       "\"name\": \"fc\", \"dtype\": \"f32\", \"shape\": [6, 6, 3]",
       "node 'f.clamp' (clamp): outputs[0] (tensor 19 'fc'): expected layout hwc"},
      {"\"name\": \"fb\", \"dtype\": \"b1\", \"shape\": [3, 3, 6]",
       "\"name\": \"fb\", \"dtype\": \"b1\", \"shape\": [3, 3, 5]",
       "node 'f.sign' (sign): outputs[0] (tensor 23 'fb'): expected shape [3, 3, 6], got [3, 3, 5]"},
      {"\"clamp\": [-3.0, 3.0]", "\"clamp\": [-3.0, 1e39]",
       "node 'f.clamp' (clamp): json: nodes[18].clamp: expected finite float32 values with lo <= hi"},
      {"\"count_include_pad\": false", "\"count_include_pad\": 0",
       "node 'f.avgpool' (avgpool): json: nodes[22].count_include_pad: expected true or false, got 0"},
      {"\"op\": \"concat\", \"inputs\": [20, 21]", "\"op\": \"concat\", \"inputs\": [20, 19]",
       "node 'f.concat' (concat): inputs[1] (tensor 19 'fc'): expected shape [3, 3, 3], got [6, 6, 3]"},
      {"\"inputs\": [23, 22], \"outputs\": [28, 29]", "\"inputs\": [23, 22], \"outputs\": [28]",
       "node 'f.block' (bconv2d): json: nodes[27].sign_threshold: given without a second output (the sign bits)"},
      {"\"inputs\": [23, 22], \"outputs\": [28, 29]", "\"inputs\": [23, 22], \"outputs\": [28, 28]",
       "node 'f.block' (bconv2d): json: nodes[27].outputs[1]: tensor 28 'fz' is listed twice"},
      {"\"inputs\": [23, 22], \"outputs\": [28, 29]", "\"inputs\": [23, 22], \"outputs\": [28, 25]",
       "node 'f.block' (bconv2d): json: nodes[27].outputs[1]: tensor 25 'fout' is already written by node 'f.to_chw'"},
      {"\"inputs\": [23, 22], \"outputs\": [28, 29]", "\"inputs\": [23, 19], \"outputs\": [28, 29]",
       "node 'f.block' (bconv2d): inputs[1] (tensor 19 'fc'): expected shape [3, 3, 6], got [6, 6, 3]"},
      {"\"op\": \"add\", \"inputs\": [17, 16]", "\"op\": \"add\", \"inputs\": [17, 0]",
       "node 'f.add' (add): inputs[1] (tensor 0 'x'): expected shape [6, 6, 3], got [3, 6, 6]"},
      {"\"nodes\": [", "\"nodes\": [1, ", "json: nodes[0]: expected an object, got 1"},
  };
  for (const Case& c : cases) {
    std::string text = json;
    CHECK(replace_first(text, c.from, c.to), "the fuzz model's JSON has no '" << c.from << "'");
    const Outcome o = try_load(write_container(text, fm.w.sections));
    CHECK(!o.loaded && o.format,
          "'" << c.to << "': expected a format error, got " << (o.loaded ? "success" : o.message));
    CHECK(contains(o.message, c.part), "'" << c.to << "': expected '" << c.part << "' in: " << o.message);
  }
  // Accepted variations: unknown keys, any metadata, 64 nesting levels.
  const Case fine[] = {
      {"\"op\": \"quantize\"", "\"op\": \"quantize\", \"future\": {\"a\": [1, 2]}", ""},
      {"\"metadata\": {\"note\": \"written by model_writer.h\"}", "\"metadata\": [1, \"x\", null, 2.5e-3]", ""},
      {"\"metadata\": {\"note\": \"written by model_writer.h\"}",
       "\"metadata\": " + std::string(63, '[') + std::string(63, ']'), ""},
      {"\"producer\": \"lowbit native tests\"", "\"producer\": \"\\u00e9\\ud83d\\ude00\"", ""},
  };
  for (const Case& c : fine) {
    std::string text = json;
    CHECK(replace_first(text, c.from, c.to), "the fuzz model's JSON has no '" << c.from << "'");
    const Outcome o = try_load(write_container(text, fm.w.sections));
    CHECK(o.loaded, "'" << c.to << "' must load: " << o.message);
  }
}

TEST(model_fuzz_data_mutations_name_the_field) {
  const FuzzModel fm = fuzz_model();
  struct Case {
    const char* what;
    size_t section;
    std::function<void(std::vector<uint8_t>&)> mutate;
    std::string part;
  };
  const Case cases[] = {
      {"int4 padding nibble", fm.conv1_weights, [](auto& d) { d.back() |= 0x80; },
       "node 'conv1' (qconv2d): json: nodes[1].weights: the unused high nibble of the last byte must be zero"},
      {"b1 tail bits", fm.conv2_weights, [](auto& d) { d[23] |= 0x80; },
       "node 'conv2' (bconv2d): json: nodes[3].weights: output channel 0 has bits set beyond K = 135"},
      {"weights that are not the schedule's", fm.conv2_weights, [](auto& d) { d[0] ^= 1; },
       "node 'conv2' (bconv2d): json: nodes[3].mst: the schedule's weights differ from the node's weights"},
      {"a broken schedule", fm.conv2_mst, [](auto& d) { d[0] = 'X'; }, "node 'conv2' (bconv2d): mst file: magic"},
      {"a truncated schedule", fm.conv2_mst, [](auto& d) { d.resize(d.size() - 1); },
       "node 'conv2' (bconv2d): mst file: truncated"},
      {"flip 2", fm.bn_flip, [](auto& d) { d[3] = 2; },
       "node 'bn' (threshold): json: nodes[2].flip: flip[3] must be 0 or 1, got 2"},
      {"shift 63", fm.prelu_shift_pos, [](auto& d) { d[1] = 63; },
       "node 'prelu' (prelu): json: nodes[11].shift_pos: value 1 is 63 (the shift must be in [0, 62])"},
      {"multiplier -2^31", fm.prelu_mult_neg, [](auto& d) { put_u32(d, 8, 0x80000000u); },
       "node 'prelu' (prelu): json: nodes[11].multiplier_neg: value 2 is -2^31"},
      {"NaN scale", fm.fc_scale, [](auto& d) { put_u32(d, 4, 0x7FC00000u); },
       "node 'fc.scale' (affine): json: nodes[8].scale: value 1 is not finite"},
      {"infinite slope", fm.rprelu_slope, [](auto& d) { put_u32(d, 8, 0x7F800000u); },
       "node 'f.rprelu' (prelu): json: nodes[16].slope: value 2 is not finite"},
      {"NaN threshold", fm.rsign_threshold, [](auto& d) { put_u32(d, 20, 0x7FC00000u); },
       "node 'f.sign' (sign): json: nodes[24].threshold: value 5 is NaN"},
  };
  for (const Case& c : cases) {
    std::vector<std::vector<uint8_t>> sections = fm.w.sections;
    c.mutate(sections[c.section - 1]);
    const Outcome o = try_load(write_container(fm.w.json(), sections));
    CHECK(!o.loaded && o.format, c.what << ": expected a format error, got " << (o.loaded ? "success" : o.message));
    CHECK(contains(o.message, c.part), c.what << ": expected '" << c.part << "' in: " << o.message);
  }
}

TEST(model_fuzz_b1_reshape_keeps_packed_rows) {
  // [2, 70] -> [140] would move bits across the row padding; [2, 70] -> [1, 2, 70] only adds a 1.
  auto model = [](std::vector<size_t> to) {
    GraphWriter w;
    const auto x = w.tensor("x", "f32", {2, 70}), q = w.tensor("q", "s8", {2, 70}, 1, 0),
               b = w.tensor("b", "b1", {2, 70});
    const auto r = w.tensor("r", "b1", to), u = w.tensor("u", "s8", to, 1, 0);
    std::vector<size_t> chw = to;
    if (chw.size() == 3) chw = {to[2], to[0], to[1]};
    const auto y = w.tensor("y", "f32", chw);
    w.input("x", x), w.output("y", y);
    w.node("q", "quantize", {x}, q);
    w.node("sign", "sign", {q}, b);
    w.node("reshape", "reshape", {b}, r);
    w.node("unpack", "unpack", {r}, u);
    w.node("dq", "dequantize", {u}, y);
    return try_load(w.file());
  };
  const Outcome bad = model({140});
  CHECK(!bad.loaded &&
            contains(bad.message, "node 'reshape' (reshape): outputs[0] (tensor 3 'r'): a b1 reshape must keep"),
        "b1 [2, 70] -> [140]: " << bad.message);
  CHECK(model({1, 2, 70}).loaded, "b1 [2, 70] -> [1, 2, 70]: " << model({1, 2, 70}).message);
}

TEST(model_fuzz_sample_file) {
  // LOWBIT_MODEL_OUT=path writes the fuzz model there, for smoke tests of the bindings.
  const char* path = std::getenv("LOWBIT_MODEL_OUT");
  if (!path || !*path) return;
  const std::vector<uint8_t> f = fuzz_model().w.file();
  std::FILE* out = std::fopen(path, "wb");
  CHECK(out && std::fwrite(f.data(), 1, f.size(), out) == f.size() && std::fclose(out) == 0, "cannot write " << path);
}

namespace {

// The float layers' fuzz model: x (f32 hwc) -> fconv2d -> reshape -> fdense, in a few hundred bytes
// of data. GraphWriter writes no layout, so the hwc tensors get theirs here.
struct FloatFuzzModel {
  GraphWriter w;
  size_t conv_bias = 0;
  std::string json() const {
    std::string text = w.json();
    for (const char* name : {"x", "y"}) {
      const std::string key = std::string("{\"name\": \"") + name + "\", \"dtype\": \"f32\", ";
      text.replace(text.find(key), key.size(), key + "\"layout\": \"hwc\", ");
    }
    return text;
  }
  std::vector<uint8_t> file() const { return write_container(json(), w.sections); }
};

FloatFuzzModel float_fuzz_model() {
  auto g = rng(410);
  std::uniform_real_distribution<float> u(-1, 1);
  auto values = [&](size_t n) {
    std::vector<float> v(n);
    for (auto& x : v) x = u(g);
    return v;
  };
  FloatFuzzModel f;
  GraphWriter& w = f.w;
  const auto x = w.tensor("x", "f32", {5, 4, 3}), y = w.tensor("y", "f32", {3, 2, 6});
  const auto flat = w.tensor("flat", "f32", {36}), out = w.tensor("out", "f32", {7});
  w.input("x", x), w.output("out", out);
  const std::string bias = w.data(values(6));
  f.conv_bias = last_section(w);
  w.node("conv", "fconv2d", {x}, y,
         "\"kernel\": [3, 3], \"stride\": [2, 2], \"dilation\": [1, 1], \"pads\": [1, 1, 1, 1], \"groups\": 3, "
         "\"weights\": " +
             w.data(values(6 * 9)) + ", \"bias\": " + bias + ", \"clamp\": [-1, 2.5]");
  w.node("flatten", "reshape", {y}, flat);
  w.node("fc", "fdense", {flat}, out, "\"weights\": " + w.data(values(7 * 36)));
  return f;
}

}  // namespace

TEST(model_fuzz_float_layers_name_the_field) {
  const FloatFuzzModel fm = float_fuzz_model();
  const std::string json = fm.json();
  CHECK(try_load(fm.file()).loaded, "the float fuzz model must load: " << try_load(fm.file()).message);
  struct Case {
    std::string from, to, part;
  };
  const Case cases[] = {
      {"\"name\": \"x\", \"dtype\": \"f32\", \"layout\": \"hwc\"", "\"name\": \"x\", \"dtype\": \"f32\"",
       "node 'conv' (fconv2d): inputs[0] (tensor 0 'x'): expected layout hwc ([H, W, C]), got chw"},
      {"\"name\": \"y\", \"dtype\": \"f32\", \"layout\": \"hwc\"", "\"name\": \"y\", \"dtype\": \"f32\"",
       "node 'conv' (fconv2d): outputs[0] (tensor 1 'y'): expected layout hwc ([H, W, C]), got chw"},
      {"\"name\": \"y\", \"dtype\": \"f32\", \"layout\": \"hwc\", \"shape\": [3, 2, 6]",
       "\"name\": \"y\", \"dtype\": \"s32\", \"shape\": [3, 2, 6]",
       "node 'conv' (fconv2d): outputs[0] (tensor 1 'y'): expected dtype f32 or b1, got s32"},
      {"\"shape\": [3, 2, 6]", "\"shape\": [3, 3, 6]",
       "node 'conv' (fconv2d): outputs[0] (tensor 1 'y'): expected shape [3, 2, 6], got [3, 3, 6]"},
      {"\"shape\": [3, 2, 6]", "\"shape\": [3, 2, 7]",
       "node 'conv' (fconv2d): outputs[0] (tensor 1 'y'): 7 channels do not divide into 3 groups"},
      {"\"shape\": [5, 4, 3]", "\"shape\": [5, 4, 4]",
       "node 'conv' (fconv2d): inputs[0] (tensor 0 'x'): 4 channels do not divide into 3 groups"},
      {"\"groups\": 3", "\"groups\": 1",
       "node 'conv' (fconv2d): json: nodes[0].weights: the section holds 216 bytes, expected 648 (162 x f32)"},
      {"\"groups\": 3", "\"groups\": 0", "nodes[0].groups: expected an integer in [1, 16777216], got 0"},
      {"\"kernel\": [3, 3]", "\"kernel\": [3, 1]",
       "node 'conv' (fconv2d): json: nodes[0].weights: the section holds 216 bytes, expected 72 (18 x f32)"},
      {"\"pads\": [1, 1, 1, 1]", "\"pads\": [3, 1, 1, 1]", "node 'conv' (fconv2d): pads [3, 1, 1, 1] must each be"},
      {"\"stride\": [2, 2]", "\"stride\": [0, 2]", "nodes[0].stride[0]: expected an integer in [1, 65535], got 0"},
      {"\"bias\": {\"section\": 1}", "\"bias\": {\"section\": 2}",
       "node 'conv' (fconv2d): json: nodes[0].bias: the section holds 216 bytes, expected 24 (6 x f32)"},
      {"\"clamp\": [-1, 2.5]", "\"clamp\": [2.5, -1]",
       "node 'conv' (fconv2d): json: nodes[0].clamp: expected finite float32 values with lo <= hi"},
      {"\"clamp\": [-1, 2.5]", "\"clamp\": [-1, 1e39]",
       "node 'conv' (fconv2d): json: nodes[0].clamp: expected finite float32 values with lo <= hi"},
      {"\"clamp\": [-1, 2.5]", "\"clamp\": [-1]", "nodes[0].clamp: expected [lo, hi], got 1 values"},
      {"\"weights\": {\"section\": 3}", "\"weights\": {\"section\": 2}",
       "node 'fc' (fdense): json: nodes[2].weights: the section holds 216 bytes, expected 1008 (252 x f32)"},
      {"\"shape\": [36]", "\"shape\": [6, 6]",
       "node 'fc' (fdense): inputs[0] (tensor 2 'flat'): expected rank 1, got shape [6, 6]"},
      {"\"name\": \"out\", \"dtype\": \"f32\", \"shape\": [7]",
       "\"name\": \"out\", \"dtype\": \"f32\", \"shape\": [1, 1, 7]",
       "node 'fc' (fdense): outputs[0] (tensor 3 'out'): expected rank 1, got shape [1, 1, 7]"},
      {"\"op\": \"fdense\", \"inputs\": [2]", "\"op\": \"fdense\", \"inputs\": [2, 2]",
       "node 'fc' (fdense): json: nodes[2].inputs: expected 1 input, got 2"},
  };
  for (const Case& c : cases) {
    std::string text = json;
    CHECK(replace_first(text, c.from, c.to), "the float fuzz model's JSON has no '" << c.from << "'");
    const Outcome o = try_load(write_container(text, fm.w.sections));
    CHECK(!o.loaded && o.format,
          "'" << c.to << "': expected a format error, got " << (o.loaded ? "success" : o.message));
    CHECK(contains(o.message, c.part), "'" << c.to << "': expected '" << c.part << "' in: " << o.message);
  }
  // Every truncation fails to load; every resealed byte flip fails with a format error or loads and runs.
  const std::vector<uint8_t> good = fm.file();
  CHECK(run_once(*try_load(good).model).empty(), "the float fuzz model must run");
  for (size_t n = 0; n < good.size(); ++n) {
    const Outcome o = try_load(good, n);
    CHECK(!o.loaded && o.format, "a file cut at " << n << " of " << good.size() << " bytes: " << o.message);
  }
  for (size_t i = 0; i < good.size(); ++i) {
    std::vector<uint8_t> f = good;
    f[i] ^= 0xFF;
    reseal(f);
    const Outcome o = try_load(f);
    CHECK(o.loaded || o.format, "byte " << i << " flipped and resealed: not a format error: " << o.message);
    if (o.loaded) CHECK(run_once(*o.model).empty(), "byte " << i << " flipped and resealed loads but fails to run");
  }
}
