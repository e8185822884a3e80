// Copyright (c) dblock authors.
#include "dblock/file_backend.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include <fmt/format.h>

#include "backend_internal.h"
#include "dblock/error.h"

namespace dblock {

namespace {

struct FreeDeleter {
  void operator()(std::byte* p) const noexcept { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<std::byte[], FreeDeleter>;

// `size` bytes aligned to `align` (a power of two), at least a page.
AlignedBuffer aligned_buffer(std::size_t align, std::size_t size) {
  void* p = nullptr;
  if (::posix_memalign(&p, std::max<std::size_t>(align, 4096), std::max<std::size_t>(size, 1)) !=
      0) {
    throw std::bad_alloc();
  }
  return AlignedBuffer(static_cast<std::byte*>(p));
}

bool aligned(std::uint64_t value, std::uint32_t align) { return value % align == 0; }

bool aligned(const void* p, std::uint32_t align) {
  return reinterpret_cast<std::uintptr_t>(p) % align == 0;
}

bool power_of_two(std::uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

std::string no_direct_io_hint(const std::string& path) {
  return fmt::format("the file system of {} does not support O_DIRECT; fix: leave out --direct-io",
                     path);
}

FileBackend::Options read_only_options(bool read_only) {
  FileBackend::Options options;
  options.read_only = read_only;
  return options;
}

}  // namespace

FileBackend::FileBackend(std::string path, bool read_only)
    : FileBackend(std::move(path), read_only_options(read_only)) {}

FileBackend::FileBackend(std::string path, const Options& options)
    : path_(std::move(path)),
      read_only_(options.read_only),
      direct_io_(options.direct_io),
      offset_(options.offset),
      size_limit_(options.size_limit) {
  if (size_limit_ && *size_limit_ == 0) {
    throw Error(EINVAL, "serve " + path_, "a size limit of 0 bytes leaves nothing to serve");
  }
  const int flags = (read_only_ ? O_RDONLY : O_RDWR) | O_CLOEXEC | (direct_io_ ? O_DIRECT : 0);
  fd_.reset(::open(path_.c_str(), flags));
  if (!fd_) {
    const int err = errno;
    if (direct_io_ && err == EINVAL) {
      throw Error(err, "open " + path_ + " with O_DIRECT", no_direct_io_hint(path_));
    }
    throw Error(err, "open " + path_);
  }
  struct stat st {};
  if (::fstat(fd_.get(), &st) < 0) {
    const int err = errno;
    throw Error(err, "stat " + path_);
  }
  std::uint64_t file_size = 0;
  if (S_ISREG(st.st_mode)) {
    file_size = static_cast<std::uint64_t>(st.st_size);
  } else if (S_ISBLK(st.st_mode)) {
    if (::ioctl(fd_.get(), BLKGETSIZE64, &file_size) < 0) {
      const int err = errno;
      throw Error(err, "get size of " + path_ + ": ioctl BLKGETSIZE64");
    }
    is_block_device_ = true;
    device_bytes_ = file_size;
    // BLKDISCARD and BLKZEROOUT take 512-byte sectors: keep requests aligned.
    int sector = 0;
    if (::ioctl(fd_.get(), BLKSSZGET, &sector) < 0) {
      const int err = errno;
      throw Error(err, "get logical block size of " + path_ + ": ioctl BLKSSZGET");
    }
    if (sector > 0 && !aligned(offset_, static_cast<std::uint32_t>(sector))) {
      throw Error(EINVAL, fmt::format("serve {} from offset {}", path_, offset_),
                  fmt::format("not a multiple of its logical block size, {} bytes", sector));
    }
  } else {
    throw Error(EINVAL, path_ + " is neither a regular file nor a block device");
  }
  if (offset_ > file_size) {
    throw Error(EINVAL, fmt::format("serve {} from offset {}", path_, offset_),
                fmt::format("beyond its end, {} bytes", file_size));
  }
  std::uint64_t served = file_size - offset_;
  if (size_limit_) served = std::min(served, *size_limit_);
  size_ = served;
  if (direct_io_) open_direct(file_size);
}

void FileBackend::open_direct(std::uint64_t file_size) {
  bool known = false;
#ifdef STATX_DIOALIGN
  struct statx stx {};
  if (::statx(fd_.get(), "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
      (stx.stx_mask & STATX_DIOALIGN) != 0) {
    if (stx.stx_dio_offset_align == 0) {  // the file system's own word
      throw Error(EINVAL, "direct I/O on " + path_, no_direct_io_hint(path_));
    }
    dio_align_ = stx.stx_dio_offset_align;
    dio_mem_align_ = std::max<std::uint32_t>(stx.stx_dio_mem_align, 1);
    known = true;
  }
#endif
  if (!known && is_block_device_) {
    int sector = 0;
    if (::ioctl(fd_.get(), BLKSSZGET, &sector) < 0 || sector <= 0) {
      const int err = errno;
      throw Error(err, "get logical block size of " + path_ + ": ioctl BLKSSZGET");
    }
    dio_align_ = dio_mem_align_ = static_cast<std::uint32_t>(sector);
    known = true;
  }
  if (!known) dio_align_ = dio_mem_align_ = probe_direct_alignment();
  if (!power_of_two(dio_align_) || !power_of_two(dio_mem_align_)) {
    throw Error(EINVAL, "direct I/O on " + path_,
                fmt::format("odd alignment: file offsets {}, memory {}", dio_align_,
                            dio_mem_align_));
  }
  if (!aligned(offset_, dio_align_)) {
    throw Error(EINVAL, fmt::format("serve {} with O_DIRECT from offset {}", path_, offset_),
                fmt::format("not a multiple of {} bytes, the alignment O_DIRECT needs there",
                            dio_align_));
  }
  // Some file systems accept the open and refuse the I/O: read one block.
  if (offset_ + dio_align_ <= file_size) {
    const AlignedBuffer buf = aligned_buffer(dio_mem_align_, dio_align_);
    ssize_t n;
    do {
      n = ::pread(fd_.get(), buf.get(), dio_align_, static_cast<off_t>(offset_));
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      const int err = errno;
      if (err == EINVAL) {
        throw Error(err, fmt::format("read {} bytes at offset {} of {} with O_DIRECT",
                                     dio_align_, offset_, path_),
                    no_direct_io_hint(path_));
      }
      throw Error(err, fmt::format("read {} bytes at offset {} of {} with O_DIRECT", dio_align_,
                                   offset_, path_));
    }
  }
}

// The smallest of 512..4096 that an O_DIRECT read accepts, for file systems
// that do not say (no STATX_DIOALIGN).  At the end of a file some accept
// anything: the I/O itself then reports a larger need (EINVAL).
std::uint32_t FileBackend::probe_direct_alignment() {
  constexpr std::uint32_t kMax = 4096;
  const AlignedBuffer buf = aligned_buffer(kMax, kMax);
  const std::uint64_t pos = offset_ / kMax * kMax;  // aligned for every candidate
  for (std::uint32_t align = 512; align <= kMax; align *= 2) {
    ssize_t n;
    do {
      n = ::pread(fd_.get(), buf.get(), align, static_cast<off_t>(pos));
    } while (n < 0 && errno == EINTR);
    if (n >= 0) return align;
    if (errno != EINVAL) {
      const int err = errno;
      throw Error(err, fmt::format("read {} bytes at offset {} of {} with O_DIRECT", align, pos,
                                   path_));
    }
  }
  throw Error(EINVAL, fmt::format("read up to {} bytes at offset {} of {} with O_DIRECT", kMax,
                                  pos, path_),
              no_direct_io_hint(path_));
}

void FileBackend::check_direct(std::string_view what, std::uint64_t offset,
                               std::uint64_t length) const {
  if (!aligned(offset_ + offset, dio_align_) || !aligned(length, dio_align_)) {
    throw Error(EINVAL,
                fmt::format("{} {} bytes at offset {} of {} with O_DIRECT", what, length,
                            offset_ + offset, path_),
                fmt::format("not a multiple of {} bytes, the alignment O_DIRECT needs there",
                            dio_align_));
  }
}

void FileBackend::read(std::uint64_t offset, std::span<std::byte> out) {
  internal::check_range("read", offset, out.size(), size_.load());
  if (direct_io_) {
    check_direct("read", offset, out.size());
    if (!aligned(out.data(), dio_mem_align_)) {
      const AlignedBuffer bounce = aligned_buffer(dio_mem_align_, out.size());
      read_at(offset_ + offset, std::span(bounce.get(), out.size()));
      std::memcpy(out.data(), bounce.get(), out.size());
      return;
    }
  }
  read_at(offset_ + offset, out);
}

void FileBackend::read_at(std::uint64_t pos, std::span<std::byte> out) {
  while (!out.empty()) {
    const ssize_t n = ::pread(fd_.get(), out.data(), out.size(), static_cast<off_t>(pos));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      throw Error(err, fmt::format("read {} bytes at offset {} of {}", out.size(), pos, path_));
    }
    pos += static_cast<std::uint64_t>(n);
    out = out.subspan(static_cast<std::size_t>(n));
    // n == 0: the file shrank since it was opened; what is gone reads as a
    // hole.  With O_DIRECT, a read stopping mid-block is the end too (the
    // next one would be misaligned).
    if (n == 0 || (direct_io_ && !out.empty() && !aligned(pos, dio_align_))) {
      std::memset(out.data(), 0, out.size());
      return;
    }
  }
}

void FileBackend::write(std::uint64_t offset, std::span<const std::byte> data, bool fua) {
  if (read_only_) throw Error(EROFS, "write to " + path_);
  internal::check_range("write", offset, data.size(), size_.load());
  if (direct_io_) {
    check_direct("write", offset, data.size());
    if (!aligned(data.data(), dio_mem_align_)) {
      const AlignedBuffer bounce = aligned_buffer(dio_mem_align_, data.size());
      std::memcpy(bounce.get(), data.data(), data.size());
      write_at(offset_ + offset, std::span<const std::byte>(bounce.get(), data.size()));
      if (fua) flush();
      return;
    }
  }
  write_at(offset_ + offset, data);
  if (fua) flush();
}

void FileBackend::write_at(std::uint64_t pos, std::span<const std::byte> data) {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd_.get(), data.data(), data.size(), static_cast<off_t>(pos));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      throw Error(err, fmt::format("write {} bytes at offset {} of {}", data.size(), pos, path_));
    }
    if (n == 0) {  // would loop forever; no errno to report
      throw Error(EIO, fmt::format("write at offset {} of {}: no progress", pos, path_));
    }
    pos += static_cast<std::uint64_t>(n);
    data = data.subspan(static_cast<std::size_t>(n));
  }
}

// Real zeroes, from an aligned buffer (Backend's default writes from one that
// O_DIRECT would refuse).
void FileBackend::write_zeroes_at(std::uint64_t pos, std::uint64_t length) {
  constexpr std::size_t kChunk = 256 * 1024;
  const std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(length, kChunk));
  const AlignedBuffer zeroes = aligned_buffer(dio_mem_align_, chunk);
  std::memset(zeroes.get(), 0, chunk);
  while (length > 0) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(length, chunk));
    write_at(pos, std::span<const std::byte>(zeroes.get(), n));
    pos += n;
    length -= n;
  }
}

