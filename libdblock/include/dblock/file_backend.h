// Copyright (c) dblock authors.
#ifndef DBLOCK_FILE_BACKEND_H_
#define DBLOCK_FILE_BACKEND_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "dblock/backend.h"
#include "dblock/unique_fd.h"

namespace dblock {

// A regular file or an existing block device, or a part of one (like
// losetup --offset/--sizelimit).  The size is taken at open;
// a read past the file's current end (it shrank) returns zeros.
// flush() is fdatasync(); a FUA write is pwrite() then fdatasync().
// may_block(): with direct_io or on a block device every request waits for
// the storage, so the server runs them on worker threads (many in flight);
// buffered I/O to a regular file mostly meets the page cache, where handing
// each request to a worker costs more than it saves (loop devices serve
// buffered files from one thread, too).  ServeOptions::workers overrides it.
// Served through a UringFileBackend (dblock/uring_file_backend.h) instead,
// its reads, writes and flushes go through io_uring, without workers.
// Thread-safety: fully thread-safe (positional I/O on one descriptor).
class FileBackend final : public Backend {
 public:
  struct Options {
    // Open read-only: writes, discards, zeroing and resizing fail with EROFS.
    bool read_only = false;
    // O_DIRECT, bypassing the page cache (like losetup --direct-io=on):
    // offsets and lengths must then be multiples of direct_io_alignment(),
    // as a device's requests are when its block size is at least that.
    // Checked at open: a file system without O_DIRECT is an error (EINVAL).
    // Buffers need not be aligned (a misaligned one goes through an aligned
    // copy), but the server's are, and so are never copied.
    bool direct_io = false;
    // Serve the file from this byte on: every I/O, discard, zeroing and
    // resize is shifted by it.  With direct_io, a multiple of the alignment;
    // for a block device, a multiple of its logical block size.
    std::uint64_t offset = 0;
    // Serve at most this many bytes (from offset); nullopt: up to the end of
    // the file.  resize() never grows past it.  0 is refused.
    std::optional<std::uint64_t> size_limit;
  };

  FileBackend(std::string path, const Options& options);
  explicit FileBackend(std::string path, bool read_only = false);

  // The served length: min(file size - offset, size_limit) at open, then
  // what resize() set.
  std::uint64_t size() const override { return size_.load(); }
  void read(std::uint64_t offset, std::span<std::byte> out) override;
  void write(std::uint64_t offset, std::span<const std::byte> data, bool fua) override;
  void flush() override;
  bool supports_flush() const override { return true; }
  // Regular files: fallocate() punches holes (discard, or zeroes that may
  // be unmapped) or zeroes a range keeping it allocated; where the file
  // system has no such mode, a discard does nothing and zeroes are written
  // (from an aligned buffer, so also with direct_io).
  // Block devices: BLKDISCARD for discards, BLKZEROOUT for zeroes.
  void discard(std::uint64_t offset, std::uint64_t length) override;
  void write_zeroes(std::uint64_t offset, std::uint64_t length, bool may_unmap) override;
  bool supports_discard() const override { return true; }
  bool supports_write_zeroes() const override { return true; }
  // A regular file is extended when the served part grows past its end;
  // when it shrinks, the file is truncated only if no size_limit was given
  // (the served part then is the file's tail).  A block device cannot grow
  // past its end.  Growing past size_limit fails with ENOSPC.
  void resize(std::uint64_t new_size) override;

  const std::string& path() const { return path_; }
  // The open file: for I/O the caller issues itself (UringFileBackend),
  // at offset() + a device offset.
  int descriptor() const { return fd_.get(); }
  bool read_only() const { return read_only_; }
  bool direct_io() const { return direct_io_; }
  bool may_block() const override { return direct_io_ || is_block_device_; }
  // With direct_io, the open file at offset(), for the kernel to do the
  // reads and writes itself; its buffers come from the block layer, aligned
  // to 512 bytes, so a file system that needs more gets none.  Without
  // direct_io, none: buffered I/O in the kernel would block the queue
  // thread that answers the request.
  std::optional<KernelFile> kernel_file() const override;
  std::uint64_t offset() const { return offset_; }
  const std::optional<std::uint64_t>& size_limit() const { return size_limit_; }
  // With direct_io: the alignment (a power of two) O_DIRECT needs of file
  // offsets and lengths here: a block device's logical block size, the file
  // system's (statx STATX_DIOALIGN) where it says, else found by probing.
  // A device served with direct_io needs a block size of at least this.
  // Without direct_io: 1 (anything goes).
  std::uint32_t direct_io_alignment() const { return dio_align_; }
  // How many fdatasync() calls flush() and FUA writes made that succeeded:
  // makes durability requests observable (tests, statistics).
  std::uint64_t syncs_issued() const { return syncs_.load(std::memory_order_relaxed); }

 private:
  void open_direct(std::uint64_t file_size);
  std::uint32_t probe_direct_alignment();
  void check_direct(std::string_view what, std::uint64_t offset, std::uint64_t length) const;
  void read_at(std::uint64_t pos, std::span<std::byte> out);
  void write_at(std::uint64_t pos, std::span<const std::byte> data);
  void write_zeroes_at(std::uint64_t pos, std::uint64_t length);
  void check_zeroing(std::uint64_t offset, std::uint64_t length, std::string_view what) const;
  void block_range_ioctl(unsigned long request, std::uint64_t pos, std::uint64_t length,
                         std::string_view what);
  // False if the file's file system lacks the mode (EOPNOTSUPP).
  bool try_fallocate(int mode, std::uint64_t pos, std::uint64_t length, std::string_view what);

  std::string path_;
  bool read_only_;
  bool direct_io_;
  std::uint64_t offset_;
  std::optional<std::uint64_t> size_limit_;
  UniqueFd fd_;
  bool is_block_device_ = false;
  std::uint64_t device_bytes_ = 0;  // a block device's size
  std::uint32_t dio_align_ = 1;      // file offsets and lengths
  std::uint32_t dio_mem_align_ = 1;  // buffers
  std::atomic<std::uint64_t> size_{0};
  std::atomic<std::uint64_t> syncs_{0};
};

}  // namespace dblock

#endif  // DBLOCK_FILE_BACKEND_H_
