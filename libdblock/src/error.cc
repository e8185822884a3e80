// Copyright (c) dblock authors.
#include "dblock/error.h"

namespace dblock {

Error::Error(int errnum, const std::string& context, std::string_view hint)
    : std::system_error(errnum, std::system_category(), context),
      message_(context + ": " + code().message()) {
  if (!hint.empty()) {
    message_ += " (";
    message_ += hint;
    message_ += ")";
  }
}

}  // namespace dblock
