// Copyright (c) dblock authors.
// A queue thread's io_uring lent to the backend it runs requests for.
//
// Over ublk a queue thread waits on an io_uring of its own (its FETCH and
// COMMIT_AND_FETCH commands).  A backend that does its I/O through io_uring
// (UringFileBackend) puts its SQEs in that ring instead of its own when the
// queue thread lends it: they go to the kernel with the queue's next
// submission, in the same system call as the commits, and their CQEs come
// back to the queue thread, which completes the requests itself.  That is
// how the kernel's own ublk servers work (kublk's loop target), and it saves
// per batch a wake-up of a completion thread, a kick and a wake-up of the
// queue thread.
#ifndef DBLOCK_SRC_LENT_RING_H_
#define DBLOCK_SRC_LENT_RING_H_

#include <cstdint>

struct io_uring;
struct io_uring_cqe;

namespace dblock::internal {

struct LentRing {
  io_uring* ring = nullptr;
  // Set by the backend whose SQEs are in the ring; called on the queue
  // thread with each CQE whose user_data has kLentBit.
  void (*complete)(std::uint64_t user_data, const io_uring_cqe& cqe) = nullptr;
  // CQEs of lent SQEs still to come.
  unsigned inflight = 0;
};

// In the user_data of every lent SQE.  Above any user-space address of the
// architectures Linux runs on (at most 57 bits), and never all ones (the
// queue's kick).
inline constexpr std::uint64_t kLentBit = std::uint64_t{1} << 62;

// The ring this thread lends, or nullptr: set once by a ublk queue thread.
inline thread_local LentRing* lent_ring = nullptr;

}  // namespace dblock::internal

#endif  // DBLOCK_SRC_LENT_RING_H_
