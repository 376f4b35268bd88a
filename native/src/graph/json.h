// json.h: a strict RFC 8259 JSON parser for the model file's graph section, and typed accessors
// whose errors name the JSON path (`json: nodes[3].kernel[1]: expected an integer in [1, 65535], got 0`).
// Every error is Error(ErrorKind::Format). Limits: input <= 64 MiB, nesting depth <= 64, at most
// 2^22 values (so a hostile document cannot make the tree much larger than a real graph), no
// duplicate keys, strings valid UTF-8 (escapes, \uXXXX and surrogate pairs decoded to UTF-8).
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::json {

constexpr size_t kMaxBytes = size_t{64} << 20;
constexpr size_t kMaxDepth = 64;
constexpr size_t kMaxValues = size_t{1} << 22;

enum class Type : uint8_t { Null, Bool, Number, String, Array, Object };

// A parsed document, compact: every value is 16 bytes in one array, and the children of a
// container are contiguous there (an object's as key, value, key, value, ...).
class Document {
 public:
  struct Node {
    Type type;
    bool boolean;
    uint32_t count;  // string bytes, array items or object members
    union {
      double number;
      uint64_t first;  // string: offset into strings_; container: index of its first child
    };
  };

  // Parses `text` (exactly one value, surrounded by optional whitespace). Throws
  // Error(Format, "json: byte N: ...") naming the first offending byte.
  explicit Document(std::string_view text);

  const Node& node(size_t index) const { return nodes_[index]; }
  size_t root() const { return nodes_.size() - 1; }
  std::string_view string(const Node& n) const { return std::string_view(strings_).substr(n.first, n.count); }

 private:
  friend class Parser;
  std::vector<Node> nodes_;
  std::string strings_;  // decoded string contents, back to back
};

// A value of a document with its path, for messages. Cheap to copy around while loading.
class Value {
 public:
  Value(const Document& doc, size_t index, std::string path) : doc_(&doc), index_(index), path_(std::move(path)) {}
  static Value root(const Document& doc) { return Value(doc, doc.root(), ""); }

  Type type() const { return node().type; }
  const std::string& path() const { return path_; }
  // Throws Error(Format, "json: <path>: <message>").
  [[noreturn]] void fail(const std::string& message) const;
  // How the value reads in a message: 0, 1.5, "text", true, null, an array, an object.
  std::string describe() const;

  bool boolean() const;
  double number() const;
  int64_t integer(int64_t lo, int64_t hi) const;  // an integral number inside [lo, hi]
  std::string_view string() const;
  size_t one_of(std::initializer_list<const char*> names) const;  // the index of the string in names

  size_t size() const;  // array length; fails unless an array
  Value operator[](size_t i) const;
  void expect_object() const;
  std::optional<Value> find(std::string_view key) const;  // a member of an object, if present
  Value get(std::string_view key) const;                  // a required member

 private:
  const Document::Node& node() const { return doc_->node(index_); }
  const Document* doc_;
  size_t index_;
  std::string path_;
};

}  // namespace lowbit::json
