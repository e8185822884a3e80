// Copyright (c) dblock authors.
#ifndef DBLOCK_FILE_BACKEND_H_
#define DBLOCK_FILE_BACKEND_H_

#include <cstdint>
#include <atomic>
#include <string>
#include <string_view>

#include "dblock/backend.h"
#include "dblock/unique_fd.h"

namespace dblock {

// A regular file or an existing block device.  The size is taken at open;
// a read past the file's current end (it shrank) returns zeros.
// flush() is fdatasync(); a FUA write is pwrite() then fdatasync().
// Thread-safety: fully thread-safe (positional I/O on one descriptor).
class FileBackend final : public Backend {
 public:
  explicit FileBackend(std::string path, bool read_only = false);

  std::uint64_t size() const override { return size_.load(); }
  void read(std::uint64_t offset, std::span<std::byte> out) override;
  void write(std::uint64_t offset, std::span<const std::byte> data, bool fua) override;
  void flush() override;
  bool supports_flush() const override { return true; }
  // Regular files: fallocate() punches holes (discard, or zeroes that may
  // be unmapped) or zeroes a range keeping it allocated; where the file
  // system has no such mode, a discard does nothing and zeroes are written.
  // Block devices: BLKDISCARD for discards, BLKZEROOUT for zeroes.
  void discard(std::uint64_t offset, std::uint64_t length) override;
  void write_zeroes(std::uint64_t offset, std::uint64_t length, bool may_unmap) override;
  bool supports_discard() const override { return true; }
  bool supports_write_zeroes() const override { return true; }
  // A regular file is truncated or extended; a block device cannot grow.
  void resize(std::uint64_t new_size) override;

  const std::string& path() const { return path_; }

 private:
  void check_zeroing(std::uint64_t offset, std::uint64_t length, std::string_view what) const;
  void block_range_ioctl(unsigned long request, std::uint64_t offset, std::uint64_t length,
                         std::string_view what);
  // False if the file's file system lacks the mode (EOPNOTSUPP).
  bool try_fallocate(int mode, std::uint64_t offset, std::uint64_t length, std::string_view what);

  std::string path_;
  bool read_only_;
  UniqueFd fd_;
  bool is_block_device_ = false;
  std::atomic<std::uint64_t> size_{0};
};

}  // namespace dblock

#endif  // DBLOCK_FILE_BACKEND_H_
