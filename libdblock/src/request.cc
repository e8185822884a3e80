// Copyright (c) dblock authors.
#include "request.h"

#include <cerrno>
#include <new>
#include <system_error>

namespace dblock::internal {

int check_request(const dblock_request& r, const DeviceConfig& c, std::uint64_t size_bytes) {
  const std::uint64_t offset = r.offset;
  const std::uint64_t length = r.length;
  if (r.tag >= c.queue_depth) return -EIO;
  switch (r.op) {
    case DBLOCK_OP_FLUSH:
      return c.flush && r.flags == 0 ? 0 : -EIO;
    case DBLOCK_OP_READ:
    case DBLOCK_OP_WRITE:
      if (length > c.max_io_bytes) return -EIO;
      if (r.flags & ~std::uint32_t{DBLOCK_REQ_FUA}) return -EIO;
      if ((r.flags & DBLOCK_REQ_FUA) && (r.op != DBLOCK_OP_WRITE || !c.flush)) return -EIO;
      break;
    case DBLOCK_OP_DISCARD:
      if (!c.discard || r.flags != 0) return -EIO;
      break;
    case DBLOCK_OP_WRITE_ZEROES:
      if (!c.write_zeroes || (r.flags & ~std::uint32_t{DBLOCK_REQ_NOUNMAP}) != 0) return -EIO;
      break;
    default:
      return -EIO;
  }
  if (length == 0 || offset % c.block_size != 0 || length % c.block_size != 0 ||
      offset > size_bytes || length > size_bytes - offset) {
    return -EIO;
  }
  if (r.op != DBLOCK_OP_READ && c.read_only) return -EROFS;
  return 0;
}

int prepare_request(const dblock_request& r, const DeviceConfig& c, std::uint64_t size_bytes,
                    std::span<std::byte> buffer, AsyncRequest& out) {
  const int bad = check_request(r, c, size_bytes);
  if (bad != 0) return bad;
  out = AsyncRequest{};
  out.op = r.op;
  out.flags = r.flags;
  out.offset = r.offset;
  out.length = r.op == DBLOCK_OP_FLUSH ? 0 : r.length;
  if (r.op == DBLOCK_OP_READ || r.op == DBLOCK_OP_WRITE) {
    const std::uint64_t slot = std::uint64_t{r.tag} * c.max_io_bytes;
    if (slot > buffer.size() || r.length > buffer.size() - slot) return -EIO;
    out.data = buffer.subspan(slot, r.length);
  }
  return 0;
}

int errno_of(const std::exception_ptr& error) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const std::system_error& e) {
    const int err = e.code().value();
    // Only a real errno may reach the kernel; other categories become EIO.
    const bool is_errno = e.code().category() == std::system_category() ||
                          e.code().category() == std::generic_category();
    return (is_errno && err > 0 && err < 4096) ? -err : -EIO;
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  } catch (...) {
    return -EIO;
  }
}

int run_request(Backend& backend, const AsyncRequest& r) noexcept {
  try {
    switch (r.op) {
      case DBLOCK_OP_READ:
        backend.read(r.offset, r.data);
        return 0;
      case DBLOCK_OP_WRITE:
        backend.write(r.offset, r.data, (r.flags & DBLOCK_REQ_FUA) != 0);
        return 0;
      case DBLOCK_OP_FLUSH:
        backend.flush();
        return 0;
      case DBLOCK_OP_DISCARD:
        backend.discard(r.offset, r.length);
        return 0;
      case DBLOCK_OP_WRITE_ZEROES:
        backend.write_zeroes(r.offset, r.length, (r.flags & DBLOCK_REQ_NOUNMAP) == 0);
        return 0;
      default:
        return -EIO;
    }
  } catch (...) {
    return errno_of(std::current_exception());
  }
}

}  // namespace dblock::internal
