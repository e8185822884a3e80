// Copyright (c) dblock authors.
#ifndef DBLOCK_URING_FILE_BACKEND_H_
#define DBLOCK_URING_FILE_BACKEND_H_

#include <cstdint>
#include <memory>

#include "dblock/async_backend.h"
#include "dblock/file_backend.h"

namespace dblock {

namespace detail {
struct UringRing;
}

// A FileBackend whose reads, writes and flushes go through io_uring: the
// queue thread only queues them, commit() starts a whole batch with one
// system call, and one completion thread answers them, so that a queue has
// its whole depth in flight without a thread per request.  What io_uring
// cannot do on a file (discard and zeroes: fallocate, BLKDISCARD,
// BLKZEROOUT) runs at once on the submitting thread, through the
// FileBackend, as do the rare remainders of short transfers (on the
// completion thread).  A FUA write is the write linked to an fdatasync.
// Served over ublk, whose queue threads wait on an io_uring of their own, it
// puts its SQEs in that ring instead: the queue thread submits them with its
// commits, in one system call, and answers them itself, as the kernel's own
// ublk servers do.
// The FileBackend is borrowed: it must outlive this.
// Needs libdblock built with liburing (available()), and a kernel and
// seccomp profile that allow io_uring (Docker's default profile does not):
// the constructor throws dblock::Error otherwise, and the FileBackend can
// still be served as a Backend on worker threads.
// Thread-safety: submit() and commit() from any thread.
class UringFileBackend final : public AsyncBackend {
 public:
  struct Options {
    // Submission queue entries (a power of two is used, at least this).
    unsigned entries = 256;
  };

  explicit UringFileBackend(FileBackend& file);
  UringFileBackend(FileBackend& file, const Options& options);
  UringFileBackend(const UringFileBackend&) = delete;
  UringFileBackend& operator=(const UringFileBackend&) = delete;
  ~UringFileBackend() override;

  // Whether this libdblock was built with liburing.
  static bool available();

  std::uint64_t size() const override { return file_.size(); }
  void submit(const AsyncRequest& request, AsyncCompletion completion) override;
  void commit() override;
  bool supports_flush() const override { return file_.supports_flush(); }
  bool supports_discard() const override { return file_.supports_discard(); }
  bool supports_write_zeroes() const override { return file_.supports_write_zeroes(); }
  void resize(std::uint64_t new_size) override { file_.resize(new_size); }
  std::optional<KernelFile> kernel_file() const override { return file_.kernel_file(); }

  FileBackend& file() const { return file_; }
  // fdatasync()s (flushes, FUA writes) that succeeded, here and in file().
  std::uint64_t syncs_issued() const;

 private:
  FileBackend& file_;
  std::unique_ptr<detail::UringRing> ring_;
};

}  // namespace dblock

#endif  // DBLOCK_URING_FILE_BACKEND_H_
