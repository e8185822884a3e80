// Copyright (c) dblock authors.
#include "dblock/nbd_backend.h"

#include <libnbd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "dblock/error.h"
#include "dblock/unique_fd.h"

namespace dblock {

using Clock = std::chrono::steady_clock;

// One request, from submit() until its completion is signalled.  Ops in
// flight on a connection are linked into its list, so that none is lost
// when the connection breaks, whatever libnbd does with their callbacks.
struct NbdBackend::Op {
  Connection* conn = nullptr;
  AsyncRequest request;
  AsyncCompletion completion;
  bool fua_by_flush = false;  // a FUA write on an export without FUA
  bool flushing = false;      // ... written; now its flush
  std::optional<Clock::time_point> held_since;
  Op* prev = nullptr;  // in the connection's in-flight list
  Op* next = nullptr;
};

namespace {

struct HandleCloser {
  void operator()(nbd_handle* h) const { nbd_close(h); }
};
using Handle = std::unique_ptr<nbd_handle, HandleCloser>;

// What a reply or a refused command says about the connection itself.
bool connection_lost(int err) {
  return err == ENOTCONN || err == ESHUTDOWN || err == ECONNRESET || err == EPIPE;
}

std::string last_error() {
  const char* m = nbd_get_error();
  return m != nullptr ? m : "unknown libnbd error";
}

int last_errno(int fallback) {
  const int e = nbd_get_errno();
  return e != 0 ? e : fallback;
}

std::string connect_hint(int err, const std::string& message) {
  if (message.find("export") != std::string::npos &&
      (err == ENOENT || err == EINVAL || err == ENOTSUP || err == EPERM)) {
    return "list the exports: nbdinfo --list URI";
  }
  switch (err) {
    case ECONNREFUSED:
    case ENOENT:
      return "no NBD server listens there: start it (nbdkit, qemu-nbd) or fix the URI";
    case EINVAL:
      return "give nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH";
    case ENOTSUP:
      return "this libnbd cannot do what the URI asks (TLS, vsock?)";
    default:
      return {};
  }
}

// A new handle, connected to `uri` (blocking).
Handle connect(const std::string& uri) {
  Handle h(nbd_create());
  if (!h) throw Error(last_errno(ENOMEM), "nbd_create: " + last_error());
  // Reads land in the queue's buffer, which the reply overwrites whole.
  (void)nbd_set_pread_initialize(h.get(), false);
  // Simple replies, as the kernel's client: a read's reply is then one
  // header and the data (structured replies add a chunk header per read,
  // one more recv for each, and serve only block status, which no request
  // here asks for).
  (void)nbd_set_request_structured_replies(h.get(), false);
  if (nbd_connect_uri(h.get(), uri.c_str()) == -1) {
    const int err = last_errno(EIO);
    const std::string message = last_error();
    // libnbd's message ends with the errno text Error adds again: keep
    // what comes before it ("...: connect", "server replied with error ...").
    std::string what = message;
    const std::string text = std::error_code(err, std::generic_category()).message();
    if (what.ends_with(": " + text)) what.resize(what.size() - text.size() - 2);
    throw Error(err, fmt::format("{}: {}", uri, what), connect_hint(err, message));
  }
  return h;
}

std::uint32_t block_size(nbd_handle* h, int which) {
  const std::int64_t v = nbd_get_block_size(h, which);
  return v > 0 && v <= UINT32_MAX ? static_cast<std::uint32_t>(v) : 0;
}

bool flag(int v) { return v > 0; }

// The handle can carry no more commands (libnbd refuses them with EINVAL).
bool broken(nbd_handle* h) { return nbd_aio_is_dead(h) || nbd_aio_is_closed(h); }

}  // namespace

class NbdBackend::Connection {
 public:
  Connection(NbdBackend& owner, unsigned index, Handle handle);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  void start();
  void submit(std::unique_ptr<Op> op);
  // libnbd's completion callback (on the poller thread, libnbd's lock held:
  // no libnbd call on this handle from here).
  static int on_reply(void* user_data, int* error);

 private:
  void poll_loop();
  bool reconnect();
  void disconnect(const std::string& why);
  // Starts op on h; false if libnbd refused it (errno in *err).
  bool issue(nbd_handle* h, Op* op, int* err);
  void replied(Op* op, int err);
  void lost(Op* op);
  void finish(Op* op, int result);
  void link(Op* op);    // guarded by list_mu_
  void unlink(Op* op);  // guarded by list_mu_
  void wake() const;
  void issue_held(nbd_handle* h);
  void expire_held();
  void event(const std::string& what) const;

