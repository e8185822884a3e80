// Copyright (c) dblock authors.
// The one server core: every backend, every queue, the whole lifecycle of
// serving a device (see dblock/server.h).
#include "dblock/server.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "dblock/error.h"
#include "channel.h"
#include "queue_thread.h"
#include "request.h"
#include "sync_adapter.h"

namespace dblock {
namespace {

// The default number of workers of a blocking Backend is the device's
// queues x depth, up to this: enough for a fast SSD (QD32), few enough that
// their stacks stay small when the server locks its memory.
constexpr std::uint64_t kMaxDefaultWorkers = 32;

// What the kernel is told of a backend's result: 0 or -errno, else EIO.
int kernel_result(int result) { return (result <= 0 && result > -4096) ? result : -EIO; }

}  // namespace

namespace detail {

// One hardware queue's state, shared between its thread and the threads
// that complete its requests.
struct AsyncQueue {
  ServerCore* core = nullptr;
  std::uint16_t index = 0;
  std::span<std::byte> buffer;
  internal::Channel* channel = nullptr;

  // The channel takes answers from any thread (channel->commit()).
  bool direct_commit = false;
  // Requests given to the backend and not yet answered (done() not called),
  // for done() to tell the last.  The drain counts with the queue thread's
  // own tally and `committed` instead: an answer leaves `owed` before its
  // commit() returns, and the channel must outlive that call.
  std::atomic<std::uint32_t> owed{0};

  std::mutex mu;
  std::condition_variable cv;           // the drain when stopping
  std::vector<dblock_completion> done;  // guarded by mu
  std::size_t committed = 0;            // handed back by commit(); guarded by mu
  std::atomic<bool> sleeping{false};    // in (or about to enter) SERVE
  std::atomic<bool> draining{false};    // waits on cv, not in the kernel

  AsyncCompletion completion(std::uint16_t tag, std::uint32_t seq) {
    return AsyncCompletion(this, tag, seq);
  }
  void kick() const { channel->kick(index); }
};

struct ServerCore {
  // Opens the channel and sets up the queues; `backend` is set after.
  ServerCore(std::uint32_t device_id, const ServerOptions& options);
  void use(AsyncBackend& backend);

  void run(const Server::StartedCallback& on_started);
  void request_stop();
  void serve_queue(AsyncQueue& q);
  void submit(AsyncQueue& q, const dblock_request& r, std::vector<dblock_completion>& immediate);
  void apply_resize();
  void resize_to(std::uint64_t new_size);
  void thread_finished(std::exception_ptr error);
  std::string context() const;

  AsyncBackend* backend = nullptr;
  ServerOptions options;
  std::unique_ptr<internal::Channel> channel;
  DeviceInfo info;
  std::vector<std::unique_ptr<AsyncQueue>> queues;
  // A Backend's workers, else empty.  After the queues: its threads end
  // first.
  std::optional<internal::SyncAdapter> adapter;
  // The adapter's Backend when it has no workers: submit() runs its requests.
  Backend* inline_backend = nullptr;

  std::mutex resize_mu;
  std::atomic<std::uint64_t> size_bytes{0};  // what requests are checked against
  std::uint64_t kernel_size = 0;             // the device's, last seen; guarded by resize_mu

