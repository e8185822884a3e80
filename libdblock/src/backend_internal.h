// Copyright (c) dblock authors.
#ifndef DBLOCK_SRC_BACKEND_INTERNAL_H_
#define DBLOCK_SRC_BACKEND_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace dblock::internal {

// Backends are also used directly (tests, tools), not only behind the
// server's request checks, so each guards its own bounds.
void check_range(std::string_view op, std::uint64_t offset, std::size_t length,
                 std::uint64_t size);

}  // namespace dblock::internal

#endif  // DBLOCK_SRC_BACKEND_INTERNAL_H_
