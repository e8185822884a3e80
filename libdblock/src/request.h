// Copyright (c) dblock authors.
#ifndef DBLOCK_SRC_REQUEST_H_
#define DBLOCK_SRC_REQUEST_H_

#include <linux/dblock.h>

#include <cstdint>
#include <exception>
#include <span>

#include "dblock/async_backend.h"
#include "dblock/backend.h"
#include "dblock/device.h"

namespace dblock::internal {

// 0 if the kernel's request fits the device as configured and `size_bytes`
// (its size now), else the errno to answer it with (negative): out of
// range, misaligned, a tag, op or flag the device did not declare.  The
// kernel should never send such a request; checking keeps a bug there (or a
// mismatched module) from making a backend touch memory out of range.  The
// one place requests are checked.
int check_request(const dblock_request& request, const DeviceConfig& config,
                  std::uint64_t size_bytes);

// check_request(), then the backend's view of the request in `out`: for a
// read or write, its data is the request's slot of the queue's `buffer`
// (tag * max_io_bytes; -EIO if the buffer is too small).
int prepare_request(const dblock_request& request, const DeviceConfig& config,
                    std::uint64_t size_bytes, std::span<std::byte> buffer, AsyncRequest& out);

// The negative errno a request fails with when its backend threw `error`:
// a std::system_error's errno (other categories: EIO), ENOMEM for
// std::bad_alloc, EIO for anything else.  The one place exceptions are mapped.
int errno_of(const std::exception_ptr& error) noexcept;

// Runs a checked request on a Backend; 0 or a negative errno, never throws.
int run_request(Backend& backend, const AsyncRequest& request) noexcept;

}  // namespace dblock::internal

#endif  // DBLOCK_SRC_REQUEST_H_
