// Copyright (c) dblock authors.
#include "dblock/server.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "dblock/error.h"
#include "queue_thread.h"

namespace dblock {
namespace {

void wake_handler(int) {}

// Threads blocked in the kernel return EINTR only for a signal with a handler
// installed without SA_RESTART.
void install_wake_handler() {
  struct sigaction sa {};
  sa.sa_handler = wake_handler;
  sigemptyset(&sa.sa_mask);
  if (::sigaction(SIGRTMIN, &sa, nullptr) < 0) {
    const int err = errno;
    throw Error(err, "install SIGRTMIN handler");
  }
}

}  // namespace

Server::Server(std::uint32_t device_id, Backend& backend)
    : channel_path_(fmt::format("{}/{}", kChannelDir, device_id)),
      backend_(backend),
      dispatcher_(backend, info_.config) {
  const std::string what = fmt::format("serve device {}", device_id);
  channel_.reset(::open(channel_path_.c_str(), O_RDWR | O_CLOEXEC));
  if (!channel_) {
    const int err = errno;
    throw Error(err, fmt::format("{}: open {}", what, channel_path_),
                err == EBUSY ? "another server is attached" : "");
  }
  info_ = from_uapi(internal::read_channel_info(channel_.get(), what, channel_path_));

  const DeviceConfig& config = info_.config;
  const std::uint64_t needed = std::uint64_t{config.queue_depth} * config.max_io_bytes;
  if (config.queues == 0 || info_.buffer_bytes < needed) {
    throw Error(EPROTO, fmt::format("{}: kernel reports {} queues of {} buffer bytes, need {}",
                                    context(), config.queues, info_.buffer_bytes, needed));
  }
  current_size_ = config.size_bytes;
  // Constructed before info_ was read.
  dispatcher_.set_size(config.size_bytes);
  if (backend.size() < config.size_bytes) {
    throw std::invalid_argument(fmt::format("{}: the backend has {} bytes, the device {}",
                                            context(), backend.size(), config.size_bytes));
  }
  buffers_.reserve(config.queues);
  for (std::uint16_t q = 0; q < config.queues; ++q) {
    buffers_.emplace_back(channel_.get(), info_, q, channel_path_);
  }
}

Server::~Server() = default;

std::string Server::context() const {
  return fmt::format("serve device '{}' (id {})", info_.config.name, info_.id);
}

void Server::request_stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

void Server::thread_finished(std::exception_ptr error) {
  {
    std::lock_guard lock(mu_);
    --running_;
    if (error) {
      if (!error_) error_ = error;
      stop_ = true;
    }
  }
  cv_.notify_all();
}

void Server::run(const StartedCallback& on_started) {
  install_wake_handler();
  std::vector<std::jthread> threads;
  threads.reserve(info_.config.queues + 1);
  const auto spawn = [&](auto body) {
    {
      std::lock_guard lock(mu_);
      ++running_;
    }
    try {
      threads.emplace_back([this, body] {
        std::exception_ptr error;
        try {
          internal::prepare_queue_thread(SIGRTMIN);
          body();
        } catch (...) {
          error = std::current_exception();
        }
        thread_finished(error);
      });
    } catch (...) {
      thread_finished(std::current_exception());
    }
  };
  for (std::uint16_t q = 0; q < info_.config.queues; ++q) spawn([this, q] { serve_queue(q); });
  spawn([this, &on_started] { start_device(on_started); });

  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return running_ == 0 || stop_; });
  // Stopping: a signal can land just before a thread enters the kernel, so
  // keep knocking until every thread is out.
  while (running_ > 0) {
    lock.unlock();
    for (auto& t : threads) ::pthread_kill(t.native_handle(), SIGRTMIN);
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return running_ == 0; });
  }
  lock.unlock();
  threads.clear();  // joins
  if (error_) std::rethrow_exception(error_);
}

void Server::start_device(const StartedCallback& on_started) {
  // START returns once every queue thread is in SERVE and the disk is added.
  while (::ioctl(channel_.get(), DBLOCK_IOC_START) < 0) {
    const int err = errno;
    if (err == EINTR && !stop_) continue;
    if (err == EINTR) return;
    // Taking over a live device (its previous server went away): the disk
    // is there already.
    if (err == EALREADY) break;
    throw Error(err, fmt::format("{}: ioctl DBLOCK_IOC_START on {}", context(), channel_path_));
  }
  if (on_started) {
    on_started(from_uapi(internal::read_channel_info(channel_.get(), context(), channel_path_)));
  }
}

void Server::apply_resize() {
  // Every queue is told; the first to get here does the work.
  std::lock_guard lock(resize_mu_);
  const dblock_dev_info now = internal::read_channel_info(channel_.get(), context(), channel_path_);
  if (now.config.size_bytes == current_size_) return;
  // Grow the backend before accepting requests past the old end; shrink it
  // after refusing them.
  if (now.config.size_bytes > current_size_) {
    backend_.resize(now.config.size_bytes);
    dispatcher_.set_size(now.config.size_bytes);
  } else {
    dispatcher_.set_size(now.config.size_bytes);
    backend_.resize(now.config.size_bytes);
  }
  current_size_ = now.config.size_bytes;
}

void Server::serve_queue(std::uint16_t queue) {
  const std::uint16_t depth = info_.config.queue_depth;
  const std::span<std::byte> buffer = buffers_[queue].bytes();
  const std::uint64_t buffer_ptr = buffers_[queue].serve_ptr();
  std::vector<dblock_request> requests(depth);
  std::vector<dblock_completion> completions;
  completions.reserve(depth);

  for (;;) {
    const bool stopping = stop_;
    if (stopping && completions.empty()) return;
    dblock_serve serve{};
    serve.completions_ptr = reinterpret_cast<std::uintptr_t>(completions.data());
    serve.nr_completions = static_cast<std::uint32_t>(completions.size());
    serve.requests_ptr = reinterpret_cast<std::uintptr_t>(requests.data());
    serve.request_size = sizeof(dblock_request);
    // When stopping, hand back what we owe and take nothing new: what is
    // still queued stays with the kernel (for the next server, under the
    // "wait" policy), and a busy device cannot keep us from stopping.
    serve.max_requests = stopping ? 0 : depth;
    serve.queue = queue;
    serve.flags = stopping ? DBLOCK_SERVE_NOWAIT : 0;
    serve.buffer_ptr = buffer_ptr;
    const int rc = ::ioctl(channel_.get(), DBLOCK_IOC_SERVE, &serve);
    const int err = errno;
    // Consumed by the kernel even when the call fails: never send twice.
    completions.clear();
    if (rc < 0) {
      if (err == EINTR) continue;
      throw Error(err, fmt::format("{}: ioctl DBLOCK_IOC_SERVE (queue {}) on {}", context(), queue,
                                   channel_path_));
    }
    rejected_ += serve.nr_rejected;
    if (serve.status & DBLOCK_SERVE_RESIZED) apply_resize();
    if (serve.status & DBLOCK_SERVE_GONE) return;
    const std::uint32_t fetched = std::min<std::uint32_t>(serve.nr_requests, depth);
    for (std::uint32_t i = 0; i < fetched; ++i) {
      completions.push_back(dispatcher_.handle(requests[i], buffer));
    }
  }
}

}  // namespace dblock
