// Copyright (c) dblock authors.
#ifndef DBLOCK_SIZE_H_
#define DBLOCK_SIZE_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace dblock {

// Parses a byte count: digits, then an optional binary unit K, M, G, T or P
// (case-insensitive, optionally followed by "iB" or "B"): "512", "4K",
// "64M", "1GiB".  Throws std::invalid_argument on bad syntax or overflow.
std::uint64_t parse_size(std::string_view text);

// Renders a byte count for humans: "512 B", "4 KiB", "1.5 GiB".
std::string format_size(std::uint64_t bytes);

// Parses a duration into milliseconds: digits with a unit ms, s or m
// ("500ms", "30s", "2m"; only 0 may go without), or "never" (kTimeoutNever,
// i.e. UINT32_MAX).  Throws std::invalid_argument on bad syntax, a missing
// unit or a duration of UINT32_MAX ms or more.
std::uint32_t parse_duration_ms(std::string_view text);

// A grace period (DBLOCK_RECOVERY_WAIT): as parse_duration_ms(), but
// "never" is 0, the kernel's "hold requests forever".
std::uint32_t parse_grace_ms(std::string_view text);

// "never" for UINT32_MAX, otherwise "N ms".
std::string format_duration_ms(std::uint32_t ms);

}  // namespace dblock

#endif  // DBLOCK_SIZE_H_
