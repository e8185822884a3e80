// Copyright (c) dblock authors.
// dblock-serve's settings: KEY=VALUE config files and the command line, both
// as text, turned into a device shape and a backend choice.
#ifndef DBLOCK_TOOLS_SERVE_CONFIG_H_
#define DBLOCK_TOOLS_SERVE_CONFIG_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "dblock/backend.h"
#include "dblock/device.h"

namespace serve_tool {

// KEY -> VALUE, as written; keys are those of kKeys.
using Settings = std::map<std::string, std::string, std::less<>>;

// name backend size block_size queues depth max_io read_only recovery grace
// timeout mlock
extern const char* const kKeys[12];

// Parses a config file's text: one KEY=VALUE per line, blanks around both
// ignored, blank lines and lines starting with '#' skipped, a value may be
// in double quotes.  Throws std::invalid_argument naming `origin` and the
// line for a bad line or an unknown key.
Settings parse_config(std::string_view text, std::string_view origin);
Settings read_config_file(const std::string& path);

enum class BackendKind { kRam, kNull, kFile };

struct Plan {
  dblock::DeviceConfig device;
  BackendKind backend = BackendKind::kRam;
  std::string file;         // kFile: the path
  bool size_given = false;  // kFile without it: the file's size
  bool lock_memory = false;  // mlockall before serving
};

// Checks and converts; throws std::invalid_argument saying which setting is
// wrong.  Defaults: block_size 4096, queues 2, depth 64, max_io 256K,
// read_only false, recovery fail, grace never (with wait: hold I/O until a
// server comes), timeout 30s, mlock false; name and backend are required,
// size too unless the backend is a file.
Plan make_plan(const Settings& settings);

// Opens the backend.  For a file, fills in the size when it was not given.
std::unique_ptr<dblock::Backend> open_backend(Plan& plan);

}  // namespace serve_tool

#endif  // DBLOCK_TOOLS_SERVE_CONFIG_H_
