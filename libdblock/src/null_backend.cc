// Copyright (c) dblock authors.
#include "dblock/null_backend.h"

#include "backend_internal.h"

namespace dblock {

void NullBackend::read(std::uint64_t offset, std::span<std::byte> out) {
  internal::check_range("read", offset, out.size(), size_);
}

void NullBackend::write(std::uint64_t offset, std::span<const std::byte> data, bool /*fua*/) {
  internal::check_range("write", offset, data.size(), size_);
}

void NullBackend::discard(std::uint64_t offset, std::uint64_t length) {
  internal::check_range("discard", offset, length, size_);
}

void NullBackend::write_zeroes(std::uint64_t offset, std::uint64_t length, bool /*may_unmap*/) {
  internal::check_range("write zeroes", offset, length, size_);
}

}  // namespace dblock
