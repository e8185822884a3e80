// Copyright (c) dblock authors.
#ifndef DBLOCK_BACKEND_H_
#define DBLOCK_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <span>

namespace dblock {

// Where a served device's data lives.  Offsets and lengths come from
// validated requests: within size(), multiples of the block size.
// Failures are reported by throwing: a std::system_error (dblock::Error is
// one) fails that request with its errno, anything else with EIO; the server
// keeps serving either way.
// Thread-safety: implementations must accept concurrent calls from several
// queue threads, for different requests (possibly overlapping ranges).
class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::uint64_t size() const = 0;
  virtual void read(std::uint64_t offset, std::span<std::byte> out) = 0;
  // fua: the data must be durable before returning.
  virtual void write(std::uint64_t offset, std::span<const std::byte> data, bool fua) = 0;
  // Makes every completed write durable.
  virtual void flush() = 0;
  // Whether flush() does anything, i.e. whether the device should be created
  // with DBLOCK_DEV_FLUSH (a volatile write cache).
  virtual bool supports_flush() const = 0;

  // The range's data is no longer needed; it may read back as anything,
  // though the library's backends return zeroes.  Called only on devices
  // created with DBLOCK_DEV_DISCARD (see supports_discard()).
  virtual void discard(std::uint64_t offset, std::uint64_t length);
  // The range must read back as zeroes.  may_unmap: storage may be freed
  // (else it must stay allocated).  The default writes zero buffers.
  virtual void write_zeroes(std::uint64_t offset, std::uint64_t length, bool may_unmap);
  virtual bool supports_discard() const { return false; }
  virtual bool supports_write_zeroes() const { return false; }

  // Whether read/write/flush may wait for storage (a disk, the network):
  // the server then runs requests on worker threads, so that many are in
  // flight (ServeOptions::workers).  Backends that only copy memory say
  // false and run on the queue threads.
  virtual bool may_block() const { return true; }

  // The device was resized (grown or shrunk) to new_size bytes (over ublk:
  // is being grown, and an exception refuses the grow).  The default refuses
  // to grow past size() and accepts a shrink.
  virtual void resize(std::uint64_t new_size);
};

}  // namespace dblock

#endif  // DBLOCK_BACKEND_H_
