// json.cc: the strict JSON parser (recursive descent, depth-limited) and the path-naming accessors.
#include "graph/json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "lowbit/error.h"

namespace lowbit::json {

class Parser {
 public:
  Parser(std::string_view text, Document& doc) : s_(text), doc_(doc) {}

  void parse() {
    if (s_.size() > kMaxBytes)
      fail_at(0, "the document is " + std::to_string(s_.size()) + " bytes, more than the " +
                     std::to_string(kMaxBytes >> 20) + " MiB limit");
    skip_space();
    value(1);
    skip_space();
    if (pos_ != s_.size()) fail_at(pos_, "unexpected data after the JSON value");
    doc_.nodes_.push_back(stack_.back());  // the root, last
  }

 private:
  using Node = Document::Node;

  [[noreturn]] void fail_at(size_t at, const std::string& message) {
    fail(ErrorKind::Format, "json: byte " + std::to_string(at) + ": " + message);
  }

  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }

  char peek() {
    if (pos_ >= s_.size()) fail_at(pos_, "unexpected end of input");
    return s_[pos_];
  }

  void expect(char c, const char* what) {
    if (peek() != c) fail_at(pos_, std::string("expected ") + what);
    ++pos_;
  }

  void push(const Node& n) {
    if (++values_ > kMaxValues) fail_at(pos_, "more than " + std::to_string(kMaxValues) + " values");
    stack_.push_back(n);
  }

  void literal(std::string_view word, Node n) {
    if (s_.substr(pos_, word.size()) != word) fail_at(pos_, "invalid literal (expected a JSON value)");
    pos_ += word.size();
    push(n);
  }

  void value(size_t depth) {
    Node n{};
    switch (peek()) {
      case '{':
        return object(depth);
      case '[':
        return array(depth);
      case '"':
        n.type = Type::String;
        string(n);
        return push(n);
      case 't':
        n.type = Type::Bool, n.boolean = true;
        return literal("true", n);
      case 'f':
        n.type = Type::Bool, n.boolean = false;
        return literal("false", n);
      case 'n':
        n.type = Type::Null;
        return literal("null", n);
      default:
        n.type = Type::Number;
        n.number = number();
        return push(n);
    }
  }

  // Moves the children pushed since `mark` into the document, contiguous, and pushes the container.
  void close(size_t mark, Type type, uint32_t count) {
    Node n{};
    n.type = type;
    n.count = count;
    n.first = doc_.nodes_.size();
    doc_.nodes_.insert(doc_.nodes_.end(), stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    push(n);
  }

  // Containers count the nesting depth (the root's is 1).
  void open(size_t depth) {
    if (depth > kMaxDepth) fail_at(pos_, "nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    ++pos_;
    skip_space();
  }

  void array(size_t depth) {
    const size_t mark = stack_.size();
    open(depth);
    uint32_t count = 0;
    if (peek() != ']') {
      for (;;) {
        skip_space();
        value(depth + 1);
        ++count;
        skip_space();
        if (peek() == ']') break;
        expect(',', "',' or ']' in an array");
      }
    }
    ++pos_;
    close(mark, Type::Array, count);
  }

  void object(size_t depth) {
    const size_t mark = stack_.size(), start = pos_;
    open(depth);
    uint32_t count = 0;
    if (peek() != '}') {
      for (;;) {
        skip_space();
        if (peek() != '"') fail_at(pos_, "expected a string key in an object");
        Node key{};
        key.type = Type::String;
        string(key);
        push(key);
        skip_space();
        expect(':', "':' after an object key");
        skip_space();
        value(depth + 1);
        ++count;
        skip_space();
        if (peek() == '}') break;
        expect(',', "',' or '}' in an object");
      }
    }
    ++pos_;
    check_unique_keys(mark, count, start);
    close(mark, Type::Object, count);
  }

  void check_unique_keys(size_t mark, uint32_t count, size_t start) {
    std::vector<std::string_view> keys(count);
    for (uint32_t i = 0; i < count; ++i) keys[i] = doc_.string(stack_[mark + 2 * i]);
    std::sort(keys.begin(), keys.end());
    const auto dup = std::adjacent_find(keys.begin(), keys.end());
    if (dup != keys.end()) fail_at(start, "the object has a duplicate key \"" + std::string(*dup) + "\"");
  }

  static bool is_digit(char c) { return c >= '0' && c <= '9'; }

  double number() {
    const size_t start = pos_;
    auto digits = [&] {
      const size_t from = pos_;
      while (pos_ < s_.size() && is_digit(s_[pos_])) ++pos_;
      if (pos_ == from) fail_at(pos_, pos_ == start ? "expected a JSON value" : "expected a digit in a number");
    };
    if (s_[pos_] == '-') ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '0') {
      ++pos_;
      if (pos_ < s_.size() && is_digit(s_[pos_])) fail_at(start, "a number must not have a leading zero");
    } else {
      digits();
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      digits();
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      digits();
    }
    double v = 0;
    const auto r = std::from_chars(s_.data() + start, s_.data() + pos_, v);
    if (r.ec != std::errc() || r.ptr != s_.data() + pos_ || !std::isfinite(v))
      fail_at(start, "the number " + std::string(s_.substr(start, std::min<size_t>(pos_ - start, 40))) +
                         " is outside the range of a double");
    return v;
  }

  uint32_t hex4() {
    if (s_.size() - pos_ < 4) fail_at(pos_, "unexpected end of input in a \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      v <<= 4;
      if (is_digit(c))
        v |= c - '0';
      else if (c >= 'a' && c <= 'f')
        v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        v |= c - 'A' + 10;
      else
        fail_at(pos_ - 1, "expected 4 hex digits after \\u");
    }
    return v;
  }

  void put_utf8(uint32_t cp) {
    std::string& out = doc_.strings_;
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // The length of the valid UTF-8 sequence at pos_ (lead byte >= 0x80), or 0: no overlong forms,
  // no surrogates, nothing above U+10FFFF.
  size_t utf8_length() {
    const auto b = [&](size_t i) { return pos_ + i < s_.size() ? static_cast<uint8_t>(s_[pos_ + i]) : 0; };
    const auto cont = [&](size_t i) { return (b(i) & 0xC0) == 0x80; };
    const uint8_t c = b(0);
    if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
      const uint8_t lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
      return b(1) >= lo && b(1) <= hi && cont(2) ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
      const uint8_t lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
      return b(1) >= lo && b(1) <= hi && cont(2) && cont(3) ? 4 : 0;
    }
    return 0;
  }

  // A string at pos_ (on its opening quote), decoded into the document's string pool.
  void string(Node& n) {
    ++pos_;
    n.first = doc_.strings_.size();
    std::string& out = doc_.strings_;
    for (;;) {
      if (pos_ >= s_.size()) fail_at(pos_, "unexpected end of input in a string");
      const char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        break;
      }
      if (static_cast<uint8_t>(c) < 0x20) fail_at(pos_, "a control character must be escaped in a string");
      if (static_cast<uint8_t>(c) >= 0x80) {
        const size_t len = utf8_length();
        if (len == 0) fail_at(pos_, "invalid UTF-8 in a string");
        out.append(s_.substr(pos_, len));
        pos_ += len;
        continue;
      }
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      const size_t escape = pos_++;
      switch (peek()) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          ++pos_;
          uint32_t cp = hex4();
          if (cp >= 0xDC00 && cp <= 0xDFFF) fail_at(escape, "a lone low surrogate \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s_.substr(pos_, 2) != "\\u") fail_at(escape, "a high surrogate \\u escape without its low surrogate");
            pos_ += 2;
            const uint32_t low = hex4();
            if (low < 0xDC00 || low > 0xDFFF) fail_at(escape, "a high surrogate \\u escape without its low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          put_utf8(cp);
          continue;
        }
        default:
          fail_at(escape, "invalid escape in a string");
      }
      ++pos_;
    }
    n.count = static_cast<uint32_t>(out.size() - n.first);
  }

