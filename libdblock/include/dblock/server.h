// Copyright (c) dblock authors.
#ifndef DBLOCK_SERVER_H_
#define DBLOCK_SERVER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <vector>

#include "dblock/backend.h"
#include "dblock/device.h"
#include "dblock/dispatch.h"
#include "dblock/queue_buffer.h"
#include "dblock/unique_fd.h"

namespace dblock {

// Serves one device from a Backend: one thread per hardware queue loops on
// DBLOCK_IOC_SERVE, and another thread issues DBLOCK_IOC_START.
//
// Stopping: run() returns once the device is destroyed (every queue got
// DBLOCK_SERVE_GONE).  request_stop(), or an error in any thread, makes
// run() answer what the queues already fetched, stop all threads and
// return (rethrowing the first error, if any).  Threads blocked in the kernel
// are woken with SIGRTMIN, for which run() installs an empty handler without
// SA_RESTART; applications must leave that signal alone.  Requests not yet
// fetched are left to the kernel (its timeout), so prefer destroying the
// device to request_stop().
//
// Thread-safety: run() once, from one thread; request_stop() and the
// accessors from any thread (not from a signal handler).
class Server {
 public:
  using StartedCallback = std::function<void(const DeviceInfo&)>;

  // Opens /dev/dblock/<device_id> and sets up the queues' buffers.  The
  // backend must be at least as large as the device and outlive the Server.
  Server(std::uint32_t device_id, Backend& backend);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();

  // As read when the Server was constructed.
  const DeviceInfo& info() const { return info_; }

  // Serves until the device is destroyed or stop is requested.  on_started
  // runs (on another thread) once START returned, i.e. once the disk exists,
  // with fresh info (disk numbers, state).
  void run(const StartedCallback& on_started = {});
  void request_stop();

  // Completions the kernel refused (stale, timed out, ...).
  std::uint64_t rejected_completions() const { return rejected_.load(); }

 private:
  void serve_queue(std::uint16_t queue);
  void start_device(const StartedCallback& on_started);
  void apply_resize();
  void thread_finished(std::exception_ptr error);
  std::string context() const;

  DeviceInfo info_;
  std::string channel_path_;
  UniqueFd channel_;
  std::vector<QueueBuffer> buffers_;
  Backend& backend_;
  Dispatcher dispatcher_;
  std::mutex resize_mu_;
  std::uint64_t current_size_ = 0;  // guarded by resize_mu_

  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> rejected_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  int running_ = 0;              // guarded by mu_
  std::exception_ptr error_;     // guarded by mu_
};

}  // namespace dblock

#endif  // DBLOCK_SERVER_H_
