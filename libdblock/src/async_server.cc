// Copyright (c) dblock authors.
#include "dblock/async_server.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <new>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <fmt/format.h>

#include "dblock/error.h"
#include "queue_thread.h"

namespace dblock {
namespace detail {

// One hardware queue's state shared between its thread and the backend's
// completion threads.
struct AsyncQueue {
  AsyncServer* server = nullptr;
  std::uint16_t index = 0;
  std::span<std::byte> buffer;
  std::uint64_t buffer_ptr = 0;  // dblock_serve.buffer_ptr
  int kick_fd = -1;              // the channel, if the module has DBLOCK_IOC_KICK

  std::mutex mu;
  std::condition_variable cv;              // for the drain when stopping
  std::vector<dblock_completion> done;     // guarded by mu
  std::atomic<bool> sleeping{false};       // armed: a completion must signal
  std::atomic<bool> draining{false};       // the thread waits on cv, not in the kernel
  std::atomic<pthread_t> thread{};
  std::atomic<bool> has_thread{false};
};

}  // namespace detail

namespace {

int wake_signal() { return SIGRTMIN + 1; }

// The struct the queue thread is about to pass to DBLOCK_IOC_SERVE, while it
// is armed: the handler turns that call into a non-sleeping one.
// initial-exec: no lazy TLS allocation can happen inside the handler, even
// when this code is in a shared library.
__attribute__((tls_model("initial-exec"))) thread_local dblock_serve* volatile tl_armed_serve =
    nullptr;

void wake_handler(int) {
  dblock_serve* serve = tl_armed_serve;
  if (serve != nullptr) {
    volatile std::uint32_t* flags = &serve->flags;
    *flags = *flags | DBLOCK_SERVE_NOWAIT;
  }
}

void install_wake_handler() {
  struct sigaction sa {};
  sa.sa_handler = wake_handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (::sigaction(wake_signal(), &sa, nullptr) < 0) {
    const int err = errno;
    throw Error(err, "install SIGRTMIN+1 handler");
  }
}

int errno_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::system_error& se) {
    const int err = se.code().value();
    const bool is_errno = se.code().category() == std::system_category() ||
                          se.code().category() == std::generic_category();
    return (is_errno && err > 0 && err < 4096) ? -err : -EIO;
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  } catch (...) {
    return -EIO;
  }
}

}  // namespace

void AsyncCompletion::done(int result) const noexcept {
  detail::AsyncQueue* q = queue_;
  if (q == nullptr) return;
  dblock_completion c{};
  c.tag = tag_;
  c.seq = seq_;
  c.result = (result <= 0 && result > -4096) ? result : -EIO;
  {
    std::lock_guard lock(q->mu);
    q->done.push_back(c);  // capacity reserved for the queue depth: no allocation
  }
  if (q->draining.load()) {
    q->cv.notify_one();
  } else if (q->sleeping.exchange(false)) {
    // A kick ends the thread's wait in the kernel; a signal (older modules)
    // costs a handler and a second call.
    if (q->kick_fd < 0 ||
        ::ioctl(q->kick_fd, DBLOCK_IOC_KICK, static_cast<unsigned long>(q->index)) < 0) {
      ::pthread_kill(q->thread.load(), wake_signal());
    }
  }
}

AsyncServer::AsyncServer(std::uint32_t device_id, AsyncBackend& backend)
    : backend_(backend), channel_path_(fmt::format("{}/{}", kChannelDir, device_id)) {
  const std::string what = fmt::format("serve device {}", device_id);
  channel_.reset(::open(channel_path_.c_str(), O_RDWR | O_CLOEXEC));
  if (!channel_) {
    const int err = errno;
    throw Error(err, fmt::format("{}: open {}", what, channel_path_),
                err == EBUSY ? "another server is attached" : "");
  }
  const dblock_dev_info raw = internal::read_channel_info(channel_.get(), what, channel_path_);
  raw_config_ = raw.config;
  info_ = from_uapi(raw);

  const DeviceConfig& config = info_.config;
  const std::uint64_t needed = std::uint64_t{config.queue_depth} * config.max_io_bytes;
  if (config.queues == 0 || info_.buffer_bytes < needed) {
    throw Error(EPROTO, fmt::format("{}: kernel reports {} queues of {} buffer bytes, need {}",
                                    context(), config.queues, info_.buffer_bytes, needed));
  }
  if (backend.size() < config.size_bytes) {
    throw std::invalid_argument(fmt::format("{}: the backend has {} bytes, the device {}",
                                            context(), backend.size(), config.size_bytes));
  }
  buffers_.reserve(config.queues);
  queues_.reserve(config.queues);
  for (std::uint16_t q = 0; q < config.queues; ++q) {
    buffers_.emplace_back(channel_.get(), info_, q, channel_path_);
    auto queue = std::make_unique<detail::AsyncQueue>();
    queue->server = this;
    queue->index = q;
    queue->buffer = buffers_.back().bytes();
    queue->buffer_ptr = buffers_.back().serve_ptr();
    if (info_.features & DBLOCK_FEAT_KICK) queue->kick_fd = channel_.get();
    queue->done.reserve(config.queue_depth);
    queues_.push_back(std::move(queue));
  }
}

