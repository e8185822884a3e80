// Copyright (c) dblock authors.
#ifndef DBLOCK_QUEUE_BUFFER_H_
#define DBLOCK_QUEUE_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "dblock/device.h"
#include "dblock/mapping.h"

namespace dblock {

// One hardware queue's buffer area, where request data lives at
// tag * max_io_bytes.  With a module that takes the server's memory
// (DBLOCK_FEAT_USER_BUFFERS) it is private memory of ours, touched only where
// requests use it and passed to the kernel in every DBLOCK_IOC_SERVE;
// otherwise it is the kernel's area, mapped from the channel.
// Thread-safety: immutable once built.
class QueueBuffer {
 public:
  QueueBuffer(int channel, const DeviceInfo& info, std::uint16_t queue,
              std::string_view channel_path);

  std::span<std::byte> bytes() const noexcept { return mapping_.bytes(); }
  // dblock_serve.buffer_ptr: our memory's address, or 0 for the mmapped area.
  std::uint64_t serve_ptr() const noexcept { return serve_ptr_; }

 private:
  Mapping mapping_;
  std::uint64_t serve_ptr_ = 0;
};

}  // namespace dblock

#endif  // DBLOCK_QUEUE_BUFFER_H_
