// Copyright (c) dblock authors.
#ifndef DBLOCK_UNIQUE_FD_H_
#define DBLOCK_UNIQUE_FD_H_

#include <unistd.h>

namespace dblock {

// Sole owner of a file descriptor, closed on destruction.
// Thread-safety: none; like a plain int.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }

  int release() noexcept {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

  void reset(int fd = -1) noexcept {
    // close() errors are not actionable here: the descriptor is gone anyway.
    if (fd_ >= 0 && fd_ != fd) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace dblock

#endif  // DBLOCK_UNIQUE_FD_H_
