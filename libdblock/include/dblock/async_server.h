// Copyright (c) dblock authors.
#ifndef DBLOCK_ASYNC_SERVER_H_
#define DBLOCK_ASYNC_SERVER_H_

#include <linux/dblock.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dblock/async_backend.h"
#include "dblock/device.h"
#include "dblock/queue_buffer.h"
#include "dblock/unique_fd.h"

namespace dblock {

// Serves one device from an AsyncBackend, with as many requests in flight as
// the queues and their depth allow.  Like Server, one thread per hardware
// queue loops on DBLOCK_IOC_SERVE; unlike Server, a queue thread never waits
// for a request: it validates each fetched request, submits it to the
// backend, and goes back to the kernel at once.
//
// Completions come back on the backend's threads (AsyncCompletion::done):
// they are appended to the queue's list, and the queue thread hands them to
// the kernel with its next DBLOCK_IOC_SERVE.  The ABI allows one thread per
// queue in SERVE (another gets EBUSY), so the queue thread itself must wake
// up while it sleeps in the kernel waiting for new requests: done() sends it
// the wake signal, SIGRTMIN+1, once per sleep.  No wake-up can be lost:
//   - the queue thread publishes "sleeping", re-checks its list, and only
//     then enters the kernel;
//   - a signal that lands after that check but before the ioctl reads its
//     argument runs the handler in userspace, which sets DBLOCK_SERVE_NOWAIT
//     in the very struct the ioctl is about to read;
//   - one that lands in the kernel ends the wait with EINTR (the kernel
//     returns EINTR, not ERESTARTSYS, and has consumed the completions).
// The handler is installed with SA_RESTART, so the rare late signal does not
// disturb other system calls of the queue thread (e.g. inside submit()).
//
// Stopping: run() returns once the device is destroyed, or after
// request_stop() or an error; either way only after every submitted request
// completed (the backend writes into the queues' buffers until then) and its
// answer was handed to the kernel.  Applications must leave SIGRTMIN+1
// alone.
//
// Thread-safety: run() once, from one thread; request_stop() and the
// accessors from any thread (not from a signal handler).
class AsyncServer {
 public:
  using StartedCallback = std::function<void(const DeviceInfo&)>;

  // Opens /dev/dblock/<device_id> and sets up the queues' buffers.  The backend
  // must be at least as large as the device and outlive the AsyncServer.
  AsyncServer(std::uint32_t device_id, AsyncBackend& backend);
  AsyncServer(const AsyncServer&) = delete;
  AsyncServer& operator=(const AsyncServer&) = delete;
  ~AsyncServer();

  const DeviceInfo& info() const { return info_; }
  // The device's configuration as the kernel reports it (all UAPI fields).
  const dblock_dev_config& raw_config() const { return raw_config_; }

  // Serves until the device is destroyed or stop is requested.  on_started
  // runs once the disk exists: after START for a new device, or at once for
  // a live device taken over (START says EALREADY).
  void run(const StartedCallback& on_started = {});
  void request_stop();

  std::uint64_t rejected_completions() const { return rejected_.load(); }
  std::uint64_t submitted() const { return submitted_.load(); }
  // Whether the device was already live when run() started (a takeover).
  bool took_over() const { return took_over_.load(); }

 private:
  friend class AsyncCompletion;
  void serve_queue(detail::AsyncQueue& queue);
  void submit(detail::AsyncQueue& queue, const dblock_request& request,
              std::vector<dblock_completion>& immediate);
  int validate(const dblock_request& request) const;
  void start_device(const StartedCallback& on_started);
  void thread_finished(std::exception_ptr error);
  std::string context() const;

  AsyncBackend& backend_;
  DeviceInfo info_;
  dblock_dev_config raw_config_{};
  std::string channel_path_;
  UniqueFd channel_;
  std::vector<QueueBuffer> buffers_;
  std::vector<std::unique_ptr<detail::AsyncQueue>> queues_;

  std::atomic<bool> stop_{false};
  std::atomic<bool> took_over_{false};
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<std::uint64_t> submitted_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  int running_ = 0;           // guarded by mu_
  std::exception_ptr error_;  // guarded by mu_
};

}  // namespace dblock

#endif  // DBLOCK_ASYNC_SERVER_H_