void FileBackend::check_zeroing(std::uint64_t offset, std::uint64_t length,
                                std::string_view what) const {
  if (read_only_) throw Error(EROFS, fmt::format("{} on {}", what, path_));
  internal::check_range(what, offset, length, size_.load());
}

void FileBackend::block_range_ioctl(unsigned long request, std::uint64_t pos,
                                    std::uint64_t length, std::string_view what) {
  std::uint64_t range[2] = {pos, length};
  if (::ioctl(fd_.get(), request, range) < 0) {
    const int err = errno;
    throw Error(err, fmt::format("{} {} bytes at offset {} of {}", what, length, pos, path_));
  }
}

bool FileBackend::try_fallocate(int mode, std::uint64_t pos, std::uint64_t length,
                                std::string_view what) {
  while (::fallocate(fd_.get(), mode, static_cast<off_t>(pos), static_cast<off_t>(length)) < 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    // Some file systems (9p, older NFS; tmpfs for ZERO_RANGE) lack the mode.
    if (err == EOPNOTSUPP) return false;
    throw Error(err, fmt::format("{} {} bytes at offset {} of {}: fallocate", what, length, pos,
                                 path_));
  }
  return true;
}

void FileBackend::discard(std::uint64_t offset, std::uint64_t length) {
  check_zeroing(offset, length, "discard");
  const std::uint64_t pos = offset_ + offset;
  if (is_block_device_) {
    block_range_ioctl(BLKDISCARD, pos, length, "discard");
    return;
  }
  // A discard only allows the space to be freed: where holes cannot be
  // punched, the data simply stays.
  (void)try_fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, pos, length, "discard");
}

