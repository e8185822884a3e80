// Copyright (c) dblock authors.
#include "serve_config.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "dblock/error.h"
#include "dblock/file_backend.h"
#include "dblock/null_backend.h"
#include "dblock/ram_backend.h"
#include "dblock/size.h"
#include "dblock/uring_file_backend.h"
#ifdef DBLOCK_HAVE_RBD
#include "dblock/rbd_backend.h"
#endif
#ifdef DBLOCK_HAVE_NBD
#include "dblock/nbd_backend.h"
#endif

namespace serve_tool {

const char* const kKeys[kKeyCount] = {
    "name",      "backend",    "size",      "block_size", "queues",          "depth",
    "max_io",    "read_only",  "recovery",  "grace",      "timeout",         "mlock",
    "workers",   "direct_io",  "offset",    "size_limit", "ceph_conf",       "ceph_id",
    "create_size", "connect_timeout", "lock_timeout", "rbd_cache", "aio", "connections",
    "transport"};

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

constexpr int kMaxWorkers = 1024;
#ifdef DBLOCK_RBD_NOT_STATIC
constexpr std::string_view kNoRbd =
    "this dblock-serve was linked statically, so without librbd, which is only shared (fix: "
    "rebuild with -DDBLOCK_STATIC_TOOLS=OFF)";
#else
constexpr std::string_view kNoRbd =
    "this dblock-serve was built without librbd (fix: install librbd-dev and rebuild)";
#endif
#ifdef DBLOCK_NBD_NOT_STATIC
constexpr std::string_view kNoNbd =
    "this dblock-serve was linked statically, so without libnbd, which is only shared (fix: "
    "rebuild with -DDBLOCK_STATIC_TOOLS=OFF)";
#else
constexpr std::string_view kNoNbd =
    "this dblock-serve was built without libnbd (fix: install libnbd-dev and rebuild)";
#endif

// libnbd's URI schemes: nbd, nbds (TLS), each also +unix and +vsock.
bool nbd_uri(std::string_view spec) {
  for (const std::string_view scheme : {"nbd", "nbds"}) {
    for (const std::string_view transport : {"", "+unix", "+vsock"}) {
      const std::string prefix = fmt::format("{}{}://", scheme, transport);
      if (spec.starts_with(prefix)) return true;
    }
  }
  return false;
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

// A timeout given to librbd in whole seconds (at least one).
std::uint32_t whole_seconds(const Settings& settings, std::string_view key,
                            std::uint32_t fallback) {
  const auto it = settings.find(key);
  if (it == settings.end()) return fallback;
  std::uint32_t ms = 0;
  try {
    ms = dblock::parse_duration_ms(it->second);
  } catch (const std::invalid_argument&) {
    ms = 0;  // reported below
  }
  if (ms == 0 || ms == dblock::kTimeoutNever || ms % 1000 != 0) {
    throw std::invalid_argument(fmt::format(
        "{} '{}' is not a whole number of seconds, at least 1 (e.g. 15s, 2m)", key, it->second));
  }
  return ms / 1000;
}

// "POOL/IMAGE" into plan.
void parse_rbd_spec(std::string_view spec, std::string_view what, RbdPlan& rbd) {
  const std::size_t slash = spec.find('/');
  if (slash == std::string_view::npos || slash == 0) {
    throw std::invalid_argument(
        fmt::format("backend '{}' names no pool: give rbd:POOL/IMAGE, e.g. rbd:rbd/vol1", what));
  }
  const std::string_view image = spec.substr(slash + 1);
  if (image.empty()) {
    throw std::invalid_argument(
        fmt::format("backend '{}' names no image: give rbd:POOL/IMAGE, e.g. rbd:rbd/vol1", what));
  }
  if (image.find('/') != std::string_view::npos) {
    throw std::invalid_argument(fmt::format(
        "backend '{}': RBD namespaces are not supported, give rbd:POOL/IMAGE", what));
  }
  if (image.find('@') != std::string_view::npos) {
    throw std::invalid_argument(
        fmt::format("backend '{}': snapshots are not supported, give rbd:POOL/IMAGE", what));
  }
  rbd.pool = std::string(spec.substr(0, slash));
  rbd.image = std::string(image);
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
      std::string known;
      for (const char* k : kKeys) {
        if (!known.empty()) known += ", ";
        known += k;
      }
      throw std::invalid_argument(
          fmt::format("{}:{}: unknown key '{}' (known: {})", origin, line_no, key, known));
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
        "no backend: give --backend ram, null, file:PATH, rbd:POOL/IMAGE or an NBD URI (or "
        "backend= in the config file)");
  }
  const std::string& spec = backend->second;
  if (spec == "ram") {
    plan.backend = BackendKind::kRam;
  } else if (spec == "null") {
    plan.backend = BackendKind::kNull;
  } else if (spec.starts_with("file:") && spec.size() > 5) {
    plan.backend = BackendKind::kFile;
    plan.file = spec.substr(5);
  } else if (spec.starts_with("rbd:")) {
    plan.backend = BackendKind::kRbd;
    parse_rbd_spec(std::string_view(spec).substr(4), spec, plan.rbd);
    if (!kHaveRbd) throw std::invalid_argument(fmt::format("backend '{}': {}", spec, kNoRbd));
  } else if (nbd_uri(spec)) {
    plan.backend = BackendKind::kNbd;
    plan.nbd_uri = spec;
    if (!kHaveNbd) throw std::invalid_argument(fmt::format("backend '{}': {}", spec, kNoNbd));
  } else {
    throw std::invalid_argument(fmt::format(
        "backend '{}' is not one of ram, null, file:PATH, rbd:POOL/IMAGE, nbd://HOST[:PORT]/EXPORT, "
        "nbd+unix:///EXPORT?socket=PATH",
        spec));
  }
  const bool file = plan.backend == BackendKind::kFile;
  const bool rbd = plan.backend == BackendKind::kRbd;
  const bool nbd = plan.backend == BackendKind::kNbd;
  // Settings of one kind of backend, given for another.
  const auto only_for = [&](std::string_view key, bool fits, std::string_view backends) {
    if (!fits && settings.contains(key)) {
      throw std::invalid_argument(
          fmt::format("{} goes with {}, not the {} backend", key, backends, spec));
    }
  };

