// Copyright (c) dblock authors.
#ifndef DBLOCK_NULL_BACKEND_H_
#define DBLOCK_NULL_BACKEND_H_

#include <cstdint>

#include "dblock/backend.h"

namespace dblock {

// A disk that stores nothing, for measuring the transport itself: every
// request is answered at once and no data is touched.  Writes are dropped;
// reads leave the buffer as it is, so a read returns whatever the request's
// slot of its queue's buffer last held (stale data of earlier requests, not
// zeros).  Do not put a file system on it.  Out-of-range requests still fail
// with EIO.  It has no write cache: supports_flush() is false.  Discard and
// write zeroes are offered and ignored.
// Thread-safety: fully thread-safe (stateless).
class NullBackend final : public Backend {
 public:
  explicit NullBackend(std::uint64_t size_bytes) : size_(size_bytes) {}

  std::uint64_t size() const override { return size_; }
  void read(std::uint64_t offset, std::span<std::byte> out) override;
  void write(std::uint64_t offset, std::span<const std::byte> data, bool fua) override;
  void flush() override {}
  bool supports_flush() const override { return false; }
  // Accepted and ignored, like writes.
  void discard(std::uint64_t offset, std::uint64_t length) override;
  void write_zeroes(std::uint64_t offset, std::uint64_t length, bool may_unmap) override;
  bool supports_discard() const override { return true; }
  bool supports_write_zeroes() const override { return true; }
  bool may_block() const override { return false; }

 private:
  const std::uint64_t size_;
};

}  // namespace dblock

#endif  // DBLOCK_NULL_BACKEND_H_
