// Copyright (c) dblock authors.
// The dblock.ko channel of a Server (channel.h).
#include "channel.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "dblock/error.h"
#include "dblock/queue_buffer.h"
#include "dblock/unique_fd.h"
#include "queue_thread.h"

namespace dblock::internal {

void Channel::set_size(std::uint64_t bytes) {
  throw Error(EOPNOTSUPP, fmt::format("set the disk's size to {} bytes", bytes),
              "the kernel tells the server of resizes on this channel");
}

namespace {

class DblockChannel final : public Channel {
 public:
  DblockChannel(std::uint32_t id, const std::string& backend_description)
      : path_(fmt::format("{}/{}", kChannelDir, id)) {
    const std::string what = fmt::format("serve device {}", id);
    fd_.reset(::open(path_.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd_) {
      const int err = errno;
      throw Error(err, fmt::format("{}: open {}", what, path_),
                  err == EBUSY ? "another server is attached" : "");
    }
    info_ = from_uapi(read_channel_info(fd_.get(), what, path_));
    context_ = fmt::format("serve device '{}' (id {})", info_.config.name, id);
    if ((info_.features & DBLOCK_FEAT_KICK) == 0) {
      throw Error(EPROTO, fmt::format("{}: this dblock.ko has no DBLOCK_IOC_KICK", context_),
                  "use dblock.ko and libdblock of the same release");
    }
    if (!backend_description.empty() && (info_.features & DBLOCK_FEAT_BACKEND_DESC) != 0) {
      dblock_backend backend{};
      const std::string text = fit_backend_description(backend_description);
      std::memcpy(backend.text, text.data(), text.size());
      if (::ioctl(fd_.get(), DBLOCK_IOC_SET_BACKEND, &backend) < 0) {
        const int err = errno;
        throw Error(err, fmt::format("{}: set the backend's description '{}': ioctl "
                                     "DBLOCK_IOC_SET_BACKEND on {}",
                                     context_, text, path_));
      }
      info_.backend = text;
    }
    const DeviceConfig& config = info_.config;
    const std::uint64_t needed = std::uint64_t{config.queue_depth} * config.max_io_bytes;
    if (config.queues == 0 || info_.buffer_bytes < needed) {
      throw Error(EPROTO, fmt::format("{}: kernel reports {} queues of {} buffer bytes, need {}",
                                      context_, config.queues, info_.buffer_bytes, needed));
    }
    buffers_.reserve(config.queues);
    for (std::uint16_t i = 0; i < config.queues; ++i) {
      buffers_.emplace_back(fd_.get(), info_, i, path_);
    }
  }

  DeviceInfo info() override {
    DeviceInfo now = from_uapi(read_channel_info(fd_.get(), context_, path_));
    now.backend = info_.backend;
    return now;
  }

  std::span<std::byte> buffer(std::uint16_t queue) override { return buffers_.at(queue).bytes(); }

  bool serve(dblock_serve& s) override {
    s.buffer_ptr = buffers_.at(s.queue).serve_ptr();
    if (::ioctl(fd_.get(), DBLOCK_IOC_SERVE, &s) == 0) return true;
    const int err = errno;
    if (err == EINTR) return false;
    throw Error(err, fmt::format("{}: ioctl DBLOCK_IOC_SERVE (queue {}) on {}", context_, s.queue,
                                 path_));
  }

  void kick(std::uint16_t queue) noexcept override {
    ::ioctl(fd_.get(), DBLOCK_IOC_KICK, static_cast<unsigned long>(queue));
  }

  bool can_commit() const override { return (info_.features & DBLOCK_FEAT_COMMIT) != 0; }

  std::optional<std::uint32_t> commit(std::uint16_t queue,
                                      const dblock_completion& c) noexcept override {
    if (!can_commit() || queue >= buffers_.size()) return std::nullopt;
    dblock_commit arg{};
    arg.completions_ptr = reinterpret_cast<std::uintptr_t>(&c);
    arg.nr_completions = 1;
    arg.buffer_ptr = buffers_[queue].serve_ptr();
    arg.queue = queue;
    if (::ioctl(fd_.get(), DBLOCK_IOC_COMMIT, &arg) != 0) return std::nullopt;
    return arg.nr_rejected;
  }

  bool set_file(int fd, std::uint64_t offset) override {
    if ((info_.features & DBLOCK_FEAT_FILE_IO) == 0) return false;
    dblock_file arg{};
    arg.fd = fd;
    arg.flags = DBLOCK_FILE_NO_WRITE_DATA;
    arg.offset = offset;
    if (::ioctl(fd_.get(), DBLOCK_IOC_SET_FILE, &arg) == 0) return true;
    const int err = errno;
    throw Error(err, fmt::format("{}: ioctl DBLOCK_IOC_SET_FILE (fd {}, offset {}) on {}",
                                 context_, fd, offset, path_));
  }

  bool start() override {
    if (::ioctl(fd_.get(), DBLOCK_IOC_START) == 0) return true;
    const int err = errno;
    // Taking over a live device (its previous server went away): the disk
    // is there already.
    if (err == EALREADY) return false;
    throw Error(err, fmt::format("{}: ioctl DBLOCK_IOC_START on {}", context_, path_));
  }

 private:
  std::string path_;
  std::string context_;
  UniqueFd fd_;
  DeviceInfo info_;
  std::vector<QueueBuffer> buffers_;
};

}  // namespace

std::unique_ptr<Channel> open_dblock_channel(std::uint32_t id,
                                             const std::string& backend_description) {
  return std::make_unique<DblockChannel>(id, backend_description);
}

}  // namespace dblock::internal