  constexpr auto u32 = std::numeric_limits<std::uint32_t>::max();
  constexpr auto u16 = std::numeric_limits<std::uint16_t>::max();
  plan.size_given = settings.contains("size");
  plan.device.size_bytes =
      number(settings, "size", 0, std::numeric_limits<std::uint64_t>::max(), true);
  if (!plan.size_given && !file && !rbd && !nbd) {
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
  if (const auto it = settings.find("transport"); it != settings.end()) {
    plan.transport = dblock::parse_transport(it->second);
    if (plan.transport == dblock::Transport::kUblk && plan.device.grace_ms != 0) {
      throw std::invalid_argument(
          "grace goes with dblock.ko: ublk holds a dead server's I/O with no time limit (fix: "
          "--grace never, or --transport dblock)");
    }
    if (plan.transport == dblock::Transport::kUblk && plan.device.timeout_ms != 0 &&
        plan.device.timeout_ms != dblock::kTimeoutNever) {
      throw std::invalid_argument(
          "timeout goes with dblock.ko: ublk never fails a request its server holds (fix: "
          "--timeout never, or --transport dblock)");
    }
  }

  only_for("workers", !rbd && !nbd,
           "the ram, null and file backends (rbd's and nbd's requests complete on their own)");
  only_for("connections", nbd, "an NBD backend (nbd://...)");
  if (const auto it = settings.find("connections"); it != settings.end() && it->second != "auto") {
    plan.nbd_connections = static_cast<unsigned>(number(settings, "connections", 0, 64, false));
    if (plan.nbd_connections == 0) {
      throw std::invalid_argument("connections 0: give 1 to 64, or auto (one per queue)");
    }
  }
  if (const auto it = settings.find("workers"); it != settings.end() && it->second != "auto") {
    const std::string& v = it->second;
    if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos) {
      throw std::invalid_argument(
          fmt::format("workers '{}' is not a number or auto (0: on the queue threads)", v));
    }
    const std::uint64_t n = v.size() > 9 ? std::uint64_t{kMaxWorkers} + 1 : std::stoull(v);
    if (n > kMaxWorkers) {
      throw std::invalid_argument(
          fmt::format("workers {} is too many (at most {}, or auto)", v, kMaxWorkers));
    }
    plan.workers = static_cast<int>(n);
  }

