// model_writer.h: a test-only writer of `.lowbit` files (docs/model-format.md): a graph built
// tensor by tensor and node by node as JSON text, data sections, and the container with its CRCs.
// reseal() recomputes the CRCs of a deliberately corrupted file, so tests reach the checks behind them.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "graph/container.h"

namespace lowbit::test {

inline void put_u32(std::vector<uint8_t>& f, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) f[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void put_u64(std::vector<uint8_t>& f, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) f[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint32_t get_u32(const std::vector<uint8_t>& f, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{f[at + i]} << (8 * i);
  return v;
}
inline uint64_t get_u64(const std::vector<uint8_t>& f, size_t at) {
  return get_u32(f, at) | uint64_t{get_u32(f, at + 4)} << 32;
}

// Recomputes the header CRC and the CRC of every section that lies inside the file, in place.
inline void reseal(std::vector<uint8_t>& f) {
  if (f.size() < kHeaderBytes) return;
  const uint64_t count = get_u32(f, 12);
  const uint64_t table_end = kHeaderBytes + kTableEntryBytes * count;
  if (table_end > f.size()) return;
  for (uint64_t i = 0; i < count; ++i) {
    const size_t entry = kHeaderBytes + kTableEntryBytes * i;
    const uint64_t offset = get_u64(f, entry + 8), length = get_u64(f, entry + 16);
    if (offset <= f.size() && length <= f.size() - offset) put_u32(f, entry + 4, crc32(f.data() + offset, length));
  }
  put_u32(f, 24, 0);
  put_u32(f, 24, crc32(f.data(), table_end));
}

// Section 0 = json, then the data sections, each at the next multiple of 64, zero padding.
inline std::vector<uint8_t> write_container(const std::string& json, const std::vector<std::vector<uint8_t>>& data) {
  std::vector<std::pair<const uint8_t*, size_t>> sections{{reinterpret_cast<const uint8_t*>(json.data()), json.size()}};
  for (const auto& d : data) sections.push_back({d.data(), d.size()});
  const size_t count = sections.size();
  size_t at = kHeaderBytes + kTableEntryBytes * count;
  std::vector<size_t> offsets;
  for (const auto& s : sections) {
    at = (at + 63) / 64 * 64;
    offsets.push_back(at);
    at += s.second;
  }
  std::vector<uint8_t> f(at, 0);
  std::memcpy(f.data(), kModelMagic, 8);
  put_u32(f, 8, kModelVersion);
  put_u32(f, 12, static_cast<uint32_t>(count));
  put_u64(f, 16, f.size());
  for (size_t i = 0; i < count; ++i) {
    const size_t entry = kHeaderBytes + kTableEntryBytes * i;
    put_u32(f, entry, i == 0 ? kSectionJson : kSectionData);
    put_u64(f, entry + 8, offsets[i]);
    put_u64(f, entry + 16, sections[i].second);
    if (sections[i].second) std::memcpy(f.data() + offsets[i], sections[i].first, sections[i].second);
  }
  reseal(f);
  return f;
}

inline std::string json_number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

template <typename T>
std::string json_list(const std::vector<T>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + json_number(static_cast<double>(v[i]));
  return s + "]";
}

// A graph in the making. Attributes of a node are JSON members written by the test, e.g.
//   g.node("conv", "qconv2d", {1}, 2, "\"kernel\": [3, 3], \"weights\": " + g.data(w));
class GraphWriter {
 public:
  // An 8-bit tensor needs scale > 0; other dtypes leave it 0 (no scale or zero point written).
  uint32_t tensor(const std::string& name, const std::string& dtype, const std::vector<size_t>& shape, double scale = 0,
                  int zero_point = 0) {
    std::string t = "{\"name\": \"" + name + "\", \"dtype\": \"" + dtype + "\", \"shape\": " + json_list(shape);
    if (scale > 0) t += ", \"scale\": " + json_number(scale) + ", \"zero_point\": " + std::to_string(zero_point);
    tensors_.push_back(t + "}");
    return static_cast<uint32_t>(tensors_.size() - 1);
  }
  // A rank-3 f32 tensor in layout hwc ([H, W, C]: a float activation inside the graph).
  uint32_t tensor_hwc(const std::string& name, const std::vector<size_t>& shape) {
    tensors_.push_back("{\"name\": \"" + name + "\", \"dtype\": \"f32\", \"shape\": " + json_list(shape) +
                       ", \"layout\": \"hwc\"}");
    return static_cast<uint32_t>(tensors_.size() - 1);
  }
  void input(const std::string& name, uint32_t t) { inputs_.push_back(io(name, t)); }
  void output(const std::string& name, uint32_t t) { outputs_.push_back(io(name, t)); }
  void node(const std::string& name, const std::string& op, const std::vector<uint32_t>& ins, uint32_t out,
            const std::string& attrs = "") {
    node(name, op, ins, std::vector<uint32_t>{out}, attrs);
  }
  void node(const std::string& name, const std::string& op, const std::vector<uint32_t>& ins,
            const std::vector<uint32_t>& outs, const std::string& attrs = "") {
    nodes_.push_back("{\"name\": \"" + name + "\", \"op\": \"" + op + "\", \"inputs\": " + json_list(ins) +
                     ", \"outputs\": " + json_list(outs) + (attrs.empty() ? "" : ", " + attrs) + "}");
  }
  // A new data section holding `values`; returns the field's JSON, {"section": k}.
  template <typename T>
  std::string data(const std::vector<T>& values) {
    std::vector<uint8_t> bytes(values.size() * sizeof(T));
    if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
    sections.push_back(std::move(bytes));
    return "{\"section\": " + std::to_string(sections.size()) + "}";
  }
  std::string json() const {
    return "{\"lowbit\": 1, \"producer\": \"lowbit native tests\",\n \"inputs\": " + join(inputs_) +
           ",\n \"outputs\": " + join(outputs_) + ",\n \"tensors\": " + join(tensors_) +
           ",\n \"nodes\": " + join(nodes_) + ",\n \"metadata\": {\"note\": \"written by model_writer.h\"}}";
  }
  std::vector<uint8_t> file() const { return write_container(json(), sections); }

  std::vector<std::vector<uint8_t>> sections;  // data sections 1, 2, ...

 private:
  static std::string io(const std::string& name, uint32_t t) {
    return "{\"name\": \"" + name + "\", \"tensor\": " + std::to_string(t) + "}";
  }
  static std::string join(const std::vector<std::string>& items) {
    std::string s = "[";
    for (size_t i = 0; i < items.size(); ++i) s += (i ? ",\n  " : "") + items[i];
    return s + "]";
  }
  std::vector<std::string> tensors_, inputs_, outputs_, nodes_;
};

}  // namespace lowbit::test
