// Copyright (c) dblock authors.
#ifndef DBLOCK_DISPATCH_H_
#define DBLOCK_DISPATCH_H_

#include <linux/dblock.h>

#include <atomic>
#include <cstddef>
#include <span>

#include "dblock/backend.h"
#include "dblock/device.h"

namespace dblock {

// Turns one request fetched from the kernel into a backend call and the
// completion that answers it.  Kept apart from Server so that it can be
// tested without the kernel.
// Thread-safety: const after construction; safe from many threads if the
// Backend is.
class Dispatcher {
 public:
  // Both must outlive the Dispatcher.
  Dispatcher(Backend& backend, const DeviceConfig& config);

  // `buffer` is the queue's whole buffer area; the request's data lives at
  // tag * max_io_bytes.  A request that does not fit the device or the
  // buffer is answered -EIO without touching either.
  dblock_completion handle(const dblock_request& request, std::span<std::byte> buffer) const;

  // The device was resized: requests are checked against the new size.
  void set_size(std::uint64_t size_bytes) { size_bytes_ = size_bytes; }

 private:
  int execute(const dblock_request& request, std::span<std::byte> buffer) const;
  Backend& backend_;
  const DeviceConfig& config_;
  std::atomic<std::uint64_t> size_bytes_;
};

}  // namespace dblock

#endif  // DBLOCK_DISPATCH_H_
