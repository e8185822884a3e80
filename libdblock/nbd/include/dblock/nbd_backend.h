// Copyright (c) dblock authors.
#ifndef DBLOCK_NBD_BACKEND_H_
#define DBLOCK_NBD_BACKEND_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dblock/async_backend.h"

namespace dblock {

// A device's data in an NBD export (nbdkit and its plugins, qemu-nbd's
// images, nbd-server), through libnbd's asynchronous API: every request is
// one NBD command whose reply answers it, so a queue keeps its whole depth
// in flight, spread over one or more connections.
//   read/write       NBD_CMD_READ / NBD_CMD_WRITE, straight from/to the
//                    queue's buffer area (no copy)
//   flush            NBD_CMD_FLUSH (a device with a volatile write cache
//                    only when the export can flush)
//   FUA write        NBD_CMD_FLAG_FUA where the export takes it, else the
//                    write and then a flush
//   discard          NBD_CMD_TRIM, when the export can trim
//   write zeroes     NBD_CMD_WRITE_ZEROES, when the export can zero; with
//                    NOUNMAP the command carries NBD_CMD_FLAG_NO_HOLE
//
// Construction connects every connection (libnbd's URIs: nbd://HOST[:PORT]/
// EXPORT, nbds:// for TLS, nbd+unix:///EXPORT?socket=PATH) and reads what
// the export advertises; errors name the cause with a fix (Error).
//
// When the connection breaks, the backend connects again with a backoff
// that doubles up to max_backoff.  Meanwhile, with hold_while_disconnected,
// requests in flight and new ones wait and are sent again once connected
// (the workload goes on; each is repeated whole, which for reads, writes,
// trims and zeroes of the same bytes is harmless), for at most hold_limit;
// without it they fail at once (EIO).
// Thread-safety: submit() from any number of threads.
class NbdBackend : public AsyncBackend {
 public:
  struct Options {
    std::string uri{};
    // More than one needs an export that advertises multi-conn (a flush on
    // one connection then covers writes on every one).
    unsigned connections = 1;
    // An export without multi-conn gets one connection instead of an error.
    bool fewer_connections_ok = false;
    // Open the export read-only even if it is writable.
    bool read_only = false;
    // While disconnected, hold requests (for at most hold_limit; nullopt:
    // until the server is back) rather than fail them.
    bool hold_while_disconnected = false;
    std::optional<std::chrono::milliseconds> hold_limit{};
    std::chrono::milliseconds max_backoff{2000};
    // Told of a lost connection, each reconnection and what was held.
    // Default: a line on stderr.
    std::function<void(const std::string&)> on_event{};
  };

  explicit NbdBackend(Options options);
  NbdBackend(const NbdBackend&) = delete;
  NbdBackend& operator=(const NbdBackend&) = delete;
  // Disconnects: only once no request is in flight.
  ~NbdBackend() override;

  std::uint64_t size() const override { return size_; }
  void submit(const AsyncRequest& request, AsyncCompletion completion) override;
  bool supports_flush() const override { return can_flush_; }
  bool supports_discard() const override { return can_trim_; }
  bool supports_write_zeroes() const override { return can_zero_; }

  // The export is read-only (or was opened so).
  bool read_only() const { return read_only_; }
  // The export's block size constraints (NBD_INFO_BLOCK_SIZE); 0 where the
  // server gave none.
  std::uint32_t minimum_block_size() const { return block_min_; }
  std::uint32_t preferred_block_size() const { return block_preferred_; }
  std::uint32_t maximum_request() const { return block_max_; }
  unsigned connections() const;
  const std::string& uri() const { return options_.uri; }
  // Connections made again after one broke, over the backend's life.
  std::uint64_t reconnections() const { return reconnections_.load(); }

  // One connection (nbd_backend.cc).
  class Connection;
  struct Op;

 private:
  Connection& pick();

  Options options_;
  std::uint64_t generation_;
  std::uint64_t size_ = 0;
  bool read_only_ = false;
  bool can_flush_ = false;
  bool can_fua_ = false;
  bool can_trim_ = false;
  bool can_zero_ = false;
  std::uint32_t block_min_ = 0;
  std::uint32_t block_preferred_ = 0;
  std::uint32_t block_max_ = 0;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::atomic<unsigned> next_{0};
  std::atomic<std::uint64_t> reconnections_{0};

  friend class Connection;
};

}  // namespace dblock

#endif  // DBLOCK_NBD_BACKEND_H_
