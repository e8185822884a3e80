// Copyright (c) dblock authors.
#ifndef DBLOCK_ERROR_H_
#define DBLOCK_ERROR_H_

#include <string>
#include <string_view>
#include <system_error>

namespace dblock {

// A failed system call.  what() names the operation and the object, then the
// errno text, then an optional hint:
//   "create device 'foo': ioctl DBLOCK_CTL_CREATE on /dev/dblockctl: File exists"
// code() keeps the errno, so callers can still branch on it.
// Thread-safety: immutable; safe to share.
class Error : public std::system_error {
 public:
  Error(int errnum, const std::string& context, std::string_view hint = {});

  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

}  // namespace dblock

#endif  // DBLOCK_ERROR_H_
