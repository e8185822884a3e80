// Copyright (c) dblock authors.
// dblock-serve's settings: KEY=VALUE config files and the command line, both
// as text, turned into a device shape and a backend choice.
#ifndef DBLOCK_TOOLS_SERVE_CONFIG_H_
#define DBLOCK_TOOLS_SERVE_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "dblock/async_backend.h"
#include "dblock/backend.h"
#include "dblock/device.h"

namespace serve_tool {

// KEY -> VALUE, as written; keys are those of kKeys.
using Settings = std::map<std::string, std::string, std::less<>>;

// name backend size block_size queues depth max_io read_only recovery grace
// timeout mlock workers direct_io offset size_limit ceph_conf ceph_id
// create_size connect_timeout lock_timeout rbd_cache aio connections
inline constexpr std::size_t kKeyCount = 25;
extern const char* const kKeys[kKeyCount];

// Whether this dblock-serve was built with librbd (the rbd: backend).
#ifdef DBLOCK_HAVE_RBD
inline constexpr bool kHaveRbd = true;
#else
inline constexpr bool kHaveRbd = false;
#endif
// ... and with libnbd (the nbd:// backends).
#ifdef DBLOCK_HAVE_NBD
inline constexpr bool kHaveNbd = true;
#else
inline constexpr bool kHaveNbd = false;
#endif

// Parses a config file's text: one KEY=VALUE per line, blanks around both
// ignored, blank lines and lines starting with '#' skipped, a value may be
// in double quotes.  Throws std::invalid_argument naming `origin` and the
// line for a bad line or an unknown key.
Settings parse_config(std::string_view text, std::string_view origin);
Settings read_config_file(const std::string& path);

enum class BackendKind { kRam, kNull, kFile, kRbd, kNbd };

// How a file's requests are run (qemu's aio=): io_uring
// (dblock::UringFileBackend), threads (ServeOptions::workers), or auto:
// io_uring when the file may block (FileBackend::may_block()), workers
// were not given and io_uring is allowed, else as workers says.
enum class Aio { kAuto, kIoUring, kThreads };

// rbd:POOL/IMAGE and its keys (dblock::RbdBackend::Options, with
// dblock-rbd's defaults).
struct RbdPlan {
  std::string pool;
  std::string image;
  std::string conf_file;            // ceph_conf; empty: librados' search
  std::string client_id = "admin";  // ceph_id
  std::optional<std::uint64_t> create_size;  // create the image if missing
  std::uint32_t connect_timeout_s = 15;
  std::uint32_t lock_timeout_s = 60;
  bool cache = false;  // rbd_cache: librbd's client cache
};

struct Plan {
  dblock::DeviceConfig device;
  dblock::Transport transport = dblock::Transport::kAuto;
  BackendKind backend = BackendKind::kRam;
  std::string file;         // kFile: the path
  bool size_given = false;  // kFile/kRbd without it: the backend's size
  bool lock_memory = false;  // mlockall before serving
  // dblock::ServeOptions::workers: -1 auto, 0 on the queue threads.
  int workers = -1;
  // kFile: dblock::FileBackend::Options.
  bool direct_io = false;
  Aio aio = Aio::kAuto;
  std::uint64_t offset = 0;
  std::optional<std::uint64_t> size_limit;
  RbdPlan rbd;  // kRbd
  // kNbd: libnbd's URI (nbd://, nbds://, nbd+unix://, ...) and the number
  // of connections (0: one per queue where the export allows multi-conn,
  // else one).
  std::string nbd_uri;
  unsigned nbd_connections = 0;
};

// Checks and converts; throws std::invalid_argument saying which setting is
// wrong.  Defaults: block_size 4096, queues 2, depth 64, max_io 256K,
// read_only false, recovery fail, grace never (with wait: hold I/O until a
// server comes), timeout 30s, mlock false, workers auto; name and backend
// are required, size too unless the backend is a file or rbd.  direct_io,
// offset and size_limit go with a file backend only; ceph_conf, ceph_id,
// create_size, connect_timeout (15s), lock_timeout (60s) and rbd_cache
// (false) with rbd only, which is refused unless kHaveRbd; aio (auto) with
// a file only, and workers not with aio io_uring; connections (auto) with
// nbd only, refused unless kHaveNbd.
Plan make_plan(const Settings& settings);

// The opened backend: async if set (rbd; a file on io_uring, which borrows
// sync), else sync.
struct OpenedBackend {
  std::unique_ptr<dblock::Backend> sync;        // ram, null, file
  std::unique_ptr<dblock::AsyncBackend> async;  // rbd, nbd, file with io_uring
  std::string note;  // aio auto fell back to threads: why
  // What serves the device, for the kernel (dblockctl list, sysfs):
  // "file:/ABSOLUTE/PATH", "rbd:POOL/IMAGE", "ram", "null", the NBD URI.
  std::string description;
  // More for the serving line only: "from byte N, O_DIRECT, io_uring".
  std::string details;
};

// Opens the backend.  For a file, an rbd image or an NBD export, fills in
// the size when it was not given; with direct_io, refuses a block size below
// the alignment O_DIRECT needs.  An NBD export shapes the device: read-only
// if it is, requests no larger than it takes, a block size no smaller than
// its minimum (else an error naming the fix).
OpenedBackend open_backend(Plan& plan);

// With direct_io: throws std::invalid_argument unless the block size is at
// least `alignment`, what O_DIRECT needs on the file (open_backend() calls it).
void check_direct_io_block_size(const Plan& plan, std::uint32_t alignment);

}  // namespace serve_tool

#endif  // DBLOCK_TOOLS_SERVE_CONFIG_H_
