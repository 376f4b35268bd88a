// node_builder.cc: attribute, tensor and data-section checks shared by every operator's loader.
#include "graph/node_builder.h"

#include <cmath>

#include "common/checked_math.h"

namespace lowbit {

// Data sections are little-endian and copied as they are.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the model loader assumes a little-endian host");

namespace {

std::string shape_string(const std::vector<size_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "f32";
    case DType::U8:
      return "u8";
    case DType::S8:
      return "s8";
    case DType::S32:
      return "s32";
    case DType::B1:
      return "b1";
  }
  return "?";
}

std::string NodeBuilder::tensor_name(uint32_t index) const {
  return "tensor " + std::to_string(index) + " '" + graph_.tensors[index].name + "'";
}

std::string NodeBuilder::input_name(size_t i) const {
  return "inputs[" + std::to_string(i) + "] (" + tensor_name(inputs_[i]) + ")";
}

std::string NodeBuilder::output_name(size_t i) const {
  return "outputs[" + std::to_string(i) + "] (" + tensor_name(outputs_[i]) + ")";
}

void NodeBuilder::expect_dtype(const TensorDesc& t, const std::string& role,
                               std::initializer_list<DType> allowed) const {
  std::string names;
  for (DType d : allowed) {
    if (d == t.dtype) return;
    names += (names.empty() ? "" : " or ") + std::string(dtype_name(d));
  }
  fail(role + ": expected dtype " + names + ", got " + dtype_name(t.dtype));
}

void NodeBuilder::expect_rank(const TensorDesc& t, const std::string& role, size_t rank) const {
  if (t.shape.size() != rank)
    fail(role + ": expected rank " + std::to_string(rank) + ", got shape " + shape_string(t.shape));
}

void NodeBuilder::expect_shape(const TensorDesc& t, const std::string& role, const std::vector<size_t>& shape) const {
  if (t.shape != shape) fail(role + ": expected shape " + shape_string(shape) + ", got " + shape_string(t.shape));
}

void NodeBuilder::expect_layout(const TensorDesc& t, const std::string& role, bool hwc) const {
  if (t.dtype != DType::F32 || t.shape.size() != 3 || t.hwc == hwc) return;
  fail(role +
       (hwc ? ": expected layout hwc (an activation inside the graph), got chw" : ": expected layout chw, got hwc"));
}

void NodeBuilder::expect_same_parameters(const TensorDesc& a, const std::string& role_a, const TensorDesc& b,
                                         const std::string& role_b) const {
  if (a.dtype != b.dtype)
    fail(role_b + ": expected the dtype of " + role_a + " (" + dtype_name(a.dtype) + "), got " + dtype_name(b.dtype));
  if (a.is_8bit() && (a.scale != b.scale || a.zero_point != b.zero_point))
    fail(role_b + ": expected the scale and zero point of " + role_a);
}

std::vector<size_t> NodeBuilder::integers(const char* key, size_t count, int64_t lo, int64_t hi) const {
  const json::Value v = json.get(key);
  if (v.size() != count)
    v.fail("expected an array of " + std::to_string(count) + " integers, got " + std::to_string(v.size()) + " values");
  std::vector<size_t> out(count);
  for (size_t i = 0; i < count; ++i) out[i] = static_cast<size_t>(v[i].integer(lo, hi));
  return out;
}

size_t NodeBuilder::choice(const char* key, std::initializer_list<const char*> allowed, int fallback) const {
  const auto v = json.find(key);
  if (!v) {
    if (fallback < 0) json.get(key);  // throws: missing field
    return static_cast<size_t>(fallback);
  }
  return v->one_of(allowed);
}

// Kernels, strides and dilations up to 65535; pads below that too (conv2d_shape then requires each
// pad to be smaller than the dilated kernel).
constexpr int64_t kMaxWindow = 65535;

std::pair<size_t, size_t> NodeBuilder::kernel() const {
  const auto k = integers("kernel", 2, 1, kMaxWindow);
  return {k[0], k[1]};
}

Conv2dParams NodeBuilder::conv_params(bool with_pad_value) const {
  const auto stride = integers("stride", 2, 1, kMaxWindow), dilation = integers("dilation", 2, 1, kMaxWindow);
  const auto pads = integers("pads", 4, 0, kMaxWindow);
  Conv2dParams p{stride[0], stride[1], dilation[0], dilation[1], pads[0], pads[1], pads[2], pads[3], PadValue::One};
  if (with_pad_value) p.pad_value = choice("pad_value", {"zero", "one"}) == 0 ? PadValue::Zero : PadValue::One;
  return p;
}

Pool2dParams NodeBuilder::pool_params() const {
  const auto [kh, kw] = kernel();
  const auto stride = integers("stride", 2, 1, kMaxWindow);
  const auto pads = integers("pads", 4, 0, kMaxWindow);
  return Pool2dParams{kh, kw, stride[0], stride[1], pads[0], pads[1], pads[2], pads[3]};
}

std::pair<int32_t, int32_t> NodeBuilder::clamp(const TensorDesc& out) const {
  const int64_t min = out.is_signed() ? -128 : 0, max = out.is_signed() ? 127 : 255;
  const json::Value v = json.get("clamp");
  if (v.size() != 2) v.fail("expected [lo, hi], got " + std::to_string(v.size()) + " values");
  const int64_t lo = v[0].integer(min, max), hi = v[1].integer(min, max);
  if (lo > hi) v.fail("expected lo <= hi, got [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return {static_cast<int32_t>(lo), static_cast<int32_t>(hi)};
}

std::pair<float, float> NodeBuilder::float_clamp() const {
  const auto v = json.find("clamp");
  if (!v) return {-INFINITY, INFINITY};
  if (v->size() != 2) v->fail("expected [lo, hi], got " + std::to_string(v->size()) + " values");
  const float lo = static_cast<float>((*v)[0].number()), hi = static_cast<float>((*v)[1].number());
  if (!std::isfinite(lo) || !std::isfinite(hi) || lo > hi) v->fail("expected finite float32 values with lo <= hi");
  return {lo, hi};
}

std::vector<float> NodeBuilder::finite_floats(const char* key, size_t count) const {
  std::vector<float> values = data<float>(key, count, "f32");
  for (size_t i = 0; i < count; ++i)
    if (!std::isfinite(values[i])) json.get(key).fail("value " + std::to_string(i) + " is not finite");
  return values;
}

std::vector<float> NodeBuilder::optional_finite_floats(const char* key, size_t count, float fallback) const {
  return json.find(key) ? finite_floats(key, count) : std::vector<float>(count, fallback);
}

std::pair<const uint8_t*, size_t> NodeBuilder::section_bytes(const char* key) const {
  const json::Value field = json.get(key);
  field.expect_object();
  const json::Value index = field.get("section");
  // Section 0 is the JSON graph; the container made sure every later one is a data section.
  const int64_t last = static_cast<int64_t>(sections_.size()) - 1;
  if (last < 1) index.fail("the file has no data sections");
  const size_t k = static_cast<size_t>(index.integer(1, last));
  return {sections_[k].data, sections_[k].size};
}

std::pair<const uint8_t*, size_t> NodeBuilder::section_bytes(const char* key, size_t count, size_t size,
                                                             const char* what) const {
  const auto bytes = section_bytes(key);
  const size_t want = checked_mul(count, size, "data size");
  if (bytes.second != want)
    json.get(key).fail("the section holds " + std::to_string(bytes.second) + " bytes, expected " +
                       std::to_string(want) + " (" + std::to_string(count) + " x " + what + ")");
  return bytes;
}

const OpInfo* find_op(std::string_view name) {
  for (OpTable table : {conv_ops(), small_ops(), float_ops()})
    for (size_t i = 0; i < table.count; ++i)
      if (name == table.ops[i].name) return &table.ops[i];
  return nullptr;
}

}  // namespace lowbit
