// Copyright (c) dblock authors.
#include "backend_internal.h"
#include "dblock/async_backend.h"
#include "dblock/backend.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <span>

#include <fmt/format.h>

#include "dblock/error.h"

namespace dblock::internal {

void check_range(std::string_view op, std::uint64_t offset, std::size_t length,
                 std::uint64_t size) {
  if (offset > size || length > size - offset) {
    throw Error(EIO, fmt::format("{} {} bytes at offset {}: beyond the end ({} bytes)", op, length,
                                 offset, size));
  }
}

}  // namespace dblock::internal

namespace dblock {

void Backend::discard(std::uint64_t offset, std::uint64_t length) {
  throw Error(EOPNOTSUPP, fmt::format("discard {} bytes at offset {}: not supported by this backend",
                                      length, offset));
}

void Backend::write_zeroes(std::uint64_t offset, std::uint64_t length, bool /*may_unmap*/) {
  static constexpr std::size_t kZeroes = 64 * 1024;
  static const std::array<std::byte, kZeroes> zeroes{};
  while (length > 0) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(length, kZeroes));
    write(offset, std::span(zeroes.data(), n), false);
    offset += n;
    length -= n;
  }
}

namespace {

void refuse_growth(std::uint64_t new_size, std::uint64_t size) {
  if (new_size > size) {
    throw Error(ENOSPC, fmt::format("grow to {} bytes: this backend holds only {}", new_size, size));
  }
}

}  // namespace

void Backend::resize(std::uint64_t new_size) { refuse_growth(new_size, size()); }

void AsyncBackend::resize(std::uint64_t new_size) { refuse_growth(new_size, size()); }

}  // namespace dblock