  // A file: like losetup --direct-io, --offset, --sizelimit, and qemu's aio=.
  only_for("aio", file, "a file backend (file:PATH)");
  if (const auto it = settings.find("aio"); it != settings.end()) {
    if (it->second == "auto") {
      plan.aio = Aio::kAuto;
    } else if (it->second == "io_uring") {
      plan.aio = Aio::kIoUring;
    } else if (it->second == "threads") {
      plan.aio = Aio::kThreads;
    } else {
      throw std::invalid_argument(
          fmt::format("aio '{}' is not one of auto, io_uring, threads", it->second));
    }
  }
  if (plan.aio == Aio::kIoUring && plan.workers >= 0) {
    throw std::invalid_argument(
        "workers goes with aio threads (io_uring runs a file's requests without threads)");
  }
  plan.direct_io = boolean(settings, "direct_io");
  if (plan.direct_io && !file) {
    throw std::invalid_argument(
        fmt::format("direct_io goes with a file backend (file:PATH), not the {} backend", spec));
  }
  only_for("offset", file, "a file backend (file:PATH)");
  only_for("size_limit", file, "a file backend (file:PATH)");
  plan.offset = number(settings, "offset", 0, std::numeric_limits<std::uint64_t>::max(), true);
  if (settings.contains("size_limit")) {
    plan.size_limit =
        number(settings, "size_limit", 0, std::numeric_limits<std::uint64_t>::max(), true);
    if (*plan.size_limit == 0) {
      throw std::invalid_argument("size_limit 0 leaves nothing to serve (leave it out: up to "
                                  "the end of the file)");
    }
  }

  // An RBD image: dblock-rbd's options, with its defaults.
  for (const char* key :
       {"ceph_conf", "ceph_id", "create_size", "connect_timeout", "lock_timeout", "rbd_cache"}) {
    only_for(key, rbd, "an rbd backend (rbd:POOL/IMAGE)");
  }
  if (const auto it = settings.find("ceph_conf"); it != settings.end()) {
    plan.rbd.conf_file = it->second;
  }
  if (const auto it = settings.find("ceph_id"); it != settings.end()) {
    if (it->second.empty()) throw std::invalid_argument("ceph_id is empty (default: admin)");
    plan.rbd.client_id = it->second;
  }
  if (settings.contains("create_size")) {
    plan.rbd.create_size =
        number(settings, "create_size", 0, std::numeric_limits<std::uint64_t>::max(), true);
    if (*plan.rbd.create_size == 0) {
      throw std::invalid_argument("create_size 0: give the size of the image to create (e.g. 64G)");
    }
  }
  plan.rbd.connect_timeout_s = whole_seconds(settings, "connect_timeout", 15);
  plan.rbd.lock_timeout_s = whole_seconds(settings, "lock_timeout", 60);
  plan.rbd.cache = boolean(settings, "rbd_cache");
  return plan;
}

