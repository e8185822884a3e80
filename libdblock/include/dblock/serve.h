// Copyright (c) dblock authors.
#ifndef DBLOCK_SERVE_H_
#define DBLOCK_SERVE_H_

#include <functional>
#include <string>

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
  // Runs once the disk exists.  Default: print "serving /dev/NAME (...)" to
  // stdout.
  std::function<void(const DeviceInfo&)> on_started;
};

// The whole life of a simple server, for main() to return:
//   creates the device `config` (its size must fit in the backend; flush,
//   discard and write zeroes are turned on when the backend supports them),
//   serves it from `backend` until the device is destroyed (`dblockctl
//   destroy NAME`, or a signal, see ServeOptions) and returns 0.
// On an error it prints one line to stderr, saying what to do for the common
// mistakes (module not loaded, not root, name taken), destroys the device if
// it had created it, and returns 1.
// Thread-safety: call from one thread; it serves with one thread per queue.
int serve(const DeviceConfig& config, Backend& backend, const ServeOptions& options = {});

// The one-line message serve() prints for an error while creating `name`,
// with the fix for the common mistakes ("... (fix: ...)").
std::string explain_create_error(const std::exception& error, const std::string& name);

}  // namespace dblock

#endif  // DBLOCK_SERVE_H_