  std::atomic<bool> stop{false};
  std::atomic<bool> took_over{false};
  // Reads and writes are answered "do it on the backend's kernel_file()".
  std::atomic<bool> file_io{false};
  std::atomic<std::uint64_t> rejected{0};
  std::atomic<std::uint64_t> served{0};
  std::mutex mu;
  std::condition_variable cv;
  int running = 0;           // guarded by mu
  unsigned ready = 0;        // queues that entered SERVE once; guarded by mu
  std::exception_ptr error;  // guarded by mu
};

// The queue whose thread this is, on a queue thread.
thread_local const AsyncQueue* own_queue = nullptr;

}  // namespace detail

void AsyncCompletion::done(int result) const noexcept {
  detail::AsyncQueue* q = queue_;
  if (q == nullptr) return;
  dblock_completion c{};
  c.tag = tag_;
  c.seq = seq_;
  c.result = kernel_result(result);
  const bool own = detail::own_queue == q;
  const bool last = q->owed.fetch_sub(1) == 1;
  {
    std::unique_lock lock(q->mu);
    // The queue's last request in flight, its thread waiting in SERVE (it
    // looks at q->done first, under this lock, after saying so): answer the
    // kernel from here, rather than wake that thread to make one call.
    // With others still owed, answers wait in q->done and go back together
    // with the thread's next SERVE: one call for many.  (Committing each
    // one from here cost the NBD backend 20-35% of its 4k QD32 rate.)
    if (q->direct_commit && last && !own && q->sleeping.load() && !q->draining.load()) {
      lock.unlock();
      const std::optional<std::uint32_t> rejected = q->channel->commit(q->index, c);
      lock.lock();
      if (rejected) {
        q->core->rejected += *rejected;
        ++q->committed;
        // Under the lock: once it is released the queue may be gone.
        if (q->draining.load()) q->cv.notify_one();
        return;
      }
      q->done.push_back(c);
      q->sleeping.store(false);
      q->kick();
      return;
    }
    q->done.push_back(c);  // capacity reserved for the queue depth: no allocation
    if (q->draining.load()) {
      q->cv.notify_one();
      return;
    }
  }
  if (!own && q->sleeping.exchange(false)) {
    // (On the queue's own thread, the backend completes it in the channel,
    // lent_ring.h, and the thread looks at q->done before it waits again.)
    // Sticky: a kick that comes before the thread waits ends its next wait.
    q->kick();
  }
}

namespace detail {

ServerCore::ServerCore(std::uint32_t device_id, const ServerOptions& server_options)
    : options(server_options),
      channel(options.transport == Transport::kUblk
                  ? internal::open_ublk_channel(device_id)
                  : internal::open_dblock_channel(device_id, options.backend_description)),
      info(channel->info()) {
  const DeviceConfig& config = info.config;
  size_bytes = config.size_bytes;
  kernel_size = config.size_bytes;
  queues.reserve(config.queues);
  for (std::uint16_t i = 0; i < config.queues; ++i) {
    auto q = std::make_unique<AsyncQueue>();
    q->core = this;
    q->index = i;
    q->buffer = channel->buffer(i);
    q->channel = channel.get();
    q->done.reserve(config.queue_depth);
    q->direct_commit = channel->can_commit();
    queues.push_back(std::move(q));
  }
}

void ServerCore::use(AsyncBackend& b) {
  if (b.size() < info.config.size_bytes) {
    throw std::invalid_argument(fmt::format("{}: the backend has {} bytes, the device {}",
                                            context(), b.size(), info.config.size_bytes));
  }
  backend = &b;
}

std::string ServerCore::context() const {
  return fmt::format("serve device '{}' (id {})", info.config.name, info.id);
}

void ServerCore::request_stop() {
  {
    std::lock_guard lock(mu);
    stop = true;
  }
  cv.notify_all();
  // Sticky: a queue thread not yet in the kernel returns from its next call.
  for (const auto& q : queues) {
    q->kick();
    q->cv.notify_all();
  }
}

void ServerCore::thread_finished(std::exception_ptr e) {
  {
    std::lock_guard lock(mu);
    --running;
    if (e) {
      if (!error) error = e;
      stop = true;
    }
  }
  cv.notify_all();
}

void ServerCore::run(const Server::StartedCallback& on_started) {
  // Before any request is fetched: from here on writes come without data.
  if (options.kernel_file_io) {
    if (const std::optional<KernelFile> file = backend->kernel_file()) {
      try {
        file_io = channel->set_file(file->fd, file->offset);
      } catch (const std::exception& e) {
        if (options.on_warning) {
          options.on_warning(fmt::format("{}; the backend does its reads and writes", e.what()));
        }
      }
    }
  }
  std::vector<std::jthread> threads;
  threads.reserve(queues.size());
  for (auto& q : queues) {
    {
      std::lock_guard lock(mu);
      ++running;
    }
    try {
      threads.emplace_back([this, &q] {
        std::exception_ptr e;
        try {
          internal::prepare_server_thread();
          serve_queue(*q);
        } catch (...) {
          e = std::current_exception();
        }
        thread_finished(e);
      });
    } catch (...) {
      thread_finished(std::current_exception());
    }
  }

  // START waits in the kernel until every queue has a thread in SERVE; each
  // thread's first call does not wait, and says so here, so that START is
  // called only when it returns at once (and a stop never waits for it).
  bool start = false;
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return stop || ready == queues.size(); });
    start = !stop;
  }
  // Resize asks, where the kernel leaves them to the server (ublk).
  std::unique_ptr<internal::Running> resizes;
  if (start) {
    try {
      if (!channel->start()) took_over = true;
      try {
        resizes = channel->take_resizes([this](std::uint64_t n) { resize_to(n); });
      } catch (const std::exception& e) {
        if (options.on_warning) {
          options.on_warning(fmt::format("{}: no online resize: {}", context(), e.what()));
        }
      }
      if (on_started) on_started(channel->info());
    } catch (...) {
      std::lock_guard lock(mu);
      if (!error) error = std::current_exception();
      stop = true;
    }
  }

  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return running == 0 || stop; });
  if (running > 0) {
    lock.unlock();
    request_stop();
    lock.lock();
    cv.wait(lock, [&] { return running == 0; });
  }
  lock.unlock();
  resizes.reset();  // joins its thread, which may be resizing
  threads.clear();  // joins
  if (error) std::rethrow_exception(error);
}

