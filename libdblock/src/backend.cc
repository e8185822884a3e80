// Copyright (c) dblock authors.
#include "backend_internal.h"

#include <cerrno>

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
