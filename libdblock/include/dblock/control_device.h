// Copyright (c) dblock authors.
#ifndef DBLOCK_CONTROL_DEVICE_H_
#define DBLOCK_CONTROL_DEVICE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dblock/device.h"
#include "dblock/unique_fd.h"

namespace dblock {

// The module's control device, /dev/dblockctl: creates, destroys, lists and
// describes devices.  All methods throw dblock::Error on system errors and
// std::invalid_argument on bad input (checked before any ioctl).
// Thread-safety: safe for concurrent use; every call is independent ioctls.
class ControlDevice {
 public:
  static constexpr std::string_view kDefaultPath = "/dev/dblockctl";

  explicit ControlDevice(std::string path = std::string(kDefaultPath));

  ModuleVersion version() const;

  // The new device has no server yet: its disk appears once a Server runs.
  DeviceInfo create(const DeviceConfig& config);

  // EBUSY while the disk is open or mounted, unless force: then its I/O
  // fails and the disk goes away under its users.
  void destroy(std::string_view name, bool force = false);
  void destroy(std::uint32_t id, bool force = false);

  // Changes a device that exists: each field that is set is applied.
  struct Changes {
    std::optional<std::uint64_t> size_bytes;  // online resize
    std::optional<std::uint32_t> timeout_ms;  // 0: 30 s; kTimeoutNever
    std::optional<Recovery> recovery;         // with grace_ms (0: forever)
    std::uint32_t grace_ms = 0;
  };
  void change(std::string_view name, const Changes& changes);

  DeviceInfo info(std::string_view name) const;
  DeviceInfo info(std::uint32_t id) const;

  // Every device, by increasing id.  A device destroyed while listing is
  // left out rather than reported as an error.
  std::vector<DeviceInfo> list() const;

  const std::string& path() const { return path_; }

 private:
  void destroy_target(const dblock_ctl_target& target, const std::string& what);
  DeviceInfo info_target(const dblock_ctl_target& target, const std::string& what) const;

  std::string path_;
  UniqueFd fd_;
};

}  // namespace dblock

#endif  // DBLOCK_CONTROL_DEVICE_H_