void ServerCore::apply_resize() {
  // Every queue is told; the first to get here does the work.
  std::lock_guard lock(resize_mu);
  const std::uint64_t old_size = size_bytes;
  const std::uint64_t new_size = channel->info().config.size_bytes;
  if (new_size == kernel_size) return;
  kernel_size = new_size;
  try {
    // Grow the backend before accepting requests past the old end; shrink
    // it after refusing them.
    if (new_size > old_size) {
      backend->resize(new_size);
      size_bytes = new_size;
    } else {
      size_bytes = new_size;
      backend->resize(new_size);
    }
  } catch (const std::exception& e) {
    if (options.on_warning) {
      options.on_warning(fmt::format("{}: resize to {} bytes: {} (serving {} bytes)", context(),
                                     new_size, e.what(), std::min(old_size, new_size)));
    }
    size_bytes = std::min(old_size, new_size);
  }
}

void ServerCore::resize_to(std::uint64_t new_size) {
  std::lock_guard lock(resize_mu);
  const std::uint32_t block = info.config.block_size;
  if (new_size == 0 || new_size % block != 0) {
    throw Error(EINVAL, fmt::format("{}: resize to {} bytes", context(), new_size),
                fmt::format("not a positive multiple of its {}-byte blocks", block));
  }
  const std::uint64_t old_size = size_bytes;
  if (new_size == old_size) return;
  if (new_size > old_size) {
    // The backend first: the disk never shows what the backend cannot hold.
    backend->resize(new_size);
    try {
      channel->set_size(new_size);
    } catch (...) {
      try {
        backend->resize(old_size);
      } catch (const std::exception& e) {
        if (options.on_warning) options.on_warning(e.what());
      }
      throw;
    }
    size_bytes = new_size;
  } else {
    // The disk first: nothing past the new end is asked for once it is.
    channel->set_size(new_size);
    size_bytes = new_size;
    try {
      backend->resize(new_size);
    } catch (const std::exception& e) {
      if (options.on_warning) {
        options.on_warning(fmt::format("{}: shrink the backend to {} bytes: {}", context(),
                                       new_size, e.what()));
      }
    }
  }
  kernel_size = new_size;
}

void ServerCore::submit(AsyncQueue& q, const dblock_request& r,
                        std::vector<dblock_completion>& immediate) {
  AsyncRequest req;
  const int bad = internal::prepare_request(r, info.config, size_bytes, q.buffer, req);
  if (bad != 0) {
    immediate.push_back(dblock_completion{r.tag, 0, bad, r.seq, 0});
    return;
  }
  ++served;
  if (file_io && (r.op == DBLOCK_OP_READ || r.op == DBLOCK_OP_WRITE)) {
    // The kernel does it on the backend's file, with the request's pages.
    immediate.push_back(dblock_completion{r.tag, DBLOCK_CPL_FILE, 0, r.seq, 0});
    return;
  }
  if (inline_backend != nullptr) {
    // Answered with this batch: no completion crosses the queue's lock.
    immediate.push_back(dblock_completion{
        r.tag, 0, kernel_result(internal::run_request(*inline_backend, req)), r.seq, 0});
    return;
  }
  ++q.owed;
  try {
    backend->submit(req, q.completion(r.tag, r.seq));
  } catch (...) {
    --q.owed;
    immediate.push_back(
        dblock_completion{r.tag, 0, internal::errno_of(std::current_exception()), r.seq, 0});
  }
}