void check_direct_io_block_size(const Plan& plan, std::uint32_t alignment) {
  if (plan.direct_io && plan.device.block_size < alignment) {
    throw std::invalid_argument(fmt::format(
        "block size {} is smaller than the {} bytes O_DIRECT needs on {} (fix: --block-size {}, "
        "or leave out --direct-io)",
        plan.device.block_size, alignment, plan.file, alignment));
  }
}

#ifdef DBLOCK_HAVE_NBD
namespace {

OpenedBackend open_nbd(Plan& plan) {
  dblock::DeviceConfig& device = plan.device;
  dblock::NbdBackend::Options options;
  options.uri = plan.nbd_uri;
  options.connections = plan.nbd_connections != 0 ? plan.nbd_connections : device.queues;
  options.fewer_connections_ok = plan.nbd_connections == 0;
  options.read_only = device.read_only;
  // As the device's recovery policy says of a server that goes away: with
  // wait, requests wait for the NBD server too, until they time out.
  options.hold_while_disconnected = device.recovery == dblock::Recovery::kWait;
  if (device.timeout_ms != dblock::kTimeoutNever) {
    options.hold_limit = std::chrono::milliseconds(device.timeout_ms != 0 ? device.timeout_ms
                                                                          : 30000);
  }
  options.on_event = [](const std::string& event) {
    fmt::print(stderr, "dblock-serve: {}\n", event);
  };
  auto nbd = std::make_unique<dblock::NbdBackend>(options);
  const std::string& uri = nbd->uri();
  if (nbd->minimum_block_size() > device.block_size) {
    throw std::invalid_argument(fmt::format(
        "{} needs requests of at least {} bytes, more than the block size {} (fix: --block-size {})",
        uri, nbd->minimum_block_size(), device.block_size, nbd->minimum_block_size()));
  }
  std::string notes;
  if (nbd->read_only() && !device.read_only) {
    device.read_only = true;
    notes += ", read-only export";
  }
  if (const std::uint32_t max = nbd->maximum_request() / device.block_size * device.block_size;
      max != 0 && max < device.max_io_bytes) {
    device.max_io_bytes = max;
    notes += fmt::format(", requests up to {} bytes", max);
  }
  const std::uint64_t exported = nbd->size();
  if (!plan.size_given) {
    if (exported == 0 || exported % device.block_size != 0) {
      throw std::invalid_argument(fmt::format(
          "{} is {} bytes, not a non-zero multiple of the block size {} (fix: --size {}, or a "
          "smaller --block-size)",
          uri, exported, device.block_size, exported / device.block_size * device.block_size));
    }
    device.size_bytes = exported;
  } else if (device.size_bytes > exported) {
    throw std::invalid_argument(fmt::format(
        "--size {} is larger than {}, which has {} bytes (fix: --size {} or less)",
        device.size_bytes, uri, exported, exported));
  }
  OpenedBackend opened;
  opened.description = uri;
  opened.details = fmt::format("{} connection{}{}{}", nbd->connections(),
                               nbd->connections() == 1 ? "" : "s",
                               options.hold_while_disconnected ? ", held while reconnecting" : "",
                               notes);
  opened.async = std::move(nbd);
  return opened;
}

}  // namespace
#endif

