// Copyright (c) dblock authors.
#ifndef DBLOCK_BACKEND_H_
#define DBLOCK_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace dblock {

// A file whose positional reads and writes are all a backend does for a
// device's reads and writes (Backend::kernel_file()).
struct KernelFile {
  // Open for reading, and for writing unless the device is read-only;
  // O_DIRECT, so that the kernel's I/O on it is asynchronous.  Owned by the
  // backend, open as long as it is.
  int fd = -1;
  // The file's byte where the device begins.
  std::uint64_t offset = 0;
};

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

  // Where every read and write is positional I/O on one file at
  // KernelFile::offset + the request's offset, and nothing else: that file.
  // A server on dblock.ko (DBLOCK_FEAT_FILE_IO) then has the kernel do them
  // on the requests' own pages, as a loop device does (no copy through the
  // server, and no system call of its own), and read() and write() are not
  // called; flush(), discard() and write_zeroes() still are.  Turned off
  // with ServerOptions::kernel_file_io.  nullopt (the default): every
  // request comes here.
  virtual std::optional<KernelFile> kernel_file() const { return std::nullopt; }
};

}  // namespace dblock

#endif  // DBLOCK_BACKEND_H_
