// Copyright (c) dblock authors.
#include "dblock/file_backend.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "backend_internal.h"
#include "dblock/error.h"

namespace dblock {

FileBackend::FileBackend(std::string path, bool read_only)
    : path_(std::move(path)), read_only_(read_only) {
  fd_.reset(::open(path_.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
  if (!fd_) {
    const int err = errno;
    throw Error(err, "open " + path_);
  }
  struct stat st {};
  if (::fstat(fd_.get(), &st) < 0) {
    const int err = errno;
    throw Error(err, "stat " + path_);
  }
  if (S_ISREG(st.st_mode)) {
    size_ = static_cast<std::uint64_t>(st.st_size);
  } else if (S_ISBLK(st.st_mode)) {
    if (::ioctl(fd_.get(), BLKGETSIZE64, &size_) < 0) {
      const int err = errno;
      throw Error(err, "get size of " + path_ + ": ioctl BLKGETSIZE64");
    }
  } else {
    throw Error(EINVAL, path_ + " is neither a regular file nor a block device");
  }
}

void FileBackend::read(std::uint64_t offset, std::span<std::byte> out) {
  internal::check_range("read", offset, out.size(), size_);
  while (!out.empty()) {
    const ssize_t n = ::pread(fd_.get(), out.data(), out.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      throw Error(err, fmt::format("read {} bytes at offset {} of {}", out.size(), offset, path_));
    }
    if (n == 0) {
      // The file shrank since it was opened: what is gone reads as a hole.
      std::memset(out.data(), 0, out.size());
      return;
    }
    offset += static_cast<std::uint64_t>(n);
    out = out.subspan(static_cast<std::size_t>(n));
  }
}

void FileBackend::write(std::uint64_t offset, std::span<const std::byte> data, bool fua) {
  if (read_only_) throw Error(EROFS, "write to " + path_);
  internal::check_range("write", offset, data.size(), size_);
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd_.get(), data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      throw Error(err,
                  fmt::format("write {} bytes at offset {} of {}", data.size(), offset, path_));
    }
    if (n == 0) {  // would loop forever; no errno to report
      throw Error(EIO, fmt::format("write at offset {} of {}: no progress", offset, path_));
    }
    offset += static_cast<std::uint64_t>(n);
    data = data.subspan(static_cast<std::size_t>(n));
  }
  if (fua) flush();
}

void FileBackend::flush() {
  while (::fdatasync(fd_.get()) < 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    throw Error(err, "fdatasync " + path_);
  }
}

}  // namespace dblock