void FileBackend::write_zeroes(std::uint64_t offset, std::uint64_t length, bool may_unmap) {
  check_zeroing(offset, length, "write zeroes");
  const std::uint64_t pos = offset_ + offset;
  if (is_block_device_) {
    // Not BLKDISCARD even when unmapping is allowed: it does not promise
    // zeroes; BLKZEROOUT unmaps where the device can and reads back zeroes.
    block_range_ioctl(BLKZEROOUT, pos, length, "write zeroes");
    return;
  }
  if (may_unmap &&
      try_fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, pos, length, "write zeroes")) {
    return;
  }
  if (try_fallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, pos, length, "write zeroes")) {
    return;
  }
  if (direct_io_) check_direct("write zeroes", offset, length);
  write_zeroes_at(pos, length);
}

void FileBackend::resize(std::uint64_t new_size) {
  if (size_limit_ && new_size > *size_limit_) {
    throw Error(ENOSPC, fmt::format("grow {} to {} bytes", path_, new_size),
                fmt::format("beyond its size limit of {} bytes", *size_limit_));
  }
  if (is_block_device_) {
    const std::uint64_t room = device_bytes_ - offset_;
    if (new_size > room) {
      throw Error(ENOSPC, fmt::format("grow {} to {} bytes", path_, new_size),
                  offset_ == 0
                      ? fmt::format("the block device holds only {} bytes", room)
                      : fmt::format("the block device holds only {} bytes from offset {}", room,
                                    offset_));
    }
    size_ = new_size;
    return;
  }
  if (read_only_) throw Error(EROFS, fmt::format("resize {}", path_));
  const std::uint64_t end = offset_ + new_size;
  bool truncate = !size_limit_;  // the served part is the file's tail
  if (!truncate) {
    // A window of the file: extend the file if needed, never cut what
    // follows the window.
    struct stat st {};
    if (::fstat(fd_.get(), &st) < 0) {
      const int err = errno;
      throw Error(err, "stat " + path_);
    }
    truncate = end > static_cast<std::uint64_t>(st.st_size);
  }
  if (truncate && ::ftruncate(fd_.get(), static_cast<off_t>(end)) < 0) {
    const int err = errno;
    throw Error(err, fmt::format("resize {} to {} bytes: ftruncate", path_, end));
  }
  size_ = new_size;
}

std::optional<KernelFile> FileBackend::kernel_file() const {
  // The block layer aligns a request's pages to 512 bytes (dma_alignment).
  if (!direct_io_ || dio_mem_align_ > 512) return std::nullopt;
  return KernelFile{fd_.get(), offset_};
}

void FileBackend::flush() {
  while (::fdatasync(fd_.get()) < 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    throw Error(err, "fdatasync " + path_);
  }
  syncs_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace dblock
