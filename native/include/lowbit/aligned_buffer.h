// aligned_buffer.h: owned, 64-byte aligned storage (packed weights, scratch); new memory is zeroed, reused
// memory keeps its old contents (callers overwrite what they use).
#pragma once
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "lowbit/error.h"

namespace lowbit {

template <typename T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t count) { resize(count); }

  // Grows (never shrinks); contents are unspecified after a resize.
  void resize(size_t count) {
    if (count <= capacity_) {
      size_ = count;
      return;
    }
    // The same checks (and messages) as checked_mul / checked_add in src/common/checked_math.h,
    // written out because this header is public.
    size_t bytes;
    if (__builtin_mul_overflow(count, sizeof(T), &bytes) || __builtin_add_overflow(bytes, size_t{63}, &bytes))
      fail(ErrorKind::Range, "buffer size overflows size_t");
    bytes = bytes / 64 * 64;
    void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
    if (p == nullptr) throw std::bad_alloc();
    std::memset(p, 0, bytes == 0 ? 64 : bytes);
    data_.reset(static_cast<T*>(p));
    size_ = capacity_ = count;
  }

  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  size_t size() const { return size_; }
  T& operator[](size_t i) { return data_.get()[i]; }
  const T& operator[](size_t i) const { return data_.get()[i]; }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T, Free> data_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace lowbit
