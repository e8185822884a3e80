// Copyright (c) dblock authors.
#include "serve_config.h"

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "dblock/error.h"
#include "dblock/file_backend.h"
#include "dblock/null_backend.h"
#include "dblock/ram_backend.h"
#include "dblock/size.h"

namespace serve_tool {

const char* const kKeys[12] = {"name",   "backend", "size",      "block_size",
                               "queues", "depth",   "max_io",    "read_only",
                               "recovery", "grace", "timeout", "mlock"};

namespace {

std::string_view trim(std::string_view s) {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

bool known_key(std::string_view key) {
  return std::find(std::begin(kKeys), std::end(kKeys), key) != std::end(kKeys);
}

std::uint64_t number(const Settings& settings, std::string_view key, std::uint64_t fallback,
                     std::uint64_t max, bool with_units) {
  const auto it = settings.find(key);
  if (it == settings.end()) return fallback;
  std::uint64_t value = 0;
  try {
    if (with_units) {
      value = dblock::parse_size(it->second);
    } else {
      std::size_t used = 0;
      if (it->second.empty() || it->second[0] == '-') throw std::invalid_argument("sign");
      value = std::stoull(it->second, &used, 10);
      if (used != it->second.size()) throw std::invalid_argument("trailing");
    }
  } catch (const std::exception&) {
    throw std::invalid_argument(fmt::format("{} '{}' is not a {}", key, it->second,
                                            with_units ? "size (e.g. 4096, 64M, 1G)" : "number"));
  }
  if (value > max) throw std::invalid_argument(fmt::format("{} {} is too large", key, value));
  return value;
}

bool boolean(const Settings& settings, std::string_view key) {
  const auto it = settings.find(key);
  if (it == settings.end()) return false;
  const std::string& v = it->second;
  if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off" || v.empty()) return false;
  throw std::invalid_argument(fmt::format("{} '{}' is not true or false", key, v));
}

// parse(text), with `key` named in its error.
std::uint32_t duration(std::string_view key, const std::string& text,
                       std::uint32_t (*parse)(std::string_view)) {
  try {
    return parse(text);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(fmt::format("{}: {}", key, e.what()));
  }
}

}  // namespace

Settings parse_config(std::string_view text, std::string_view origin) {
  Settings settings;
  int line_no = 0;
  while (!text.empty()) {
    const std::size_t end = std::min(text.find('\n'), text.size());
    const std::string_view line = trim(text.substr(0, end));
    text.remove_prefix(std::min(end + 1, text.size()));
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      throw std::invalid_argument(
          fmt::format("{}:{}: expected KEY=VALUE, got '{}'", origin, line_no, line));
    }
    const std::string_view key = trim(line.substr(0, eq));
    std::string_view value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (!known_key(key)) {
      throw std::invalid_argument(fmt::format(
          "{}:{}: unknown key '{}' (known: name, backend, size, block_size, queues, depth, "
          "max_io, read_only, recovery, grace, timeout, mlock)",
          origin, line_no, key));
    }
    settings[std::string(key)] = std::string(value);
  }
  return settings;
}

Settings read_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    const int err = errno;
    throw dblock::Error(err != 0 ? err : ENOENT, "read config file " + path);
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

Plan make_plan(const Settings& settings) {
  Plan plan;
  const auto name = settings.find("name");
  if (name == settings.end() || name->second.empty()) {
    throw std::invalid_argument("no device name: give NAME (or name= in the config file)");
  }
  plan.device.name = name->second;
  dblock::validate_name(plan.device.name);

  const auto backend = settings.find("backend");
  if (backend == settings.end() || backend->second.empty()) {
    throw std::invalid_argument(
        "no backend: give --backend ram, null or file:PATH (or backend= in the config file)");
  }
  const std::string& spec = backend->second;
  if (spec == "ram") {
    plan.backend = BackendKind::kRam;
  } else if (spec == "null") {
    plan.backend = BackendKind::kNull;
  } else if (spec.starts_with("file:") && spec.size() > 5) {
    plan.backend = BackendKind::kFile;
    plan.file = spec.substr(5);
  } else {
    throw std::invalid_argument(
        fmt::format("backend '{}' is not one of ram, null, file:PATH", spec));
  }

  constexpr auto u32 = std::numeric_limits<std::uint32_t>::max();
  constexpr auto u16 = std::numeric_limits<std::uint16_t>::max();
  plan.size_given = settings.contains("size");
  plan.device.size_bytes =
      number(settings, "size", 0, std::numeric_limits<std::uint64_t>::max(), true);
  if (!plan.size_given && plan.backend != BackendKind::kFile) {
    throw std::invalid_argument(
        fmt::format("the {} backend needs a size: give --size (e.g. 1G)", spec));
  }
  plan.device.block_size =
      static_cast<std::uint32_t>(number(settings, "block_size", 4096, u32, true));
  plan.device.queues = static_cast<std::uint16_t>(number(settings, "queues", 2, u16, false));
  plan.device.queue_depth = static_cast<std::uint16_t>(number(settings, "depth", 64, u16, false));
  plan.device.max_io_bytes =
      static_cast<std::uint32_t>(number(settings, "max_io", 256 * 1024, u32, true));

  plan.device.read_only = boolean(settings, "read_only");
  plan.lock_memory = boolean(settings, "mlock");
  if (const auto it = settings.find("recovery"); it != settings.end()) {
    plan.device.recovery = dblock::parse_recovery(it->second);
  }
  if (const auto it = settings.find("grace"); it != settings.end()) {
    if (plan.device.recovery != dblock::Recovery::kWait) {
      throw std::invalid_argument("grace goes with recovery wait");
    }
    plan.device.grace_ms = duration(it->first, it->second, dblock::parse_grace_ms);
  }
  if (const auto it = settings.find("timeout"); it != settings.end()) {
    plan.device.timeout_ms = duration(it->first, it->second, dblock::parse_duration_ms);
  }
  return plan;
}

std::unique_ptr<dblock::Backend> open_backend(Plan& plan) {
  switch (plan.backend) {
    case BackendKind::kRam:
      return std::make_unique<dblock::RamBackend>(plan.device.size_bytes);
    case BackendKind::kNull:
      return std::make_unique<dblock::NullBackend>(plan.device.size_bytes);
    case BackendKind::kFile: {
      auto file = std::make_unique<dblock::FileBackend>(plan.file, plan.device.read_only);
      if (!plan.size_given) {
        plan.device.size_bytes = file->size();
        if (plan.device.size_bytes == 0 || plan.device.size_bytes % plan.device.block_size != 0) {
          throw std::invalid_argument(
              fmt::format("{} is {} bytes, not a non-zero multiple of the block size {} "
                          "(fix: resize it, e.g. truncate -s 1G {}, or give --size)",
                          plan.file, plan.device.size_bytes, plan.device.block_size, plan.file));
        }
      }
      return file;
    }
  }
  throw std::logic_error("unknown backend kind");
}

}  // namespace serve_tool
