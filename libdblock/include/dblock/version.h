// Copyright (c) dblock authors.
#ifndef DBLOCK_VERSION_H_
#define DBLOCK_VERSION_H_

namespace dblock {

// The release of the libdblock a program runs with, "MAJOR.MINOR.PATCH":
// the same number as the dblock.ko of that release (modinfo -F version) and
// its tools' --version.  The module's ABI is ControlDevice::version().
const char* library_version() noexcept;

}  // namespace dblock

#endif  // DBLOCK_VERSION_H_