  std::string_view s_;
  Document& doc_;
  size_t pos_ = 0;
  size_t values_ = 0;
  std::vector<Node> stack_;  // values whose container is still open
};

Document::Document(std::string_view text) { Parser(text, *this).parse(); }

// ---- accessors ---------------------------------------------------------------------------------------

namespace {

std::string format_number(double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

}  // namespace

void Value::fail(const std::string& message) const {
  lowbit::fail(ErrorKind::Format, "json: " + (path_.empty() ? std::string("(the document)") : path_) + ": " + message);
}

std::string Value::describe() const {
  const Document::Node& n = node();
  switch (n.type) {
    case Type::Null:
      return "null";
    case Type::Bool:
      return n.boolean ? "true" : "false";
    case Type::Number:
      return format_number(n.number);
    case Type::String: {
      const std::string_view s = doc_->string(n);
      return "\"" + std::string(s.substr(0, 40)) + (s.size() > 40 ? "...\"" : "\"");
    }
    case Type::Array:
      return "an array";
    case Type::Object:
      return "an object";
  }
  return "?";
}

bool Value::boolean() const {
  if (type() != Type::Bool) fail("expected true or false, got " + describe());
  return node().boolean;
}

double Value::number() const {
  if (type() != Type::Number) fail("expected a number, got " + describe());
  return node().number;
}

int64_t Value::integer(int64_t lo, int64_t hi) const {
  const double v = type() == Type::Number ? node().number : NAN;
  // Every bound used fits a double exactly; v is integral and inside, so the cast is exact.
  if (!(v >= static_cast<double>(lo) && v <= static_cast<double>(hi)) || v != std::floor(v))
    fail("expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + describe());
  return static_cast<int64_t>(v);
}

std::string_view Value::string() const {
  if (type() != Type::String) fail("expected a string, got " + describe());
  return doc_->string(node());
}

size_t Value::one_of(std::initializer_list<const char*> names) const {
  const std::string_view s = string();
  std::string list;
  size_t i = 0;
  for (const char* n : names) {
    if (s == n) return i;
    list += (i++ ? ", \"" : "\"") + std::string(n) + "\"";
  }
  fail("expected one of " + list + ", got " + describe());
}

size_t Value::size() const {
  if (type() != Type::Array) fail("expected an array, got " + describe());
  return node().count;
}

Value Value::operator[](size_t i) const {
  if (i >= size()) fail("index " + std::to_string(i) + " is past the end");
  return Value(*doc_, node().first + i, path_ + "[" + std::to_string(i) + "]");
}

void Value::expect_object() const {
  if (type() != Type::Object) fail("expected an object, got " + describe());
}

std::optional<Value> Value::find(std::string_view key) const {
  expect_object();
  const Document::Node& n = node();
  for (size_t i = 0; i < n.count; ++i) {
    const size_t k = n.first + 2 * i;
    if (doc_->string(doc_->node(k)) == key)
      return Value(*doc_, k + 1, path_.empty() ? std::string(key) : path_ + "." + std::string(key));
  }
  return std::nullopt;
}

Value Value::get(std::string_view key) const {
  auto v = find(key);
  if (!v) fail("missing field '" + std::string(key) + "'");
  return *v;
}

}  // namespace lowbit::json
