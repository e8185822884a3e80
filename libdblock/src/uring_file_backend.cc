// Copyright (c) dblock authors.
#include "dblock/uring_file_backend.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "dblock/error.h"
#include "lent_ring.h"
#include "queue_thread.h"
#include "request.h"

#ifdef DBLOCK_HAVE_URING
#include <liburing.h>
#endif

namespace dblock {

#ifdef DBLOCK_HAVE_URING

namespace {

// user_data of the NOP that ends the completion thread.
constexpr std::uint64_t kStopToken = 0;
// Set in the user_data (an Op's address) of an fdatasync: a FLUSH's, or
// the one linked after a FUA write.
constexpr std::uint64_t kSyncPart = 1;

bool aligned(std::uint64_t value, std::uint32_t align) { return value % align == 0; }

// One request in flight: the CQEs it still waits for and its answer.
struct Op {
  AsyncRequest request;
  AsyncCompletion completion;
  detail::UringRing* owner = nullptr;
  int cqes = 0;    // still to come: 1, or 2 for a FUA write (write, fdatasync)
  int result = 0;  // the first failure
};
static_assert(alignof(Op) > kSyncPart, "the low bit of an Op's address is free");

// Fills the SQEs of `op`, taken from next_sqe(): its read, write or
// fdatasync, and a FUA write's fdatasync linked after it.  Their user_data
// is the Op's address or'ed with `tag`, and with kSyncPart for an fdatasync.
template <typename NextSqe>
void prepare(NextSqe&& next_sqe, const Op* op, int fd, std::uint64_t pos, std::uint64_t tag) {
  const AsyncRequest& r = op->request;
  const std::uint64_t token = tag | static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(op));
  io_uring_sqe* s = next_sqe();
  if (r.op == DBLOCK_OP_FLUSH) {
    ::io_uring_prep_fsync(s, fd, IORING_FSYNC_DATASYNC);
    ::io_uring_sqe_set_data64(s, token | kSyncPart);
    return;
  }
  if (r.op == DBLOCK_OP_READ) {
    ::io_uring_prep_read(s, fd, r.data.data(), static_cast<unsigned>(r.length), pos);
  } else {
    ::io_uring_prep_write(s, fd, r.data.data(), static_cast<unsigned>(r.length), pos);
  }
  ::io_uring_sqe_set_data64(s, token);
  if (op->cqes == 2) {
    s->flags |= IOSQE_IO_LINK;
    io_uring_sqe* sync = next_sqe();
    ::io_uring_prep_fsync(sync, fd, IORING_FSYNC_DATASYNC);
    ::io_uring_sqe_set_data64(sync, token | kSyncPart);
  }
}

}  // namespace

struct detail::UringRing {
  UringRing(FileBackend& file, unsigned entries);
  ~UringRing();

  Op* take_op();
  void put_op(Op* op);
  io_uring_sqe* sqe();    // with mu held
  void submit_queued();  // with mu held
  void reap();
  void complete(Op* op, bool sync_part, const io_uring_cqe& cqe);
  int finish(const Op& op, std::uint64_t done) noexcept;

  FileBackend& file;
  io_uring ring{};
  std::mutex mu;  // the submission queue
  std::mutex ops_mu;
  std::deque<Op> ops;    // stable addresses; guarded by ops_mu
  std::vector<Op*> free;  // guarded by ops_mu
  std::atomic<std::uint64_t> syncs{0};
  std::thread reaper;
};

