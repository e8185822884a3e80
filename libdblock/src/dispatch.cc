// Copyright (c) dblock authors.
#include "dblock/dispatch.h"

#include <cerrno>
#include <exception>
#include <new>
#include <system_error>

namespace dblock {

Dispatcher::Dispatcher(Backend& backend, const DeviceConfig& config)
    : backend_(backend), config_(config), size_bytes_(config.size_bytes) {}

dblock_completion Dispatcher::handle(const dblock_request& request,
                                     std::span<std::byte> buffer) const {
  dblock_completion completion{};
  completion.tag = request.tag;
  completion.seq = request.seq;
  try {
    completion.result = execute(request, buffer);
  } catch (const std::system_error& e) {
    const int err = e.code().value();
    // Only a real errno may reach the kernel; other categories become EIO.
    const bool is_errno = e.code().category() == std::system_category() ||
                          e.code().category() == std::generic_category();
    completion.result = (is_errno && err > 0 && err < 4096) ? -err : -EIO;
  } catch (const std::bad_alloc&) {
    completion.result = -ENOMEM;
  } catch (...) {
    completion.result = -EIO;
  }
  return completion;
}

int Dispatcher::execute(const dblock_request& request, std::span<std::byte> buffer) const {
  if (request.op == DBLOCK_OP_FLUSH) {
    backend_.flush();
    return 0;
  }
  // The kernel should never send what fails these checks; making them keeps
  // a bug there (or a mismatched module) from making us touch memory out of
  // range.
  const std::uint64_t offset = request.offset;
  const std::uint64_t length = request.length;
  const std::uint64_t size = size_bytes_;
  if (offset % config_.block_size != 0 || length % config_.block_size != 0 || offset > size ||
      length > size - offset) {
    return -EIO;
  }
  if (request.op == DBLOCK_OP_DISCARD) {
    if (request.flags != 0 || !config_.discard) return -EIO;
    if (config_.read_only) return -EROFS;
    backend_.discard(offset, length);
    return 0;
  }
  if (request.op == DBLOCK_OP_WRITE_ZEROES) {
    if ((request.flags & ~std::uint32_t{DBLOCK_REQ_NOUNMAP}) != 0 || !config_.write_zeroes) {
      return -EIO;
    }
    if (config_.read_only) return -EROFS;
    backend_.write_zeroes(offset, length, (request.flags & DBLOCK_REQ_NOUNMAP) == 0);
    return 0;
  }
  if (request.op != DBLOCK_OP_READ && request.op != DBLOCK_OP_WRITE) return -EIO;
  const std::uint64_t slot = std::uint64_t{request.tag} * config_.max_io_bytes;
  if (request.tag >= config_.queue_depth || length > config_.max_io_bytes ||
      slot + length > buffer.size() || (request.flags & ~std::uint32_t{DBLOCK_REQ_FUA}) != 0) {
    return -EIO;
  }
  const auto data = buffer.subspan(slot, length);

  if (request.op == DBLOCK_OP_READ) {
    backend_.read(offset, data);
    return 0;
  }
  if (config_.read_only) return -EROFS;
  backend_.write(offset, data, (request.flags & DBLOCK_REQ_FUA) != 0);
  return 0;
}

}  // namespace dblock
