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
    std::uint64_t bytes = 0;
    if (::ioctl(fd_.get(), BLKGETSIZE64, &bytes) < 0) {
      const int err = errno;
      throw Error(err, "get size of " + path_ + ": ioctl BLKGETSIZE64");
    }
    size_ = bytes;
    is_block_device_ = true;
  } else {
    throw Error(EINVAL, path_ + " is neither a regular file nor a block device");
  }
}

void FileBackend::read(std::uint64_t offset, std::span<std::byte> out) {
  internal::check_range("read", offset, out.size(), size_.load());
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
  internal::check_range("write", offset, data.size(), size_.load());
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

void FileBackend::check_zeroing(std::uint64_t offset, std::uint64_t length,
                                std::string_view what) const {
  if (read_only_) throw Error(EROFS, fmt::format("{} on {}", what, path_));
  internal::check_range(what, offset, length, size_.load());
}

void FileBackend::block_range_ioctl(unsigned long request, std::uint64_t offset,
                                    std::uint64_t length, std::string_view what) {
  std::uint64_t range[2] = {offset, length};
  if (::ioctl(fd_.get(), request, range) < 0) {
    const int err = errno;
    throw Error(err, fmt::format("{} {} bytes at offset {} of {}", what, length, offset, path_));
  }
}

bool FileBackend::try_fallocate(int mode, std::uint64_t offset, std::uint64_t length,
                                std::string_view what) {
  while (::fallocate(fd_.get(), mode, static_cast<off_t>(offset), static_cast<off_t>(length)) < 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    // Some file systems (9p, older NFS; tmpfs for ZERO_RANGE) lack the mode.
    if (err == EOPNOTSUPP) return false;
    throw Error(err, fmt::format("{} {} bytes at offset {} of {}: fallocate", what, length,
                                 offset, path_));
  }
  return true;
}

void FileBackend::discard(std::uint64_t offset, std::uint64_t length) {
  check_zeroing(offset, length, "discard");
  if (is_block_device_) {
    block_range_ioctl(BLKDISCARD, offset, length, "discard");
    return;
  }
  // A discard only allows the space to be freed: where holes cannot be
  // punched, the data simply stays.
  (void)try_fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length, "discard");
}

void FileBackend::write_zeroes(std::uint64_t offset, std::uint64_t length, bool may_unmap) {
  check_zeroing(offset, length, "write zeroes");
  if (is_block_device_) {
    // Not BLKDISCARD even when unmapping is allowed: it does not promise
    // zeroes; BLKZEROOUT unmaps where the device can and reads back zeroes.
    block_range_ioctl(BLKZEROOUT, offset, length, "write zeroes");
    return;
  }
  if (may_unmap &&
      try_fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length, "write zeroes")) {
    return;
  }
  if (try_fallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, length, "write zeroes")) {
    return;
  }
  Backend::write_zeroes(offset, length, false);  // real zeroes
}

void FileBackend::resize(std::uint64_t new_size) {
  if (is_block_device_) {
    Backend::resize(new_size);
    size_ = new_size;
    return;
  }
  if (read_only_) throw Error(EROFS, fmt::format("resize {}", path_));
  if (::ftruncate(fd_.get(), static_cast<off_t>(new_size)) < 0) {
    const int err = errno;
    throw Error(err, fmt::format("resize {} to {} bytes: ftruncate", path_, new_size));
  }
  size_ = new_size;
}

void FileBackend::flush() {
  while (::fdatasync(fd_.get()) < 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    throw Error(err, "fdatasync " + path_);
  }
}

}  // namespace dblock