detail::UringRing::UringRing(FileBackend& f, unsigned entries) : file(f) {
  const int rc = ::io_uring_queue_init(std::max(entries, 8u), &ring, 0);
  if (rc < 0) {
    const int err = -rc;
    throw Error(err, fmt::format("io_uring_queue_init for {}", file.path()),
                err == EPERM || err == ENOSYS
                    ? "io_uring is not allowed here: kernel.io_uring_disabled, a seccomp "
                      "profile such as Docker's default, or a kernel without it; fix: serve "
                      "the file on worker threads, dblock-serve --aio threads"
                    : "");
  }
  // The completion thread takes no signal: a program that waits for its
  // signals (sigwait, signalfd) blocks them in its own threads, and one
  // left open here would get SIGTERM's default action instead.
  sigset_t all;
  sigset_t old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    reaper = std::thread([this] {
      internal::prepare_server_thread();
      reap();
    });
  } catch (...) {
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    ::io_uring_queue_exit(&ring);
    throw;
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

detail::UringRing::~UringRing() {
  {
    std::lock_guard lock(mu);
    io_uring_sqe* s = sqe();
    ::io_uring_prep_nop(s);
    ::io_uring_sqe_set_data64(s, kStopToken);
    while (::io_uring_submit(&ring) == -EINTR) {
    }
  }
  reaper.join();
  ::io_uring_queue_exit(&ring);
}

Op* detail::UringRing::take_op() {
  std::lock_guard lock(ops_mu);
  if (free.empty()) return &ops.emplace_back();
  Op* op = free.back();
  free.pop_back();
  return op;
}

void detail::UringRing::put_op(Op* op) {
  std::lock_guard lock(ops_mu);
  free.push_back(op);
}

io_uring_sqe* detail::UringRing::sqe() {
  for (;;) {
    if (io_uring_sqe* s = ::io_uring_get_sqe(&ring)) return s;
    submit_queued();  // full: the kernel takes what is queued and frees the entries
  }
}

// Hands every queued SQE to the kernel, waiting out its transient refusals
// (EAGAIN, EBUSY: completions to reap first, which the completion thread does).
void detail::UringRing::submit_queued() {
  for (;;) {
    const int rc = ::io_uring_submit(&ring);
    if (rc >= 0) return;
    if (rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      throw Error(-rc, fmt::format("io_uring_submit for {}", file.path()));
    }
    if (rc != -EINTR) std::this_thread::yield();
  }
}

// The rest of a transfer that came back short, through the FileBackend: a
// read past the end of a file that shrank reads as zeros there.
int detail::UringRing::finish(const Op& op, std::uint64_t done) noexcept {
  if (op.request.op == DBLOCK_OP_READ && file.direct_io() &&
      !aligned(done, file.direct_io_alignment())) {
    // O_DIRECT stopped mid-block: the end of the file.
    std::memset(op.request.data.data() + done, 0, op.request.length - done);
    return 0;
  }
  AsyncRequest rest = op.request;
  rest.offset += done;
  rest.length -= done;
  rest.data = rest.data.subspan(done);
  return internal::run_request(file, rest);
}

void detail::UringRing::complete(Op* op, bool sync_part, const io_uring_cqe& cqe) {
  const AsyncRequest& r = op->request;
  if (!sync_part) {
    if (cqe.res < 0) {
      op->result = cqe.res;
    } else if (static_cast<std::uint64_t>(cqe.res) < r.length) {
      // A short transfer (it also cancels a FUA write's fdatasync): the
      // rest is done, and synced for FUA, here.
      op->result = finish(*op, static_cast<std::uint64_t>(cqe.res));
    }
  } else if (cqe.res == 0) {
    syncs.fetch_add(1, std::memory_order_relaxed);
  } else if (cqe.res != -ECANCELED && op->result == 0) {
    // ECANCELED: the write before it failed or was finished here, and its
    // result stands.
    op->result = cqe.res;
  }
  if (--op->cqes > 0) return;
  const AsyncCompletion done = op->completion;
  const int result = op->result;
  put_op(op);
  done.done(result);
}

void detail::UringRing::reap() {
  for (;;) {
    io_uring_cqe* cqe = nullptr;
    const int rc = ::io_uring_wait_cqe(&ring, &cqe);
    if (rc == -EINTR || rc == -EAGAIN) continue;
    if (rc < 0) {
      // Nothing to wait on would ever answer: a bug, not a runtime condition.
      std::fputs(fmt::format("libdblock: io_uring_wait_cqe for {}: {}\n", file.path(),
                             std::strerror(-rc))
                     .c_str(),
                 stderr);
      std::terminate();
    }
    unsigned head = 0;
    unsigned seen = 0;
    bool stop = false;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      const std::uint64_t token = ::io_uring_cqe_get_data64(cqe);
      if (token == kStopToken) {
        stop = true;
        continue;
      }
      complete(reinterpret_cast<Op*>(static_cast<std::uintptr_t>(token & ~kSyncPart)),
               (token & kSyncPart) != 0, *cqe);
    }
    ::io_uring_cq_advance(&ring, seen);
    if (stop) return;
  }
}

UringFileBackend::UringFileBackend(FileBackend& file) : UringFileBackend(file, Options{}) {}

