// Copyright (c) dblock authors.
#ifndef DBLOCK_SERVE_H_
#define DBLOCK_SERVE_H_

#include <functional>
#include <string>
#include <vector>

#include "dblock/async_backend.h"
#include "dblock/backend.h"
#include "dblock/device.h"

namespace dblock {

// Options of serve().
// Thread-safety: plain value.
struct ServeOptions {
  // Prefix of the messages serve() prints ("PROGRAM: ..."); empty: none.
  std::string program;
  // Destroy the device on SIGINT, SIGTERM and SIGHUP, so that serve() returns
  // 0.  serve() blocks these signals in the calling thread before it starts
  // any thread; threads the application started earlier must block them too.
  bool destroy_on_signal = true;
  // Serve the existing device named config.name instead of creating it: a
  // device whose server died or handed it over (recovery policy "wait"),
  // with the held requests.  Its shape is the device's; config's is ignored.
  bool attach = false;
  // Attach (as `attach`) when a device named config.name exists, else create
  // it: what a server restarted by its supervisor (systemd's Restart=) does
  // to take back the device it left, with the filesystem still mounted.
  bool create_or_attach = false;
  // On SIGUSR1, hand the device over to the next server: answer what was
  // fetched, close the channel and return 0, leaving the device and its
  // queued requests to a server started with `attach`.  Refused (the signal
  // is reported and ignored) unless the device's recovery policy is "wait",
  // under which no request fails while no server is attached.
  bool handover_on_signal = true;
  // mlockall(MCL_CURRENT | MCL_FUTURE) before serving, so that the server
  // never waits for its own pages to be read back while the kernel reclaims
  // memory by writing to the device it serves.
  bool lock_memory = false;
  // Threads that run a blocking Backend's requests, shared by the queues: up
  // to this many requests are in flight.  -1: the default (none for a
  // backend that never blocks, else queues x depth, at most 32); 0: run each
  // request on its queue's thread.  Ignored for an AsyncBackend.
  int workers = -1;
  // What serves the disk, in a few words ("file:/srv/vol1.img",
  // "rbd:pool/image", "ram"): given to the kernel, which shows it in
  // `dblockctl list`, `dblockctl info` and /sys/block/NAME/dblock/backend
  // (ServerOptions::backend_description: shortened to kMaxBackendLength
  // bytes, keeping the end; skipped by a module without
  // DBLOCK_FEAT_BACKEND_DESC), and appended to the line printed once the
  // disk exists.
  std::string backend_description;
  // More about the backend for that line only ("O_DIRECT, io_uring").
  std::string backend_details;
  // The kernel interface (see Transport): kAuto takes dblock.ko when
  // /dev/dblockctl exists, else ublk.  Over ublk the disk is the kernel's
  // /dev/ublkbN, and serve() makes /dev/NAME a link to it; attaching, the
  // "wait" recovery policy, handing over and online resize are dblock.ko's
  // only (refused with a one-line error naming the fix).
  Transport transport = Transport::kAuto;
  // ServerOptions::kernel_file_io: dblock.ko does the reads and writes of a
  // backend that has a kernel_file() (a FileBackend with direct_io), on the
  // requests' pages; the line printed once the disk exists says so.
  bool kernel_file_io = true;
  // Runs once the disk exists.  Default: print "serving /dev/NAME (...)" to
  // stdout.
  std::function<void(const DeviceInfo&)> on_started;
};

// The whole life of a simple server, for main() to return:
//   creates the device `config` (its size must fit in the backend; flush,
//   discard and write zeroes are turned on when the backend supports them),
//   or attaches to it (ServeOptions::attach), serves it from `backend` until
//   the device is destroyed (`dblockctl destroy NAME`, or a signal, see
//   ServeOptions) or handed over, and returns 0.
// On an error it prints one line to stderr, saying what to do for the common
// mistakes (module not loaded, not root, name taken), destroys the device if
// it had created it, and returns 1.
// Under systemd (a Type=notify unit: $NOTIFY_SOCKET set), it says READY=1
// once the disk is live (created or taken over, partitions scanned) with a
// STATUS= line, and STOPPING=1 when the device goes or is handed over.
// Thread-safety: call from one thread; it serves with one thread per queue.
int serve(const DeviceConfig& config, Backend& backend, const ServeOptions& options = {});
// The same for a backend whose requests complete on their own (RbdBackend).
int serve(const DeviceConfig& config, AsyncBackend& backend, const ServeOptions& options = {});

// Destroys the device /dev/`name`, whichever kernel interface serves it: a
// ublk device (/dev/NAME links to /dev/ublkbN, as serve() makes it) is
// stopped, and its server deletes it and exits; any other goes through
// dblock.ko (ControlDevice::destroy).  Throws Error: EBUSY while its disk is
// mounted or held open, unless `force` (the file system then sees I/O
// errors); ENODEV or ENOENT if there is no such device.
void destroy_device(const std::string& name, bool force = false);

// Resizes the device /dev/`name` online, whichever kernel interface serves
// it: through dblock.ko (ControlDevice::change), or over ublk by asking its
// server, which grows its backend before the disk (Linux 6.14 and later:
// else Error EOPNOTSUPP, with the fix).  Throws Error or std::system_error
// with the server's reason when it refuses (ENOSPC: the backend cannot
// grow).
void resize_device(const std::string& name, std::uint64_t new_size);

// Every device of both kernel interfaces: dblock.ko's (when /dev/dblockctl
// exists), then ublk's (when /dev/ublk-control exists; DeviceInfo::transport
// says which).  With neither, throws ControlDevice's error (module not loaded).
std::vector<DeviceInfo> list_devices();

// The one-line message serve() prints for an error while creating `name`,
// with the fix for the common mistakes ("... (fix: ...)").
std::string explain_create_error(const std::exception& error, const std::string& name);

// The one-line message for any other error of a dblock tool: the fix for
// the common mistakes (module not loaded, not root) appended; other errors
// as they are.
std::string explain_error(const std::exception& error);

}  // namespace dblock

#endif  // DBLOCK_SERVE_H_
