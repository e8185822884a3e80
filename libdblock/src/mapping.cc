// Copyright (c) dblock authors.
#include "dblock/mapping.h"

#include <sys/mman.h>

#include <cerrno>
#include <utility>

#include <fmt/format.h>

#include "dblock/error.h"

namespace dblock {

Mapping::Mapping(int fd, std::size_t length, off_t offset, std::string_view what, bool writable) {
  void* addr = ::mmap(nullptr, length, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED,
                      fd, offset);
  if (addr == MAP_FAILED) {
    const int err = errno;
    throw Error(err, fmt::format("mmap {} bytes at offset {} of {}", length, offset, what));
  }
  addr_ = addr;
  length_ = length;
}

Mapping Mapping::anonymous(std::size_t length, std::string_view what) {
  void* addr = ::mmap(nullptr, length, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (addr == MAP_FAILED) {
    const int err = errno;
    throw Error(err, fmt::format("mmap {} bytes of memory for {}", length, what));
  }
  Mapping m;
  m.addr_ = addr;
  m.length_ = length;
  return m;
}

Mapping::Mapping(Mapping&& other) noexcept
    : addr_(std::exchange(other.addr_, nullptr)), length_(std::exchange(other.length_, 0)) {}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
  if (this != &other) {
    reset();
    addr_ = std::exchange(other.addr_, nullptr);
    length_ = std::exchange(other.length_, 0);
  }
  return *this;
}

Mapping::~Mapping() { reset(); }

void Mapping::reset() noexcept {
  if (addr_ != nullptr) ::munmap(addr_, length_);
  addr_ = nullptr;
  length_ = 0;
}

}  // namespace dblock
