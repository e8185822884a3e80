// Copyright (c) dblock authors.
#ifndef DBLOCK_SRC_SYNC_ADAPTER_H_
#define DBLOCK_SRC_SYNC_ADAPTER_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <memory>
#include <utility>
#include <vector>

#include "dblock/async_backend.h"
#include "dblock/backend.h"
#include "queue_thread.h"

namespace dblock::internal {

// A Backend seen as an AsyncBackend, so that one server core serves both.
// With workers, submit() queues the request for a pool of threads that run
// it and complete it: up to `workers` requests are in flight, as many as a
// blocking backend (a file on a disk) needs to keep its storage busy.
// Without, the server's queue threads run the requests themselves
// (inline_backend(), never submit()), which suits backends that only copy
// memory: no hand-off to pay.
// Thread-safety: submit() from any thread; destroyed once nothing is in
// flight (the server drains first).
class SyncAdapter final : public AsyncBackend {
 public:
  SyncAdapter(Backend& backend, unsigned workers);
  SyncAdapter(const SyncAdapter&) = delete;
  SyncAdapter& operator=(const SyncAdapter&) = delete;
  ~SyncAdapter() override;

  std::uint64_t size() const override { return backend_.size(); }
  void submit(const AsyncRequest& request, AsyncCompletion completion) override;
  bool supports_flush() const override { return backend_.supports_flush(); }
  bool supports_discard() const override { return backend_.supports_discard(); }
  bool supports_write_zeroes() const override { return backend_.supports_write_zeroes(); }
  void resize(std::uint64_t new_size) override { backend_.resize(new_size); }
  std::optional<KernelFile> kernel_file() const override { return backend_.kernel_file(); }

  unsigned workers() const { return static_cast<unsigned>(threads_.size()); }
  // The backend when there are no workers: the server runs its requests on
  // the queue threads, with no completion to hand back.
  Backend* inline_backend() { return threads_.empty() ? &backend_ : nullptr; }

 private:
  void work();

  Backend& backend_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<AsyncRequest, AsyncCompletion>> pending_;  // guarded by mu_
  bool stop_ = false;                                              // guarded by mu_
  std::vector<std::unique_ptr<SmallThread>> threads_;
};

}  // namespace dblock::internal

#endif  // DBLOCK_SRC_SYNC_ADAPTER_H_
