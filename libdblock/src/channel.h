// Copyright (c) dblock authors.
#ifndef DBLOCK_SRC_CHANNEL_H_
#define DBLOCK_SRC_CHANNEL_H_

#include <linux/dblock.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "dblock/device.h"

namespace dblock::internal {

// Runs (a thread) until destroyed.
class Running {
 public:
  virtual ~Running() = default;
};

// Where a Server's queues get their requests and send their answers: a
// dblock.ko channel (/dev/dblock/ID) or a ublk device (/dev/ublkcID).  Both
// speak in dblock's terms: requests as struct dblock_request, answers as
// struct dblock_completion, data in one buffer per queue where request
// `tag` owns the slot at tag x max_io_bytes.
// Thread-safety: serve() for queue q only from q's thread; kick() and
// commit() from any thread; the rest from one thread at a time.
class Channel {
 public:
  virtual ~Channel() = default;

  // The device as the kernel sees it now.
  virtual DeviceInfo info() = 0;
  // Queue `queue`'s data buffer, for the life of the channel.
  virtual std::span<std::byte> buffer(std::uint16_t queue) = 0;
  // DBLOCK_IOC_SERVE's contract (see <linux/dblock.h>): hands back
  // s.completions, fetches up to s.max_requests requests into s.requests_ptr
  // (waiting for one unless DBLOCK_SERVE_NOWAIT), and sets nr_requests,
  // nr_rejected and status.  The completions are consumed either way.
  // Returns false if a signal interrupted the wait; throws Error otherwise.
  virtual bool serve(dblock_serve& s) = 0;
  // Where a backend completes requests on the queue's own thread, in the
  // channel (ublk: lent_ring.h): when that thread has nothing else to do but
  // wait for those, waits for some and completes them; false if it has none
  // of them to wait for.
  virtual bool reap(std::uint16_t queue) {
    (void)queue;
    return false;
  }
  // Ends queue `queue`'s current or next wait in serve().
  virtual void kick(std::uint16_t queue) noexcept = 0;
  // Whether commit() can hand answers back.
  virtual bool can_commit() const { return false; }
  // Hands back one answer of queue `queue` from any thread, while that
  // queue's thread may wait in serve() (dblock.ko's DBLOCK_IOC_COMMIT).
  // Returns how many were refused, or nullopt if it handed back nothing
  // (the channel cannot, or the call failed): then serve() must.
  virtual std::optional<std::uint32_t> commit(std::uint16_t queue,
                                              const dblock_completion& c) noexcept {
    (void)queue;
    (void)c;
    return std::nullopt;
  }
  // Has the kernel do the reads and writes answered with DBLOCK_CPL_FILE on
  // `fd` at `offset` + the request's offset (dblock.ko's DBLOCK_IOC_SET_FILE),
  // writes then fetched without their data.  False if the channel cannot;
  // throws Error if the kernel refuses the file.
  virtual bool set_file(int fd, std::uint64_t offset) {
    (void)fd;
    (void)offset;
    return false;
  }
  // Makes the disk live once every queue has called serve() once.  Returns
  // false if it was live already (a takeover).
  virtual bool start() = 0;

  // Online resize where the kernel does not tell the server of it (ublk):
  // the server is asked (dblockctl resize), resizes its backend and then
  // the disk with set_size().  Takes such asks, each handed to `resize`
  // (which throws to refuse), until the result is destroyed.  nullptr where
  // the kernel tells the server itself (dblock.ko: DBLOCK_SERVE_RESIZED) or
  // cannot resize a live disk.
  using ResizeHandler = std::function<void(std::uint64_t new_size)>;
  virtual std::unique_ptr<Running> take_resizes(ResizeHandler resize) {
    (void)resize;
    return nullptr;
  }
  // The disk's new size, for take_resizes()'s handler; any thread.
  virtual void set_size(std::uint64_t bytes);
};

// Opens /dev/dblock/<id>; `backend_description` as ServerOptions'.
std::unique_ptr<Channel> open_dblock_channel(std::uint32_t id,
                                             const std::string& backend_description);
// Opens /dev/ublkc<id>, a ublk device added but not started (UblkControl).
std::unique_ptr<Channel> open_ublk_channel(std::uint32_t id);

}  // namespace dblock::internal

#endif  // DBLOCK_SRC_CHANNEL_H_
