// Copyright (c) dblock authors.
#ifndef DBLOCK_FILE_BACKEND_H_
#define DBLOCK_FILE_BACKEND_H_

#include <cstdint>
#include <string>

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

  std::uint64_t size() const override { return size_; }
  void read(std::uint64_t offset, std::span<std::byte> out) override;
  void write(std::uint64_t offset, std::span<const std::byte> data, bool fua) override;
  void flush() override;
  bool supports_flush() const override { return true; }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool read_only_;
  UniqueFd fd_;
  std::uint64_t size_ = 0;
};

}  // namespace dblock

#endif  // DBLOCK_FILE_BACKEND_H_
