// Copyright (c) dblock authors.
#ifndef DBLOCK_SERVER_H_
#define DBLOCK_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "dblock/async_backend.h"
#include "dblock/backend.h"
#include "dblock/device.h"

namespace dblock {

namespace detail {
struct ServerCore;
}

// Options of a Server (and of serve(), which passes them on).
// Thread-safety: plain value.
struct ServerOptions {
  // Threads that run a blocking Backend's requests, shared by the queues:
  // up to this many requests are in flight.  -1: the default, none for a
  // backend that never blocks (Backend::may_block()), else queues x depth,
  // at most 32; 0: each request runs on its queue's thread.  Unused for an
  // AsyncBackend.
  int workers = -1;
  // Told what the server worked around without stopping, e.g. a grow the
  // backend refused (the device is then served at its old size).  Default:
  // nothing.  Called from a queue thread.
  std::function<void(const std::string&)> on_warning;
  // What serves the device, for `dblockctl list` and sysfs ("file:PATH",
  // "rbd:POOL/IMAGE", "ram"): given to the kernel when the channel is
  // opened, shortened by fit_backend_description().  Skipped when empty or
  // when the module cannot keep it (no DBLOCK_FEAT_BACKEND_DESC).
  std::string backend_description;
  // What device_id names: a dblock.ko device (/dev/dblock/ID) or a ublk
  // device (/dev/ublkcID, added by serve() with Transport::kUblk).  kAuto
  // means kDblock here.
  Transport transport = Transport::kDblock;
  // Where the backend has a kernel_file() and dblock.ko can
  // (DBLOCK_FEAT_FILE_IO), the kernel does its reads and writes on the
  // requests' pages, as a loop device does; false: the backend does them.
  // If the kernel refuses the file, on_warning says so and the backend
  // does them.
  bool kernel_file_io = true;
};

// Serves one device, whatever its backend: one thread per hardware queue
// loops on DBLOCK_IOC_SERVE (or, over ublk, on its io_uring commands
// COMMIT_AND_FETCH_REQ), fetching requests and handing back answers.
// Each request is checked against the device (range, alignment, ops and
// flags it declared) before the backend sees it, and a backend's exception
// becomes the request's errno (std::system_error: its code; std::bad_alloc:
// ENOMEM; anything else: EIO).  An AsyncBackend completes requests from any
// thread; a Backend runs on worker threads (ServerOptions::workers) or on the
// queue threads.  Online resizes reach the backend (resize()) before any
// request past the old end: a grow first, then the wider checks.  Over ublk,
// whose kernel tells its server nothing, `dblockctl resize` asks the server
// (Linux 6.14 and later): the backend grows before the disk does, and a
// backend that refuses refuses the resize.
//
// No signals: threads are woken with DBLOCK_IOC_KICK (and condition
// variables), so the application keeps every signal for itself.  The answer
// to a queue's last request in flight reaches dblock.ko from the thread that
// gives it (DBLOCK_IOC_COMMIT), so the queue thread is not woken for it.
//
// Stopping: run() returns once the device is destroyed (every queue got
// DBLOCK_SERVE_GONE), or after request_stop() or an error in any thread
// (rethrown); either way only once every request the backend was given has
// completed and its answer went back to the kernel.  Requests not yet
// fetched stay with the kernel: under the "wait" recovery policy, for the
// next server to attach (a handover).
//
// Thread-safety: run() once, from one thread; request_stop() and the
// accessors from any thread (not from a signal handler).
class Server {
 public:
  using StartedCallback = std::function<void(const DeviceInfo&)>;

  // Opens /dev/dblock/<device_id> and sets up the queues.  The backend must
  // be at least as large as the device and outlive the Server.
  Server(std::uint32_t device_id, Backend& backend, const ServerOptions& options = {});
  Server(std::uint32_t device_id, AsyncBackend& backend, const ServerOptions& options = {});
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();

  // As read when the Server was constructed.
  const DeviceInfo& info() const;

  // Serves until the device is destroyed or stop is requested.  on_started
  // runs on the calling thread once the disk exists: after START for a new
  // device, at once for a live device taken over (took_over()), with fresh
  // info (disk numbers, state).
  void run(const StartedCallback& on_started = {});
  void request_stop();

  // Whether the device was already live when run() started (a takeover).
  bool took_over() const;
  // Requests given to the backend so far, or answered with its
  // kernel_file() (kernel_file_io()).
  std::uint64_t requests_served() const;
  // Whether the kernel does the backend's reads and writes on its
  // kernel_file() (ServerOptions::kernel_file_io); known once run() started
  // serving (on_started).
  bool kernel_file_io() const;
  // Completions the kernel refused (stale, timed out, ...).
  std::uint64_t rejected_completions() const;
  // Threads running a Backend's requests (0: on the queue threads, or an
  // AsyncBackend).
  unsigned workers() const;

 private:
  std::unique_ptr<detail::ServerCore> core_;
};

}  // namespace dblock

#endif  // DBLOCK_SERVER_H_
