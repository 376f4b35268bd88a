// error.h: the one exception type the kernel library throws; bindings map it to a JS error class.
#pragma once
#include <stdexcept>
#include <string>

namespace lowbit {

// Which JS error class a failure maps to. Shape: tensor shapes/lengths disagree; Type: wrong kind
// of value; Range: a value outside its allowed range; Unsupported: the CPU or build lacks a feature;
// Quantization: a scale or multiplier that has no integer representation (zero, NaN, ...);
// Format: a model file that breaks docs/model-format.md (the message names the section or JSON path).
enum class ErrorKind { Shape, Type, Range, Unsupported, Quantization, Format, Internal };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

[[noreturn]] inline void fail(ErrorKind kind, const std::string& message) { throw Error(kind, message); }

}  // namespace lowbit
