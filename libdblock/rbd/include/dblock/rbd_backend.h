// Copyright (c) dblock authors.
#ifndef DBLOCK_RBD_BACKEND_H_
#define DBLOCK_RBD_BACKEND_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "dblock/async_backend.h"

namespace dblock {

// A device's data in a Ceph RBD image, through librbd's asynchronous API:
// every request is one rbd_aio_* call whose callback answers it, so a queue
// keeps its whole depth in flight.
//   read/write       rbd_aio_read / rbd_aio_write, straight from/to the
//                    queue's buffer area (no copy)
//   flush            rbd_aio_flush
//   FUA write        the write, then rbd_aio_flush (issued from a helper
//                    thread: librbd's callbacks must stay short)
//   discard          rbd_aio_discard; advertise kDiscardGranularity, since
//                    librbd skips partial discards below 64 KiB
//   write zeroes     rbd_aio_write_zeroes (never discard: see above);
//                    NOUNMAP = RBD_WRITE_ZEROES_FLAG_THICK_PROVISION
// The device declares a volatile write cache: librbd may cache writes
// (rbd_cache), and stays writethrough until its first flush anyway.
//
// Construction connects (bounded by connect_timeout), opens the image
// (creating it if asked), and takes its exclusive lock explicitly, so that
// two servers never write one image; errors name the cause (RbdError).
// Thread-safety: submit() from any number of threads.
class RbdBackend : public AsyncBackend {
 public:
  static constexpr std::uint32_t kDiscardGranularity = 64 * 1024;

  struct Options {
    std::string conf_file;  // empty: librados' default search
    std::string client_id = "admin";
    std::string pool = "rbd";
    std::string image;
    std::optional<std::uint64_t> create_size;  // create the image if missing
    std::chrono::seconds connect_timeout{15};
    // librbd's client cache (rbd_cache); nullopt keeps the configuration's.
    std::optional<bool> cache;
    // Take the image's exclusive lock (and fail if another client holds it).
    bool exclusive = true;
    // How long to keep trying to take the lock from a client that died
    // (its watch expires after "osd client watch timeout").
    std::chrono::seconds lock_timeout{60};
  };

  explicit RbdBackend(const Options& options);
  RbdBackend(const RbdBackend&) = delete;
  RbdBackend& operator=(const RbdBackend&) = delete;
  // Closes the image and disconnects: only once no request is in flight.
  ~RbdBackend() override;

  std::uint64_t size() const override { return size_.load(); }
  void submit(const AsyncRequest& request, AsyncCompletion completion) override;
  bool supports_flush() const override { return true; }
  bool supports_discard() const override { return true; }
  bool supports_write_zeroes() const override { return true; }
  std::uint32_t discard_granularity() const override { return kDiscardGranularity; }
  // A grow past the image's end grows the image (rbd_resize); a shrink
  // leaves the image as it is, so that no data is cut off by a device
  // resize alone (shrink the image with `rbd resize --allow-shrink`).
  void resize(std::uint64_t new_size) override;

  // "pool/image"
  const std::string& spec() const { return spec_; }
  bool created() const { return created_; }
  // How long taking the exclusive lock took (e.g. from a dead server).
  std::chrono::milliseconds lock_wait() const { return lock_wait_; }

  struct Op;  // one request in flight (rbd_backend.cc)
  void defer_flush(Op* op);

 private:
  void flusher_loop();
  void start_flush(Op* op);

  std::string spec_;
  void* cluster_ = nullptr;  // rados_t
  void* ioctx_ = nullptr;    // rados_ioctx_t
  void* image_ = nullptr;    // rbd_image_t
  std::atomic<std::uint64_t> size_{0};
  bool created_ = false;
  std::chrono::milliseconds lock_wait_{0};

  std::mutex flush_mu_;
  std::condition_variable flush_cv_;
  std::deque<Op*> flush_queue_;  // guarded by flush_mu_
  bool flush_stop_ = false;      // guarded by flush_mu_
  std::thread flusher_;
};

}  // namespace dblock

#endif  // DBLOCK_RBD_BACKEND_H_
