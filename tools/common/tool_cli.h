// Copyright (c) dblock authors.
// What the command lines of dblock's tools do alike: --version, the way a
// bad command line is reported, and the exit codes (the man pages' EXIT
// STATUS): 0 done, 1 the work failed, 2 a bad command line or setting,
// found before anything was opened.
#ifndef DBLOCK_TOOLS_COMMON_TOOL_CLI_H_
#define DBLOCK_TOOLS_COMMON_TOOL_CLI_H_

#include <cstdint>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "dblock/size.h"
#include "dblock/version.h"

namespace dblock::tool {

inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// "--version": "NAME (dblock) VERSION", as coreutils and util-linux say it.
inline void add_version_flag(CLI::App& app) {
  app.set_version_flag("--version",
                       fmt::format("{} (dblock) {}", app.get_name(), dblock::library_version()),
                       "Print the version and exit");
}

// One line on stderr for a bad command line or setting; returns kExitUsage.
inline int usage_error(const CLI::App& app, std::string_view message) {
  fmt::print(stderr, "{}: {} (see {} --help)\n", app.get_name(), message, app.get_name());
  return kExitUsage;
}

// A size that must fit 32 bits (a block size, a largest request).
inline std::uint32_t parse_size32(std::string_view option, std::string_view text) {
  const std::uint64_t bytes = dblock::parse_size(text);
  if (bytes > UINT32_MAX) throw std::invalid_argument(fmt::format("{} {} is too large", option, text));
  return static_cast<std::uint32_t>(bytes);
}

// Parses the command line.  Returns the exit code when the program is done
// (--help, --version: 0; a bad command line: kExitUsage), else nothing.
inline std::optional<int> parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --help-all, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return usage_error(app, e.what());
  }
  return std::nullopt;
}

}  // namespace dblock::tool

#endif  // DBLOCK_TOOLS_COMMON_TOOL_CLI_H_