UringFileBackend::UringFileBackend(FileBackend& file, const Options& options)
    : file_(file), ring_(std::make_unique<detail::UringRing>(file, options.entries)) {}

UringFileBackend::~UringFileBackend() = default;

bool UringFileBackend::available() { return true; }

std::uint64_t UringFileBackend::syncs_issued() const {
  return ring_->syncs.load(std::memory_order_relaxed) + file_.syncs_issued();
}

namespace {

// A CQE of a lent ring's (see lent_ring.h), on the queue thread.
void complete_lent(std::uint64_t user_data, const io_uring_cqe& cqe) {
  auto* op = reinterpret_cast<Op*>(
      static_cast<std::uintptr_t>(user_data & ~(internal::kLentBit | kSyncPart)));
  op->owner->complete(op, (user_data & kSyncPart) != 0, cqe);
}

}  // namespace

void UringFileBackend::submit(const AsyncRequest& r, AsyncCompletion completion) {
  bool now = r.op != DBLOCK_OP_READ && r.op != DBLOCK_OP_WRITE && r.op != DBLOCK_OP_FLUSH;
  if (!now && r.op != DBLOCK_OP_FLUSH && file_.direct_io()) {
    // Misaligned for O_DIRECT: the FileBackend says why, or copies through
    // an aligned buffer.
    const std::uint32_t align = file_.direct_io_alignment();
    now = !aligned(file_.offset() + r.offset, align) || !aligned(r.length, align) ||
          !aligned(reinterpret_cast<std::uintptr_t>(r.data.data()), align);
  }
  if (now || (r.op == DBLOCK_OP_WRITE && file_.read_only())) {
    completion.done(internal::run_request(file_, r));
    return;
  }
  const bool fua = r.op == DBLOCK_OP_WRITE && (r.flags & DBLOCK_REQ_FUA) != 0;
  Op* op = ring_->take_op();
  *op = Op{r, completion, ring_.get(), fua ? 2 : 1, 0};
  const int fd = file_.descriptor();
  const std::uint64_t pos = file_.offset() + r.offset;
  if (internal::LentRing* lent = internal::lent_ring) {
    // The queue thread's ring: its next submission starts these, and it
    // completes them (complete_lent).  Room for both SQEs of a FUA write
    // first, so that no submission cuts the link between them.
    io_uring* ring = lent->ring;
    if (::io_uring_sq_space_left(ring) < 2) {
      const int rc = ::io_uring_submit(ring);
      if (rc < 0 && ::io_uring_sq_space_left(ring) < 2) {
        ring_->put_op(op);
        throw Error(-rc, fmt::format("io_uring_submit for {}", file_.path()));
      }
    }
    lent->complete = complete_lent;
    prepare([ring] { return ::io_uring_get_sqe(ring); }, op, fd, pos, internal::kLentBit);
    lent->inflight += static_cast<unsigned>(op->cqes);
    return;
  }
  std::lock_guard lock(ring_->mu);
  try {
    prepare([this] { return ring_->sqe(); }, op, fd, pos, 0);
  } catch (...) {
    ring_->put_op(op);
    throw;
  }
}

void UringFileBackend::commit() {
  if (internal::lent_ring != nullptr) return;  // the queue thread submits
  std::lock_guard lock(ring_->mu);
  ring_->submit_queued();
}

#else  // !DBLOCK_HAVE_URING

namespace detail {
struct UringRing {};
}  // namespace detail

UringFileBackend::UringFileBackend(FileBackend& file) : UringFileBackend(file, Options{}) {}

UringFileBackend::UringFileBackend(FileBackend& file, const Options&) : file_(file) {
  throw Error(ENOSYS, fmt::format("io_uring for {}", file.path()),
              "this libdblock was built without liburing; fix: serve the file on worker "
              "threads, dblock-serve --aio threads, or rebuild with liburing-dev");
}

UringFileBackend::~UringFileBackend() = default;

bool UringFileBackend::available() { return false; }

std::uint64_t UringFileBackend::syncs_issued() const { return file_.syncs_issued(); }

void UringFileBackend::submit(const AsyncRequest&, AsyncCompletion) {
  throw Error(ENOSYS, "io_uring: libdblock was built without liburing");
}

void UringFileBackend::commit() {}

#endif  // DBLOCK_HAVE_URING

}  // namespace dblock