AsyncServer::~AsyncServer() = default;

std::string AsyncServer::context() const {
  return fmt::format("serve device '{}' (id {})", info_.config.name, info_.id);
}

void AsyncServer::request_stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

void AsyncServer::thread_finished(std::exception_ptr error) {
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

void AsyncServer::run(const StartedCallback& on_started) {
  install_wake_handler();
  std::vector<std::jthread> threads;
  threads.reserve(queues_.size() + 1);
  const auto spawn = [&](auto body) {
    {
      std::lock_guard lock(mu_);
      ++running_;
    }
    try {
      threads.emplace_back([this, body] {
        std::exception_ptr error;
        try {
          internal::prepare_queue_thread(wake_signal());
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
  for (auto& q : queues_) spawn([this, &q] { serve_queue(*q); });
  spawn([this, &on_started] { start_device(on_started); });

  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return running_ == 0 || stop_; });
  // Knock until every thread is out: a queue thread in the kernel wakes with
  // EINTR (or NOWAIT), sees stop_, drains what it has in flight and returns.
  while (running_ > 0) {
    lock.unlock();
    for (auto& t : threads) ::pthread_kill(t.native_handle(), wake_signal());
    for (auto& q : queues_) q->cv.notify_all();
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return running_ == 0; });
  }
  lock.unlock();
  threads.clear();  // joins
  if (error_) std::rethrow_exception(error_);
}

void AsyncServer::start_device(const StartedCallback& on_started) {
  while (::ioctl(channel_.get(), DBLOCK_IOC_START) < 0) {
    const int err = errno;
    if (err == EINTR && !stop_) continue;
    if (err == EINTR) return;
    if (err == EALREADY) {  // a live device: we are taking it over
      took_over_ = true;
      break;
    }
    throw Error(err, fmt::format("{}: ioctl DBLOCK_IOC_START on {}", context(), channel_path_));
  }
  if (on_started) {
    on_started(from_uapi(internal::read_channel_info(channel_.get(), context(), channel_path_)));
  }
}

int AsyncServer::validate(const dblock_request& r) const {
  const DeviceConfig& c = info_.config;
  const std::uint64_t offset = r.offset;
  const std::uint64_t length = r.length;
  if (r.tag >= c.queue_depth) return -EIO;
  switch (r.op) {
    case DBLOCK_OP_FLUSH:
      return c.flush ? 0 : -EIO;
    case DBLOCK_OP_READ:
    case DBLOCK_OP_WRITE:
      if (length == 0 || length > c.max_io_bytes) return -EIO;
      if (r.flags & ~std::uint32_t{DBLOCK_REQ_FUA}) return -EIO;
      if ((r.flags & DBLOCK_REQ_FUA) && (r.op != DBLOCK_OP_WRITE || !c.flush)) return -EIO;
      if (r.op == DBLOCK_OP_WRITE && c.read_only) return -EROFS;
      break;
    case DBLOCK_OP_DISCARD:
      if (!c.discard || r.flags != 0) return -EIO;
      if (c.read_only) return -EROFS;
      break;
    case DBLOCK_OP_WRITE_ZEROES:
      if (!c.write_zeroes) return -EIO;
      if (r.flags & ~std::uint32_t{DBLOCK_REQ_NOUNMAP}) return -EIO;
      if (c.read_only) return -EROFS;
      break;
    default:
      return -EIO;
  }
  if (length == 0 || offset % c.block_size != 0 || length % c.block_size != 0 ||
      offset > c.size_bytes || length > c.size_bytes - offset) {
    return -EIO;
  }
  return 0;
}

void AsyncServer::submit(detail::AsyncQueue& q, const dblock_request& r,
                         std::vector<dblock_completion>& immediate) {
  const int bad = validate(r);
  if (bad != 0) {
    immediate.push_back(dblock_completion{r.tag, 0, bad, r.seq, 0});
    return;
  }
  AsyncRequest req;
  req.op = r.op;
  req.flags = r.flags;
  req.offset = r.offset;
  req.length = r.op == DBLOCK_OP_FLUSH ? 0 : r.length;
  if (r.op == DBLOCK_OP_READ || r.op == DBLOCK_OP_WRITE) {
    const std::uint64_t slot = std::uint64_t{r.tag} * info_.config.max_io_bytes;
    if (slot + r.length > q.buffer.size()) {
      immediate.push_back(dblock_completion{r.tag, 0, -EIO, r.seq, 0});
      return;
    }
    req.data = q.buffer.subspan(slot, r.length);
  }
  try {
    backend_.submit(req, AsyncCompletion(&q, r.tag, r.seq));
    ++submitted_;
  } catch (...) {
    immediate.push_back(dblock_completion{r.tag, 0, errno_of(std::current_exception()), r.seq, 0});
  }
}

void AsyncServer::serve_queue(detail::AsyncQueue& q) {
  q.thread = ::pthread_self();
  q.has_thread = true;
  const std::uint16_t depth = info_.config.queue_depth;
  std::vector<dblock_request> requests(depth);
  std::vector<dblock_completion> completions;  // to hand to the kernel
  std::vector<dblock_completion> incoming;
  completions.reserve(2 * std::size_t{depth});
  incoming.reserve(depth);
  std::size_t inflight = 0;  // submitted, not yet completed by the backend
  bool gone = false;
  dblock_serve serve{};

  const auto take_done = [&] {
    {
      std::lock_guard lock(q.mu);
      incoming.swap(q.done);
    }
    inflight -= std::min(inflight, incoming.size());
    completions.insert(completions.end(), incoming.begin(), incoming.end());
    incoming.clear();
    // q.done now holds the swapped-out vector: keep its capacity at depth.
  };

  for (;;) {
    take_done();
    if (gone) completions.clear();  // the device is destroyed: no one to answer
    const bool stopping = stop_ || gone;
    if (stopping) {
      if (completions.empty()) {
        if (inflight == 0) return;
        // Owed answers still with the backend: wait for them here, not in
        // the kernel (which may have nothing more to give us).
        q.draining = true;
        std::unique_lock lock(q.mu);
        q.cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return !q.done.empty(); });
        lock.unlock();
        continue;
      }
    }

    serve = dblock_serve{};
    serve.completions_ptr = reinterpret_cast<std::uintptr_t>(completions.data());
    serve.nr_completions = static_cast<std::uint32_t>(completions.size());
    serve.requests_ptr = reinterpret_cast<std::uintptr_t>(requests.data());
    serve.request_size = sizeof(dblock_request);
    serve.max_requests = stopping ? 0 : depth;
    serve.queue = q.index;
    serve.flags = stopping ? DBLOCK_SERVE_NOWAIT : 0;
    serve.buffer_ptr = q.buffer_ptr;

    // Arm: from here a completion signals us.  Then look once more, so that
    // one that came before the arming is not left waiting for a request.
    tl_armed_serve = &serve;
    q.sleeping.store(true);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    bool pending;
    {
      std::lock_guard lock(q.mu);
      pending = !q.done.empty();
    }
    if (pending || stop_) serve.flags = serve.flags | DBLOCK_SERVE_NOWAIT;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    const int rc = ::ioctl(channel_.get(), DBLOCK_IOC_SERVE, &serve);
    const int err = errno;
    q.sleeping.store(false);
    tl_armed_serve = nullptr;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    // Consumed by the kernel even when the call fails: never send twice.
    completions.clear();
    if (rc < 0) {
      if (err == EINTR) continue;
      throw Error(err, fmt::format("{}: ioctl DBLOCK_IOC_SERVE (queue {}) on {}", context(),
                                   q.index, channel_path_));
    }
    rejected_ += serve.nr_rejected;
    if (serve.status & DBLOCK_SERVE_GONE) gone = true;
    const std::uint32_t fetched = std::min<std::uint32_t>(serve.nr_requests, depth);
    for (std::uint32_t i = 0; i < fetched; ++i) {
      ++inflight;
      const std::size_t before = completions.size();
      submit(q, requests[i], completions);
      if (completions.size() != before) --inflight;  // answered at once
    }
  }
}

}  // namespace dblock
