// Copyright (c) dblock authors.
#include "dblock/version.h"

namespace dblock {

const char* library_version() noexcept { return DBLOCK_VERSION_STRING; }

}  // namespace dblock