  NbdBackend& owner_;
  unsigned index_;
  std::mutex mu_;  // handle_; held while a queue thread issues on it
  Handle handle_;  // null while disconnected; reset by the poller only
  std::mutex list_mu_;
  Op* in_flight_ = nullptr;   // guarded by list_mu_
  std::vector<Op*> held_;     // guarded by list_mu_: for the poller to issue
  UniqueFd wake_;
  std::atomic<bool> stop_{false};
  std::thread poller_;
};

NbdBackend::Connection::Connection(NbdBackend& owner, unsigned index, Handle handle)
    : owner_(owner), index_(index), handle_(std::move(handle)) {
  wake_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_) throw Error(errno, "eventfd for an NBD connection");
}

void NbdBackend::Connection::start() {
  // The poller takes no signal: a program that waits for its signals
  // (serve() does) blocks them in its own threads, and one left open here
  // would get SIGTERM's default action instead.
  sigset_t all;
  sigset_t old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    poller_ = std::thread([this] { poll_loop(); });
  } catch (...) {
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    throw;
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

NbdBackend::Connection::~Connection() {
  stop_ = true;
  wake();
  if (poller_.joinable()) poller_.join();
  std::lock_guard lock(mu_);
  if (handle_) (void)nbd_shutdown(handle_.get(), 0);
}

void NbdBackend::Connection::event(const std::string& what) const {
  const std::string line = fmt::format("{} (connection {}): {}", owner_.uri(), index_, what);
  if (owner_.options_.on_event) {
    owner_.options_.on_event(line);
  } else {
    fmt::print(stderr, "{}\n", line);
  }
}

void NbdBackend::Connection::wake() const {
  const std::uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
}

void NbdBackend::Connection::link(Op* op) {
  op->prev = nullptr;
  op->next = in_flight_;
  if (in_flight_ != nullptr) in_flight_->prev = op;
  in_flight_ = op;
}

void NbdBackend::Connection::unlink(Op* op) {
  if (op->prev != nullptr) op->prev->next = op->next;
  if (op->next != nullptr) op->next->prev = op->prev;
  if (in_flight_ == op) in_flight_ = op->next;
  op->prev = op->next = nullptr;
}

bool NbdBackend::Connection::issue(nbd_handle* h, Op* op, int* err) {
  const AsyncRequest& r = op->request;
  if (r.op > DBLOCK_OP_WRITE_ZEROES) {
    *err = EOPNOTSUPP;
    return false;
  }
  const nbd_completion_callback cb{.callback = on_reply, .user_data = op, .free = nullptr};
  {
    std::lock_guard lock(list_mu_);
    link(op);
  }
  std::int64_t cookie = -1;
  if (op->flushing) {
    cookie = nbd_aio_flush(h, cb, 0);
  } else {
    switch (r.op) {
      case DBLOCK_OP_READ:
        cookie = nbd_aio_pread(h, r.data.data(), r.length, r.offset, cb, 0);
        break;
      case DBLOCK_OP_WRITE:
        cookie = nbd_aio_pwrite(h, r.data.data(), r.length, r.offset, cb,
                                (r.flags & DBLOCK_REQ_FUA) && owner_.can_fua_ ? LIBNBD_CMD_FLAG_FUA
                                                                              : 0);
        break;
      case DBLOCK_OP_FLUSH:
        cookie = nbd_aio_flush(h, cb, 0);
        break;
      case DBLOCK_OP_DISCARD:
        cookie = nbd_aio_trim(h, r.length, r.offset, cb, 0);
        break;
      case DBLOCK_OP_WRITE_ZEROES:
        cookie = nbd_aio_zero(h, r.length, r.offset, cb,
                              (r.flags & DBLOCK_REQ_NOUNMAP) ? LIBNBD_CMD_FLAG_NO_HOLE : 0);
        break;
      default:
        break;
    }
  }
  if (cookie != -1) return true;
  *err = last_errno(EIO);
  std::lock_guard lock(list_mu_);
  unlink(op);
  return false;
}

void NbdBackend::Connection::submit(std::unique_ptr<Op> owned) {
  owned->conn = this;
  // From here the op is the connection's: its reply may come (and free it)
  // on the poller thread before nbd_aio_* returns here.
  Op* op = owned.release();
  {
    std::unique_lock lock(mu_);
    if (handle_) {
      nbd_handle* h = handle_.get();
      int err = 0;
      if (issue(h, op, &err)) {
        // A command libnbd could not send at once waits for the socket:
        // the poller must watch for POLLOUT.
        const bool wants_write = (nbd_aio_get_direction(h) & LIBNBD_AIO_DIRECTION_WRITE) != 0;
        lock.unlock();
        if (wants_write) wake();
        return;
      }
      if (!connection_lost(err) && !broken(h)) {
        lock.unlock();
        finish(op, -err);
        return;
      }
    }
  }
  lost(op);
}

int NbdBackend::Connection::on_reply(void* user_data, int* error) {
  auto* op = static_cast<Op*>(user_data);
  op->conn->replied(op, *error);
  return 1;  // retire the command
}

void NbdBackend::Connection::replied(Op* op, int err) {
  if (err == 0 && op->fua_by_flush && !op->flushing) {
    // Written; the flush follows, issued by the poller after this callback.
    {
      std::lock_guard lock(list_mu_);
      unlink(op);
      op->flushing = true;
      held_.push_back(op);
    }
    wake();
    return;
  }
  {
    std::lock_guard lock(list_mu_);
    unlink(op);
  }
  if (err != 0 && connection_lost(err)) {
    lost(op);
    return;
  }
  finish(op, -err);
}

void NbdBackend::Connection::lost(Op* op) {
  if (!owner_.options_.hold_while_disconnected || stop_) {
    finish(op, -EIO);
    return;
  }
  if (!op->held_since) op->held_since = Clock::now();
  {
    std::lock_guard lock(list_mu_);
    held_.push_back(op);
  }
  wake();
}

void NbdBackend::Connection::finish(Op* op, int result) {
  op->completion.done(result);
  delete op;  // NOLINT(cppcoreguidelines-owning-memory): owned since submit()
}

void NbdBackend::Connection::issue_held(nbd_handle* h) {
  std::vector<Op*> ops;
  {
    std::lock_guard lock(list_mu_);
    ops.swap(held_);
  }
  for (std::size_t i = 0; i < ops.size(); ++i) {
    Op* op = ops[i];
    int err = 0;
    bool issued;
    {
      std::lock_guard lock(mu_);
      issued = issue(h, op, &err);
    }
    if (issued) continue;
    if (connection_lost(err) || broken(h)) {
      // Broken again: the rest wait for the next connection.
      std::lock_guard lock(list_mu_);
      held_.insert(held_.end(), ops.begin() + static_cast<std::ptrdiff_t>(i), ops.end());
      return;
    }
    finish(op, -err);
  }
}

void NbdBackend::Connection::expire_held() {
  const auto& limit = owner_.options_.hold_limit;
  std::vector<Op*> expired;
  {
    std::lock_guard lock(list_mu_);
    const auto now = Clock::now();
    const auto old = std::stable_partition(held_.begin(), held_.end(), [&](Op* op) {
      return !stop_ && !(limit && op->held_since && now - *op->held_since >= *limit);
    });
    expired.assign(old, held_.end());
    held_.erase(old, held_.end());
  }
  if (!expired.empty()) {
    event(fmt::format("{} request(s) held too long or at shutdown: failed (EIO)", expired.size()));
  }
  for (Op* op : expired) finish(op, -EIO);
}

void NbdBackend::Connection::disconnect(const std::string& why) {
  Handle old;
  {
    std::lock_guard lock(mu_);
    old = std::move(handle_);
  }
  // Replies that will never come: whatever libnbd does with the commands
  // when closed, each op still linked is lost here, once.
  old.reset();
  Op* ops;
  {
    std::lock_guard lock(list_mu_);
    ops = in_flight_;
    in_flight_ = nullptr;
  }
  std::size_t n = 0;
  while (ops != nullptr) {
    Op* next = ops->next;
    ops->prev = ops->next = nullptr;
    lost(ops);
    ops = next;
    ++n;
  }
  event(fmt::format("connection lost ({}); {} request(s) in flight {}; reconnecting", why, n,
                    owner_.options_.hold_while_disconnected ? "held" : "failed"));
}

bool NbdBackend::Connection::reconnect() {
  Handle h;
  try {
    h = connect(owner_.uri());
  } catch (const Error&) {
    return false;
  }
  const std::int64_t size = nbd_get_size(h.get());
  if (size < 0 || static_cast<std::uint64_t>(size) < owner_.size_) {
    event(fmt::format("reconnected, but the export is now {} bytes, not {}: not using it", size,
                      owner_.size_));
    return false;
  }
  {
    std::lock_guard lock(mu_);
    handle_ = std::move(h);
  }
  ++owner_.reconnections_;
  std::size_t held;
  {
    std::lock_guard lock(list_mu_);
    held = held_.size();
  }
  event(fmt::format("reconnected; {} request(s) held sent again", held));
  return true;
}

void NbdBackend::Connection::poll_loop() {
  constexpr std::chrono::milliseconds kFirstBackoff{50};
  auto backoff = kFirstBackoff;
  while (!stop_) {
    nbd_handle* h = nullptr;
    {
      std::lock_guard lock(mu_);
      h = handle_.get();
    }
    if (h == nullptr) {
      expire_held();
      if (reconnect()) {
        backoff = kFirstBackoff;
        continue;
      }
      // Wait for the backoff, or for a wake (a stop, or a request held).
      pollfd pfd{wake_.get(), POLLIN, 0};
      (void)::poll(&pfd, 1, static_cast<int>(backoff.count()));
      std::uint64_t count;
      (void)!::read(wake_.get(), &count, sizeof count);
      backoff = std::min(backoff * 2, owner_.options_.max_backoff);
      continue;
    }
    if (broken(h)) {
      disconnect(last_error());
      continue;
    }
    issue_held(h);
    const unsigned dir = nbd_aio_get_direction(h);
    pollfd fds[2] = {{nbd_aio_get_fd(h), 0, 0}, {wake_.get(), POLLIN, 0}};
    if (dir & LIBNBD_AIO_DIRECTION_READ) fds[0].events |= POLLIN;
    if (dir & LIBNBD_AIO_DIRECTION_WRITE) fds[0].events |= POLLOUT;
    if (fds[0].fd < 0) {
      disconnect("no socket");
      continue;
    }
    if (::poll(fds, 2, -1) < 0) continue;  // EINTR
    if (fds[1].revents & POLLIN) {
      std::uint64_t count;
      (void)!::read(wake_.get(), &count, sizeof count);
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      (void)nbd_aio_notify_read(h);
    } else if (fds[0].revents & POLLOUT) {
      (void)nbd_aio_notify_write(h);
    }
    if (broken(h)) disconnect(last_error());
  }
  // Stopping: nothing may stay held (the server drains before destroying
  // the backend, but a held request has no connection to finish on).
  expire_held();
}

namespace {
// Tells one NbdBackend from an earlier one at the same address.
std::atomic<std::uint64_t> g_generations{0};
}  // namespace

NbdBackend::NbdBackend(Options options)
    : options_(std::move(options)), generation_(++g_generations) {
  if (options_.connections == 0) options_.connections = 1;
  Handle first = connect(options_.uri);
  nbd_handle* h = first.get();
  const std::int64_t size = nbd_get_size(h);
  if (size < 0) throw Error(last_errno(EIO), fmt::format("{}: export size", options_.uri));
  size_ = static_cast<std::uint64_t>(size);
  read_only_ = options_.read_only || flag(nbd_is_read_only(h));
  can_flush_ = flag(nbd_can_flush(h));
  can_fua_ = flag(nbd_can_fua(h));
  can_trim_ = !read_only_ && flag(nbd_can_trim(h));
  can_zero_ = !read_only_ && flag(nbd_can_zero(h));
  block_min_ = block_size(h, LIBNBD_SIZE_MINIMUM);
  block_preferred_ = block_size(h, LIBNBD_SIZE_PREFERRED);
  block_max_ = block_size(h, LIBNBD_SIZE_MAXIMUM);
  if (options_.connections > 1 && !flag(nbd_can_multi_conn(h))) {
    if (!options_.fewer_connections_ok) {
      throw Error(EINVAL,
                  fmt::format("{}: {} connections", options_.uri, options_.connections),
                  "the export does not advertise multi-conn, so a flush on one connection would "
                  "not cover writes on another (fix: one connection)");
    }
    options_.connections = 1;
  }
  connections_.push_back(std::make_unique<Connection>(*this, 0, std::move(first)));
  for (unsigned i = 1; i < options_.connections; ++i) {
    connections_.push_back(
        std::make_unique<Connection>(*this, i, connect(options_.uri)));
  }
  for (auto& c : connections_) c->start();
}

NbdBackend::~NbdBackend() = default;

unsigned NbdBackend::connections() const { return static_cast<unsigned>(connections_.size()); }

NbdBackend::Connection& NbdBackend::pick() {
  // Each submitting thread (a queue thread) keeps to one connection, the
  // threads dealt out in turn: a queue's batch goes down one socket, and two
  // queues do not contend for one handle's lock while another sits idle.
  struct Choice {
    const NbdBackend* backend = nullptr;
    std::uint64_t generation = 0;
    unsigned index = 0;
  };
  thread_local Choice choice;
  if (choice.backend != this || choice.generation != generation_) {
    choice = {this, generation_, next_.fetch_add(1, std::memory_order_relaxed)};
  }
  return *connections_[choice.index % connections_.size()];
}

void NbdBackend::submit(const AsyncRequest& request, AsyncCompletion completion) {
  if (read_only_ && request.op != DBLOCK_OP_READ && request.op != DBLOCK_OP_FLUSH) {
    throw Error(EROFS, fmt::format("{}: write to a read-only export", options_.uri));
  }
  auto op = std::make_unique<Op>();
  op->request = request;
  op->completion = completion;
  op->fua_by_flush = request.op == DBLOCK_OP_WRITE && (request.flags & DBLOCK_REQ_FUA) &&
                     !can_fua_ && can_flush_;
  pick().submit(std::move(op));
}

}  // namespace dblock
