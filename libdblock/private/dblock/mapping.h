// Copyright (c) dblock authors.
#ifndef DBLOCK_MAPPING_H_
#define DBLOCK_MAPPING_H_

#include <sys/types.h>

#include <cstddef>
#include <span>
#include <string_view>

namespace dblock {

// A shared read-write mapping of part of a file, or private anonymous
// memory, unmapped on destruction.
// Thread-safety: the object is immutable; the mapped bytes are not guarded.
class Mapping {
 public:
  Mapping() = default;
  // Maps `length` bytes of `fd` at `offset`, shared, read-write or (not
  // `writable`) read-only; `what` names the file in errors.
  Mapping(int fd, std::size_t length, off_t offset, std::string_view what, bool writable = true);
  // `length` bytes of private memory that read as zeroes and take memory
  // only where written (MAP_NORESERVE); `what` names it in errors.
  static Mapping anonymous(std::size_t length, std::string_view what);
  Mapping(Mapping&& other) noexcept;
  Mapping& operator=(Mapping&& other) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();

  std::span<std::byte> bytes() const noexcept {
    return {static_cast<std::byte*>(addr_), length_};
  }

 private:
  void reset() noexcept;

  void* addr_ = nullptr;
  std::size_t length_ = 0;
};

}  // namespace dblock

#endif  // DBLOCK_MAPPING_H_
