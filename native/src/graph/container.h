// container.h: the `.lowbit` container (docs/model-format.md, "Container"): header, section
// table and per-section CRC32, checked field by field before any section is used.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace lowbit {

// zlib / IEEE 802.3 CRC32 (Node's zlib.crc32); `crc` continues an earlier result.
uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc = 0);

constexpr uint8_t kModelMagic[8] = {'L', 'O', 'W', 'B', 'I', 'T', '\r', '\n'};
constexpr uint32_t kModelVersion = 1;
constexpr size_t kHeaderBytes = 64, kTableEntryBytes = 32, kMaxSections = 65536;
constexpr size_t kSectionAlign = 64;
constexpr uint32_t kSectionJson = 1, kSectionData = 2;
constexpr size_t kMaxJsonBytes = size_t{64} << 20;

struct Section {
  uint32_t kind = 0;
  const uint8_t* data = nullptr;  // into the caller's buffer
  size_t size = 0;
};

// Validates the container of `size` bytes and returns its sections (pointing into `data`).
// Throws Error(Format) naming the header field or the section index.
std::vector<Section> parse_container(const uint8_t* data, size_t size);

}  // namespace lowbit
