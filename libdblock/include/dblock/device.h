// Copyright (c) dblock authors.
#ifndef DBLOCK_DEVICE_H_
#define DBLOCK_DEVICE_H_

#include <linux/dblock.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace dblock {

inline constexpr std::size_t kMaxNameLength = DBLOCK_NAME_MAX - 1;
// Longest backend description the kernel keeps (DBLOCK_FEAT_BACKEND_DESC).
inline constexpr std::size_t kMaxBackendLength = DBLOCK_BACKEND_MAX - 1;
inline constexpr std::string_view kChannelDir = "/dev/dblock";
inline constexpr std::uint32_t kTimeoutNever = DBLOCK_TIMEOUT_NEVER;

// What happens to a device's I/O when its server goes away.
enum class Recovery : std::uint8_t {
  kFail = DBLOCK_RECOVERY_FAIL,  // fail it at once
  kWait = DBLOCK_RECOVERY_WAIT,  // hold it for a new server (grace_ms)
};

// The kernel interface a device is served through: dblock.ko's
// (/dev/dblockctl) or the kernel's own ublk (/dev/ublk-control, Linux 6.0+,
// module ublk_drv; over io_uring).  kAuto: dblock.ko if its control device
// exists, else ublk.
enum class Transport : std::uint8_t { kAuto, kDblock, kUblk };

// The shape of a device, as chosen by its creator (dblock_dev_config).
// Thread-safety: plain value.
struct DeviceConfig {
  std::string name;
  std::uint64_t size_bytes = 0;
  std::uint32_t block_size = 4096;
  std::uint32_t max_io_bytes = 256 * 1024;
  std::uint16_t queues = 1;
  std::uint16_t queue_depth = 64;
  bool flush = false;         // DBLOCK_DEV_FLUSH: the server handles flush and FUA
  bool read_only = false;     // DBLOCK_DEV_READ_ONLY
  bool discard = false;       // DBLOCK_DEV_DISCARD
  bool write_zeroes = false;  // DBLOCK_DEV_WRITE_ZEROES
  // Zero means the kernel's default for each of these (see <linux/dblock.h>).
  std::uint32_t physical_block_size = 0;
  std::uint32_t io_opt_bytes = 0;
  std::uint32_t discard_granularity = 0;
  std::uint32_t max_discard_bytes = 0;
  std::uint32_t max_write_zeroes_bytes = 0;
  std::uint32_t timeout_ms = 0;  // 0: 30 s; kTimeoutNever: never
  Recovery recovery = Recovery::kFail;
  std::uint32_t grace_ms = 0;  // with Recovery::kWait; 0: forever

  bool operator==(const DeviceConfig&) const = default;
};

enum class DeviceState : std::uint32_t {
  kCreated = DBLOCK_STATE_CREATED,
  kLive = DBLOCK_STATE_LIVE,
  kDead = DBLOCK_STATE_DEAD,
};

// Request counters of a device (dblock_dev_stats).
// Thread-safety: plain value.
struct DeviceStats {
  std::uint64_t reads = 0, writes = 0, flushes = 0, discards = 0, write_zeroes = 0;
  std::uint64_t errors = 0, timeouts = 0, requeued = 0, rejected = 0;
  // Reads and writes dblock.ko did on the server's file (kernel_file()).
  std::uint64_t file_ios = 0;
  bool operator==(const DeviceStats&) const = default;
};

// What the kernel says about an existing device (dblock_dev_info).
// Thread-safety: plain value.
struct DeviceInfo {
  DeviceConfig config;
  std::uint32_t id = 0;
  DeviceState state = DeviceState::kCreated;
  std::int32_t server_pid = 0;
  std::uint32_t buffer_bytes = 0;
  std::uint32_t disk_major = 0;
  std::uint32_t disk_minor = 0;
  DeviceStats stats;
  std::uint64_t features = 0;  // the module's DBLOCK_FEAT_* bits
  // What its server said serves it ("file:/srv/vol1.img", "rbd:pool/image",
  // "ram"); empty if it said nothing or the module cannot keep it (no
  // DBLOCK_FEAT_BACKEND_DESC).  Kept after the server went away; a new
  // server's replaces it.  Filled in by ControlDevice::info() and list().
  std::string backend;
  // dblock.ko's device, or ublk's (ControlDevice::info() and list() give
  // dblock.ko's; list_devices() both).
  Transport transport = Transport::kDblock;

  std::string disk_path() const;     // /dev/<name>
  std::string channel_path() const;  // /dev/dblock/<id>, over ublk /dev/ublkc<id>

  bool operator==(const DeviceInfo&) const = default;
};

// The module's ABI version and DBLOCK_FEAT_* bits.
// Thread-safety: plain value.
struct ModuleVersion {
  std::uint32_t abi_version = 0;
  std::uint64_t features = 0;

  bool has(std::uint64_t feature) const { return (features & feature) == feature; }
};

// "created", "live", "dead", or "unknown(N)" for a state this code predates.
std::string to_string(DeviceState state);
// "fail" or "wait".
std::string to_string(Recovery recovery);
// Parses "fail" or "wait"; throws std::invalid_argument otherwise.
Recovery parse_recovery(std::string_view text);
// "auto", "dblock" or "ublk".
std::string to_string(Transport transport);
// Parses "auto", "dblock" or "ublk"; throws std::invalid_argument otherwise.
Transport parse_transport(std::string_view text);

// Throw std::invalid_argument naming the offending field, so that users get
// a precise message instead of the kernel's bare EINVAL.
void validate_name(std::string_view name);
void validate(const DeviceConfig& config);

// `text` made fit for the kernel's backend description: control characters
// (newlines, tabs, ...) become '?', and a text longer than kMaxBackendLength
// bytes keeps its end, after "...", since the end of a path tells files
// apart ("...vols/vol1.img"); a UTF-8 sequence is never cut in the middle.
std::string fit_backend_description(std::string_view text);

// Conversions to and from the UAPI structs.  to_uapi() throws
// std::invalid_argument if the name does not fit; from_uapi() copes with a
// name lacking its NUL.
dblock_dev_config to_uapi(const DeviceConfig& config);
DeviceConfig from_uapi(const dblock_dev_config& config);
DeviceInfo from_uapi(const dblock_dev_info& info);  // without the backend

}  // namespace dblock

#endif  // DBLOCK_DEVICE_H_
