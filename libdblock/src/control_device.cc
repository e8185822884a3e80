// Copyright (c) dblock authors.
#include "dblock/control_device.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "dblock/error.h"

namespace dblock {
namespace {

dblock_ctl_target target_by_name(std::string_view name) {
  validate_name(name);
  dblock_ctl_target target{};
  std::memcpy(target.name, name.data(), name.size());
  return target;
}

dblock_ctl_target target_by_id(std::uint32_t id) {
  dblock_ctl_target target{};
  target.id = id;
  return target;
}

}  // namespace

ControlDevice::ControlDevice(std::string path) : path_(std::move(path)) {
  fd_.reset(::open(path_.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd_) {
    const int err = errno;
    std::string_view hint;
    // ENOENT: explain_error() says the module is not loaded, and the fix.
    if (err == EACCES || err == EPERM) hint = "dblock devices are managed by root";
    throw Error(err, "open " + path_, hint);
  }
}

ModuleVersion ControlDevice::version() const {
  dblock_ctl_version v{};
  if (::ioctl(fd_.get(), DBLOCK_CTL_GET_VERSION, &v) < 0) {
    const int err = errno;
    throw Error(err, "get module version: ioctl DBLOCK_CTL_GET_VERSION on " + path_);
  }
  return {v.abi_version, v.features};
}

DeviceInfo ControlDevice::create(const DeviceConfig& config) {
  validate(config);
  const std::string what = fmt::format("create device '{}'", config.name);

  // The kernel would only say EINVAL or EEXIST; say which and why.
  const ModuleVersion v = version();
  if (v.abi_version != DBLOCK_ABI_VERSION) {
    throw Error(EPROTO, fmt::format("{}: dblock.ko speaks ABI version {}, this program {}", what,
                                    v.abi_version, DBLOCK_ABI_VERSION));
  }
  if (config.flush && !v.has(DBLOCK_FEAT_FLUSH)) {
    throw Error(EOPNOTSUPP, what + ": this dblock.ko does not support flush");
  }
  if (config.read_only && !v.has(DBLOCK_FEAT_READ_ONLY)) {
    throw Error(EOPNOTSUPP, what + ": this dblock.ko does not support read-only devices");
  }
  const std::string sysfs = "/sys/class/block/" + config.name;
  if (::access(sysfs.c_str(), F_OK) == 0) {
    throw Error(EEXIST, fmt::format("{}: a block device with that name exists ({})", what, sysfs));
  }

  dblock_ctl_create request{};
  request.config = to_uapi(config);
  if (::ioctl(fd_.get(), DBLOCK_CTL_CREATE, &request) < 0) {
    const int err = errno;
    throw Error(err, fmt::format("{}: ioctl DBLOCK_CTL_CREATE on {}", what, path_));
  }
  return from_uapi(request.info);
}

void ControlDevice::destroy(std::string_view name, bool force) {
  dblock_ctl_target target = target_by_name(name);
  target.flags = force ? DBLOCK_DESTROY_FORCE : 0;
  destroy_target(target, fmt::format("destroy device '{}'", name));
}

void ControlDevice::change(std::string_view name, const Changes& changes) {
  dblock_ctl_set_params p{};
  p.target = target_by_name(name);
  if (changes.size_bytes) {
    p.mask |= DBLOCK_SET_SIZE;
    p.size_bytes = *changes.size_bytes;
  }
  if (changes.timeout_ms) {
    p.mask |= DBLOCK_SET_TIMEOUT;
    p.timeout_ms = *changes.timeout_ms;
  }
  if (changes.recovery) {
    p.mask |= DBLOCK_SET_RECOVERY;
    p.recovery = static_cast<std::uint8_t>(*changes.recovery);
    p.grace_ms = changes.grace_ms;
  }
  if (::ioctl(fd_.get(), DBLOCK_CTL_SET_PARAMS, &p) < 0) {
    const int err = errno;
    throw Error(err, fmt::format("change device '{}': ioctl DBLOCK_CTL_SET_PARAMS on {}", name,
                                 path_),
                err == EINVAL && changes.size_bytes
                    ? "the size must be a non-zero multiple of the block size"
                    : "");
  }
}

void ControlDevice::destroy(std::uint32_t id, bool force) {
  dblock_ctl_target target = target_by_id(id);
  target.flags = force ? DBLOCK_DESTROY_FORCE : 0;
  destroy_target(target, fmt::format("destroy device {}", id));
}

void ControlDevice::destroy_target(const dblock_ctl_target& target, const std::string& what) {
  if (::ioctl(fd_.get(), DBLOCK_CTL_DESTROY, &target) < 0) {
    const int err = errno;
    throw Error(err, fmt::format("{}: ioctl DBLOCK_CTL_DESTROY on {}", what, path_),
                err == EBUSY ? "is its disk mounted or open?" : "");
  }
}

DeviceInfo ControlDevice::info(std::string_view name) const {
  return info_target(target_by_name(name), fmt::format("get info of device '{}'", name));
}

DeviceInfo ControlDevice::info(std::uint32_t id) const {
  return info_target(target_by_id(id), fmt::format("get info of device {}", id));
}

DeviceInfo ControlDevice::info_target(const dblock_ctl_target& target,
                                      const std::string& what) const {
  dblock_ctl_get_info request{};
  request.target = target;
  if (::ioctl(fd_.get(), DBLOCK_CTL_GET_INFO, &request) < 0) {
    const int err = errno;
    throw Error(err, fmt::format("{}: ioctl DBLOCK_CTL_GET_INFO on {}", what, path_));
  }
  DeviceInfo info = from_uapi(request.info);
  if (info.features & DBLOCK_FEAT_BACKEND_DESC) {
    dblock_ctl_get_backend backend{};
    backend.target = target;
    if (::ioctl(fd_.get(), DBLOCK_CTL_GET_BACKEND, &backend) < 0) {
      const int err = errno;
      throw Error(err, fmt::format("{}: ioctl DBLOCK_CTL_GET_BACKEND on {}", what, path_));
    }
    info.backend.assign(backend.backend.text,
                        strnlen(backend.backend.text, sizeof(backend.backend.text)));
  }
  return info;
}

std::vector<DeviceInfo> ControlDevice::list() const {
  std::vector<std::uint32_t> ids(16);
  for (;;) {
    dblock_ctl_list request{};
    request.ids_ptr = reinterpret_cast<std::uintptr_t>(ids.data());
    request.capacity = static_cast<std::uint32_t>(ids.size());
    if (::ioctl(fd_.get(), DBLOCK_CTL_LIST, &request) < 0) {
      const int err = errno;
      throw Error(err, "list devices: ioctl DBLOCK_CTL_LIST on " + path_);
    }
    if (request.count <= request.capacity) {
      ids.resize(request.count);
      break;
    }
    // Devices were created since the count was taken: retry with room to spare.
    ids.resize(request.count + 16);
  }

  std::vector<DeviceInfo> devices;
  devices.reserve(ids.size());
  for (const std::uint32_t id : ids) {
    try {
      devices.push_back(info(id));
    } catch (const Error& e) {
      // Destroyed since LIST: not an error.
      if (e.code().value() != ENOENT && e.code().value() != ENODEV) throw;
    }
  }
  return devices;
}

}  // namespace dblock
