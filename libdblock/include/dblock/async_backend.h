// Copyright (c) dblock authors.
#ifndef DBLOCK_ASYNC_BACKEND_H_
#define DBLOCK_ASYNC_BACKEND_H_

#include <linux/dblock.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "dblock/backend.h"

namespace dblock {

namespace detail {
struct AsyncQueue;
}

// One request as an AsyncBackend sees it: already validated against the
// device (in range, aligned, op and flags known and enabled).
//   op     DBLOCK_OP_READ / WRITE / FLUSH / DISCARD / WRITE_ZEROES
//   flags  DBLOCK_REQ_FUA (write), DBLOCK_REQ_NOUNMAP (write zeroes)
//   data   read: to fill; write: the data; empty for the other ops.  It is the
//          request's slot in its queue's buffer area: valid until the
//          request's completion is signalled, not a moment longer.
struct AsyncRequest {
  std::uint8_t op = DBLOCK_OP_READ;
  std::uint32_t flags = 0;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::span<std::byte> data;
};

// The answer channel of one request: call done() exactly once, with 0 or a
// negative errno, from any thread (e.g. a storage library's callback
// thread), possibly before submit() returned; read data must be in place.
// done() never blocks for long: it appends the answer to the queue's list
// for the queue thread's next call into the kernel, waking that thread if it
// sleeps there; or, for the queue's last request in flight, hands it to
// dblock.ko itself (DBLOCK_IOC_COMMIT), so the thread is not woken for one
// answer.  Trivially copyable: keep it in the per-request context of the
// backend.
class AsyncCompletion {
 public:
  AsyncCompletion() = default;
  void done(int result) const noexcept;

 private:
  friend struct detail::AsyncQueue;
  AsyncCompletion(detail::AsyncQueue* queue, std::uint16_t tag, std::uint32_t seq)
      : queue_(queue), tag_(tag), seq_(seq) {}

  detail::AsyncQueue* queue_ = nullptr;
  std::uint16_t tag_ = 0;
  std::uint32_t seq_ = 0;
};

// Where a device's data lives, for backends whose I/O completes on its own
// (librbd's rbd_aio_*, io_uring, a network protocol): the queue thread only
// submits, so a queue keeps up to its depth of requests in flight.
// Thread-safety: submit() is called from several queue threads at once.
class AsyncBackend {
 public:
  virtual ~AsyncBackend() = default;

  virtual std::uint64_t size() const = 0;

  // Starts the request and returns without waiting for it.  Either
  // completion.done() is called exactly once (now or later, any thread), or
  // submit() throws and must then never call it: the request fails with the
  // exception's errno (std::system_error) or EIO.
  virtual void submit(const AsyncRequest& request, AsyncCompletion completion) = 0;
  // Called by a queue thread after its submit() calls for one batch (what
  // one SERVE fetched), like blk-mq's commit_rqs: a backend may queue the
  // requests in submit() and start them all here with one call (io_uring).
  // The default does nothing.
  virtual void commit() {}

  // DBLOCK_DEV_FLUSH: a volatile write cache; FLUSH and FUA writes come.
  virtual bool supports_flush() const = 0;
  // DBLOCK_DEV_DISCARD / DBLOCK_DEV_WRITE_ZEROES.
  virtual bool supports_discard() const { return false; }
  virtual bool supports_write_zeroes() const { return false; }
  // With supports_discard(): the granularity to advertise (0: block size).
  virtual std::uint32_t discard_granularity() const { return 0; }

  // The device was resized (grown or shrunk) to new_size bytes; called from
  // a queue thread (over ublk, from the thread that takes resize asks,
  // before the disk grows: an exception refuses the grow) while no request
  // past min(old, new) size is in flight.
  // The default refuses to grow past size() (ENOSPC) and accepts a shrink;
  // a refused grow leaves the device served at its old size.
  virtual void resize(std::uint64_t new_size);
  // As Backend::kernel_file(): then submit() sees no reads or writes.
  virtual std::optional<KernelFile> kernel_file() const { return std::nullopt; }
};

}  // namespace dblock

#endif  // DBLOCK_ASYNC_BACKEND_H_
