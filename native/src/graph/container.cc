// container.cc: CRC32 and the container checks of a `.lowbit` file.
#include "graph/container.h"

#include <array>
#include <cstdio>
#include <cstring>
#include <string>

#include "lowbit/error.h"

namespace lowbit {
namespace {

constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();

// Little-endian reads: the file's byte order, whatever the host's.
uint32_t u32_at(const uint8_t* p) { return p[0] | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24; }
uint64_t u64_at(const uint8_t* p) { return u32_at(p) | uint64_t{u32_at(p + 4)} << 32; }

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

[[noreturn]] void bad(const std::string& where, const std::string& message) {
  fail(ErrorKind::Format, where + ": " + message);
}

bool all_zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i] != 0) return false;
  return true;
}

}  // namespace

uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc) {
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = kCrcTable[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

std::vector<Section> parse_container(const uint8_t* data, size_t size) {
  if (size < kHeaderBytes)
    bad("header", "the file is " + std::to_string(size) + " bytes, shorter than the " + std::to_string(kHeaderBytes) +
                      "-byte header");
  if (std::memcmp(data, kModelMagic, 8) != 0) bad("header", "magic: not a .lowbit file (expected \"LOWBIT\\r\\n\")");
  const uint32_t version = u32_at(data + 8);
  if (version != kModelVersion)
    bad("header", "format version " + std::to_string(version) + " is not supported (expected " +
                      std::to_string(kModelVersion) + ")");
  const uint32_t count = u32_at(data + 12);
  if (count < 1 || count > kMaxSections)
    bad("header", "section count " + std::to_string(count) + " must be in [1, " + std::to_string(kMaxSections) + "]");
  const uint64_t file_size = u64_at(data + 16);
  if (file_size != size)
    bad("header",
        "file size " + std::to_string(file_size) + " does not match the buffer (" + std::to_string(size) + " bytes)");
  const size_t table_end = kHeaderBytes + kTableEntryBytes * count;  // <= 2 MiB + 64: no overflow
  if (table_end > size)
    bad("header", "the section table (" + std::to_string(count) + " entries, up to byte " + std::to_string(table_end) +
                      ") does not fit in the file (" + std::to_string(size) + " bytes)");
  const uint8_t zero[4] = {0, 0, 0, 0};
  uint32_t crc = crc32(data, 24);
  crc = crc32(zero, 4, crc);
  crc = crc32(data + 28, table_end - 28, crc);
  if (crc != u32_at(data + 24))
    bad("header",
        "crc32 " + hex(u32_at(data + 24)) + " does not match the header and section table (" + hex(crc) + ")");
  if (!all_zero(data + 28, kHeaderBytes - 28)) bad("header", "reserved bytes 28..63 must be zero");

  std::vector<Section> sections(count);
  std::vector<uint32_t> crcs(count);
  uint64_t end = table_end;  // where the previous section (or the table) ends
  for (size_t i = 0; i < count; ++i) {
    const std::string where = "section " + std::to_string(i);
    const uint8_t* entry = data + kHeaderBytes + kTableEntryBytes * i;
    const uint32_t kind = u32_at(entry);
    const uint64_t offset = u64_at(entry + 8), length = u64_at(entry + 16);
    if (kind != kSectionJson && kind != kSectionData)
      bad(where, "kind " + std::to_string(kind) + " is neither 1 (JSON graph) nor 2 (data)");
    if ((i == 0) != (kind == kSectionJson))
      bad(where,
          i == 0 ? "kind must be 1: section 0 is the JSON graph" : "kind 1 (JSON graph) is only valid for section 0");
    if (u64_at(entry + 24) != 0) bad(where, "the reserved field must be zero");
    if (offset % kSectionAlign != 0)
      bad(where, "offset " + std::to_string(offset) + " is not a multiple of " + std::to_string(kSectionAlign));
    if (offset < end)
      bad(where, "offset " + std::to_string(offset) + " overlaps " +
                     (i == 0 ? std::string("the header and section table") : "section " + std::to_string(i - 1)) +
                     " (which ends at byte " + std::to_string(end) + ")");
    if (offset > size || length > size - offset)
      bad(where, "offset " + std::to_string(offset) + " + length " + std::to_string(length) +
                     " runs past the end of the file (" + std::to_string(size) + " bytes)");
    if (kind == kSectionJson && length > kMaxJsonBytes)
      bad(where, "the JSON graph is " + std::to_string(length) + " bytes, more than the " +
                     std::to_string(kMaxJsonBytes >> 20) + " MiB limit");
    if (!all_zero(data + end, offset - end))
      bad(where,
          "the padding before it (bytes " + std::to_string(end) + ".." + std::to_string(offset - 1) + ") must be zero");
    sections[i] = Section{kind, data + offset, static_cast<size_t>(length)};
    crcs[i] = u32_at(entry + 4);
    end = offset + length;
  }
  if (!all_zero(data + end, size - end))
    bad("file", "the bytes after the last section (" + std::to_string(end) + ".." + std::to_string(size - 1) +
                    ") must be zero");
  // CRCs last: the structure is sound, so every range read here lies inside the file.
  for (size_t i = 0; i < count; ++i) {
    const uint32_t actual = crc32(sections[i].data, sections[i].size);
    if (actual != crcs[i])
      bad("section " + std::to_string(i), "crc32 " + hex(crcs[i]) + " does not match the data (" + hex(actual) + ")");
  }
  return sections;
}

}  // namespace lowbit