OpenedBackend open_backend(Plan& plan) {
  OpenedBackend opened;
  switch (plan.backend) {
    case BackendKind::kRam:
      opened.sync = std::make_unique<dblock::RamBackend>(plan.device.size_bytes);
      opened.description = "ram";
      return opened;
    case BackendKind::kNull:
      opened.sync = std::make_unique<dblock::NullBackend>(plan.device.size_bytes);
      opened.description = "null";
      return opened;
    case BackendKind::kFile: {
      dblock::FileBackend::Options options;
      options.read_only = plan.device.read_only;
      options.direct_io = plan.direct_io;
      options.offset = plan.offset;
      options.size_limit = plan.size_limit;
      auto file = std::make_unique<dblock::FileBackend>(plan.file, options);
      check_direct_io_block_size(plan, file->direct_io_alignment());
      // io_uring where each request may wait for the storage (and threads
      // were not asked for); buffered I/O to a regular file mostly meets
      // the page cache, served best on the queue threads.
      if (plan.aio == Aio::kIoUring ||
          (plan.aio == Aio::kAuto && plan.workers < 0 && file->may_block() &&
           dblock::UringFileBackend::available())) {
        try {
          opened.async = std::make_unique<dblock::UringFileBackend>(*file);
        } catch (const dblock::Error& e) {
          if (plan.aio == Aio::kIoUring) throw;
          opened.note = fmt::format("{}; serving {} on worker threads", e.what(), plan.file);
        }
      }
      if (!plan.size_given) {
        plan.device.size_bytes = file->size();
        if (plan.device.size_bytes == 0 || plan.device.size_bytes % plan.device.block_size != 0) {
          if (plan.offset == 0 && !plan.size_limit) {
            throw std::invalid_argument(
                fmt::format("{} is {} bytes, not a non-zero multiple of the block size {} "
                            "(fix: resize it, e.g. truncate -s 1G {}, or give --size)",
                            plan.file, plan.device.size_bytes, plan.device.block_size, plan.file));
          }
          throw std::invalid_argument(fmt::format(
              "the part of {} served (from offset {}{}) is {} bytes, not a non-zero multiple of "
              "the block size {} (fix: change --offset or --size-limit, or give --size)",
              plan.file, plan.offset,
              plan.size_limit ? fmt::format(", at most {} bytes", *plan.size_limit) : "",
              plan.device.size_bytes, plan.device.block_size));
        }
      }
      // Absolute, so that it names the file wherever it is read.
      opened.description =
          "file:" + std::filesystem::absolute(plan.file).lexically_normal().string();
      opened.details = fmt::format(
          "{}{}{}", plan.offset ? fmt::format("from byte {}, ", plan.offset) : "",
          plan.direct_io ? "O_DIRECT, " : "",
          opened.async                                  ? "io_uring"
          : plan.workers == 0 || (plan.workers < 0 && !file->may_block()) ? "on the queue threads"
          : plan.workers > 0 ? fmt::format("{} worker threads", plan.workers)
                             : "worker threads");
      opened.sync = std::move(file);
      return opened;
    }
    case BackendKind::kRbd: {
#ifdef DBLOCK_HAVE_RBD
      dblock::RbdBackend::Options options;
      options.conf_file = plan.rbd.conf_file;
      options.client_id = plan.rbd.client_id;
      options.pool = plan.rbd.pool;
      options.image = plan.rbd.image;
      options.create_size = plan.rbd.create_size;
      options.connect_timeout = std::chrono::seconds(plan.rbd.connect_timeout_s);
      options.lock_timeout = std::chrono::seconds(plan.rbd.lock_timeout_s);
      options.cache = plan.rbd.cache;
      auto image = std::make_unique<dblock::RbdBackend>(options);
      if (!plan.size_given) {
        plan.device.size_bytes = image->size() / plan.device.block_size * plan.device.block_size;
        if (plan.device.size_bytes == 0) {
          throw std::invalid_argument(fmt::format(
              "image {} is {} bytes, smaller than one block ({} bytes): resize it (rbd resize) "
              "or give a smaller --block-size",
              image->spec(), image->size(), plan.device.block_size));
        }
      }
      opened.description = "rbd:" + image->spec();
      opened.async = std::move(image);
      return opened;
#else
      throw std::invalid_argument(std::string(kNoRbd));
#endif
    }
    case BackendKind::kNbd: {
#ifdef DBLOCK_HAVE_NBD
      return open_nbd(plan);
#else
      throw std::invalid_argument(std::string(kNoNbd));
#endif
    }
  }
  throw std::logic_error("unknown backend kind");
}

}  // namespace serve_tool
