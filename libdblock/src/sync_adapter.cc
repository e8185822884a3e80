// Copyright (c) dblock authors.
#include "sync_adapter.h"

#include "queue_thread.h"
#include "request.h"

namespace dblock::internal {

SyncAdapter::SyncAdapter(Backend& backend, unsigned workers) : backend_(backend) {
  threads_.reserve(workers);
  try {
    for (unsigned i = 0; i < workers; ++i) threads_.push_back(std::make_unique<SmallThread>([this] { work(); }));
  } catch (...) {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    throw;  // the started threads are joined as threads_ goes
  }
}

SyncAdapter::~SyncAdapter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

void SyncAdapter::submit(const AsyncRequest& request, AsyncCompletion completion) {
  {
    std::lock_guard lock(mu_);
    pending_.emplace_back(request, completion);
  }
  cv_.notify_one();
}

void SyncAdapter::work() {
  prepare_server_thread();
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !pending_.empty(); });
    if (pending_.empty()) return;  // stopping, and nothing left
    const auto [request, completion] = pending_.front();
    pending_.pop_front();
    lock.unlock();
    completion.done(run_request(backend_, request));
    lock.lock();
  }
}

}  // namespace dblock::internal
