// Copyright (c) dblock authors.
#include "dblock/size.h"

#include <array>
#include <cctype>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

namespace dblock {
namespace {

constexpr std::string_view kUnits = "KMGTP";

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::uint64_t parse_size(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return std::invalid_argument(fmt::format(
        "invalid size '{}': {} (examples: 512, 4K, 64M, 1G, 1T)", text, why));
  };
  std::size_t i = 0;
  std::uint64_t value = 0;
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
    const unsigned digit = static_cast<unsigned>(text[i] - '0');
    if (value > (kMax - digit) / 10) throw bad("too large");
    value = value * 10 + digit;
  }
  if (i == 0) throw bad("expected a number");

  std::string_view suffix = text.substr(i);
  if (suffix.empty()) return value;
  unsigned shift = 0;
  const std::size_t unit =
      kUnits.find(static_cast<char>(std::toupper(static_cast<unsigned char>(suffix[0]))));
  if (unit != std::string_view::npos) {
    shift = 10 * static_cast<unsigned>(unit + 1);
    suffix.remove_prefix(1);
  }
  if (!suffix.empty() && !iequals(suffix, shift ? "iB" : "B") && !iequals(suffix, "B")) {
    throw bad("unknown unit (use K, M, G, T or P; units are powers of 1024)");
  }
  if (shift && value > (kMax >> shift)) throw bad("too large");
  return value << shift;
}

std::string format_size(std::uint64_t bytes) {
  static constexpr std::array<const char*, 6> kNames = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  std::size_t unit = 0;
  while (unit + 1 < kNames.size() && bytes >= (std::uint64_t{1} << (10 * (unit + 1)))) ++unit;
  const std::uint64_t scale = std::uint64_t{1} << (10 * unit);
  if (bytes % scale == 0) return fmt::format("{} {}", bytes / scale, kNames[unit]);
  return fmt::format("{:.1f} {}", static_cast<double>(bytes) / static_cast<double>(scale),
                     kNames[unit]);
}

std::uint32_t parse_duration_ms(std::string_view text) {
  constexpr std::uint32_t kNever = std::numeric_limits<std::uint32_t>::max();
  if (text == "never") return kNever;
  const auto bad = [&](std::string_view why) {
    return std::invalid_argument(
        fmt::format("invalid duration '{}': {} (examples: 500ms, 30s, 2m, never)", text, why));
  };
  std::uint64_t value = 0;
  std::size_t i = 0;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
    value = value * 10 + static_cast<unsigned>(text[i] - '0');
    if (value >= kNever) throw bad("too long");
  }
  if (i == 0) throw bad("expected a number");
  const std::string_view unit = text.substr(i);
  std::uint64_t scale = 0;
  if (unit.empty() && value != 0) {
    // Milliseconds to one tool and seconds to another: a bare number is refused.
    throw std::invalid_argument(fmt::format(
        "duration '{}' has no unit: write {}s for seconds or {}ms for milliseconds", text, text, text));
  }
  if (unit.empty() || unit == "ms") {
    scale = 1;
  } else if (unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = 60'000;
  } else {
    throw bad("unknown unit (use ms, s or m)");
  }
  if (value * scale >= kNever) throw bad("too long");
  return static_cast<std::uint32_t>(value * scale);
}

std::uint32_t parse_grace_ms(std::string_view text) {
  const std::uint32_t ms = parse_duration_ms(text);
  return ms == std::numeric_limits<std::uint32_t>::max() ? 0 : ms;
}

std::string format_duration_ms(std::uint32_t ms) {
  return ms == std::numeric_limits<std::uint32_t>::max() ? std::string("never")
                                                          : fmt::format("{} ms", ms);
}

}  // namespace dblock