void ServerCore::serve_queue(AsyncQueue& q) {
  const std::uint16_t depth = info.config.queue_depth;
  std::vector<dblock_request> requests(depth);
  std::vector<dblock_completion> completions;  // to hand to the kernel
  std::vector<dblock_completion> incoming;
  completions.reserve(2 * std::size_t{depth});
  incoming.reserve(depth);
  std::size_t inflight = 0;  // given to the backend, not yet completed
  bool first = true;
  bool gone = false;
  own_queue = &q;

  const auto take_done = [&] {
    std::size_t committed = 0;
    {
      std::lock_guard lock(q.mu);
      incoming.swap(q.done);
      committed = std::exchange(q.committed, 0);
    }
    inflight -= std::min(inflight, incoming.size() + committed);
    completions.insert(completions.end(), incoming.begin(), incoming.end());
    incoming.clear();
    // q.done now holds the swapped-out vector: its capacity stays at depth.
  };

  for (;;) {
    take_done();
    if (gone) completions.clear();  // the device is destroyed: no one to answer
    const bool stopping = stop || gone;
    if (stopping && completions.empty()) {
      if (inflight == 0) return;
      // Answers still owed by the backend (which writes into the buffers
      // until then): wait for them here, not in the kernel; or, those it
      // completes on this thread, in the channel.
      if (channel->reap(q.index)) continue;
      q.draining = true;
      std::unique_lock lock(q.mu);
      q.cv.wait(lock, [&] { return !q.done.empty() || q.committed != 0; });
      continue;
    }

    dblock_serve serve{};
    serve.completions_ptr = reinterpret_cast<std::uintptr_t>(completions.data());
    serve.nr_completions = static_cast<std::uint32_t>(completions.size());
    serve.requests_ptr = reinterpret_cast<std::uintptr_t>(requests.data());
    serve.request_size = sizeof(dblock_request);
    // When stopping, hand back what we owe and take nothing new: what is
    // still queued stays with the kernel (for the next server, under the
    // "wait" policy).
    serve.max_requests = stopping ? 0 : depth;
    serve.queue = q.index;
    // From here a completion kicks us; then look once more, so that one
    // that came before is not left waiting for the next request.
    q.sleeping.store(true);
    bool pending;
    {
      std::lock_guard lock(q.mu);
      pending = !q.done.empty();
    }
    if (first || stopping || pending) serve.flags = DBLOCK_SERVE_NOWAIT;
    bool served_ok = false;
    try {
      served_ok = channel->serve(serve);
    } catch (...) {
      q.sleeping.store(false);
      throw;
    }
    q.sleeping.store(false);
    // Consumed by the kernel even when the call fails: never send twice.
    completions.clear();
    if (!served_ok) continue;  // EINTR
    if (first) {
      first = false;
      {
        std::lock_guard lock(mu);
        ++ready;
      }
      cv.notify_all();
    }
    rejected += serve.nr_rejected;
    if (serve.status & DBLOCK_SERVE_RESIZED) apply_resize();
    if (serve.status & DBLOCK_SERVE_GONE) gone = true;
    const std::uint32_t fetched = std::min<std::uint32_t>(serve.nr_requests, depth);
    for (std::uint32_t i = 0; i < fetched; ++i) {
      ++inflight;
      const std::size_t before = completions.size();
      submit(q, requests[i], completions);
      if (completions.size() != before) --inflight;  // answered at once
    }
    if (fetched > 0) backend->commit();
  }
}

}  // namespace detail

Server::Server(std::uint32_t device_id, AsyncBackend& backend, const ServerOptions& options)
    : core_(std::make_unique<detail::ServerCore>(device_id, options)) {
  core_->use(backend);
}

Server::Server(std::uint32_t device_id, Backend& backend, const ServerOptions& options)
    : core_(std::make_unique<detail::ServerCore>(device_id, options)) {
  if (options.workers < -1) {
    throw std::invalid_argument(
        fmt::format("{}: {} workers: give a count, 0 (run requests on the queue threads) or -1 "
                    "(the default)",
                    core_->context(), options.workers));
  }
  unsigned workers = 0;
  if (options.workers >= 0) {
    workers = static_cast<unsigned>(options.workers);
  } else if (backend.may_block()) {
    // As many as the device's shape lets be in flight, within reason.
    const DeviceConfig& c = core_->info.config;
    workers = static_cast<unsigned>(
        std::clamp<std::uint64_t>(std::uint64_t{c.queues} * c.queue_depth, 1, kMaxDefaultWorkers));
  }
  core_->use(core_->adapter.emplace(backend, workers));
  core_->inline_backend = core_->adapter->inline_backend();
}

Server::~Server() = default;

const DeviceInfo& Server::info() const { return core_->info; }
void Server::run(const StartedCallback& on_started) { core_->run(on_started); }
void Server::request_stop() { core_->request_stop(); }
bool Server::took_over() const { return core_->took_over; }
bool Server::kernel_file_io() const { return core_->file_io; }
std::uint64_t Server::requests_served() const { return core_->served; }
std::uint64_t Server::rejected_completions() const { return core_->rejected; }
unsigned Server::workers() const { return core_->adapter ? core_->adapter->workers() : 0; }

}  // namespace dblock
