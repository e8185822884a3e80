// Copyright (c) dblock authors.
#include "dblock/queue_buffer.h"

#include <sys/types.h>

#include <linux/dblock.h>

#include <fmt/format.h>

namespace dblock {

QueueBuffer::QueueBuffer(int channel, const DeviceInfo& info, std::uint16_t queue,
                         std::string_view channel_path) {
  const std::string what = fmt::format("{} (queue {})", channel_path, queue);
  if (info.features & DBLOCK_FEAT_USER_BUFFERS) {
    mapping_ = Mapping::anonymous(info.buffer_bytes, what);
    serve_ptr_ = reinterpret_cast<std::uintptr_t>(mapping_.bytes().data());
  } else {
    mapping_ = Mapping(channel, info.buffer_bytes,
                       static_cast<off_t>(queue) * info.buffer_bytes, what);
  }
}

}  // namespace dblock
