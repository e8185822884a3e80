// Copyright (c) dblock authors.
#include "dblock/serve.h"

#include <signal.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include <fmt/format.h>

#include "dblock/control_device.h"
#include "dblock/error.h"
#include "dblock/server.h"
#include "dblock/size.h"

namespace dblock {
namespace {

class Printer {
 public:
  explicit Printer(const std::string& program) : prefix_(program.empty() ? "" : program + ": ") {}

  void say(std::string_view message) const {
    fmt::print("{}{}\n", prefix_, message);
    std::fflush(stdout);  // callers often read our output through a pipe
  }
  void complain(std::string_view message) const {
    fmt::print(stderr, "{}{}\n", prefix_, message);
    std::fflush(stderr);
  }

 private:
  std::string prefix_;
};

// Turns the signals into destroying the device, which makes the server see
// GONE and run() return.  The signals are blocked in every thread and taken
// here with sigtimedwait(), so no handler runs in an arbitrary thread.
std::jthread watch_signals(const sigset_t& signals, std::string name, const Printer& out) {
  return std::jthread([signals, name = std::move(name), &out](std::stop_token stop) {
    const timespec tick{0, 200'000'000};
    while (!stop.stop_requested()) {
      const int sig = ::sigtimedwait(&signals, nullptr, &tick);
      if (sig < 0) continue;
      out.say(fmt::format("got SIG{}, destroying /dev/{}", ::sigabbrev_np(sig), name));
      // udev may hold the disk open for a moment (EBUSY): retry briefly.
      for (int attempt = 1;; ++attempt) {
        try {
          ControlDevice().destroy(name);
          return;
        } catch (const Error& e) {
          if (e.code().value() == EBUSY && attempt < 10) {
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            continue;
          }
          // Best effort: exiting closes the channel, and the kernel fails what is left.
          out.complain(e.what());
          std::_Exit(1);
        } catch (const std::exception& e) {
          out.complain(e.what());
          std::_Exit(1);
        }
      }
    }
  });
}

}  // namespace

std::string explain_create_error(const std::exception& error, const std::string& name) {
  const auto* system = dynamic_cast<const std::system_error*>(&error);
  if (system == nullptr) return error.what();
  const std::string what = fmt::format("cannot create /dev/{}", name);
  switch (system->code().value()) {
    case ENOENT:
      return fmt::format(
          "{}: {} does not exist, the dblock kernel module is not loaded "
          "(fix: sudo modprobe dblock, or sudo insmod dblock.ko in a build tree)",
          what, ControlDevice::kDefaultPath);
    case EACCES:
    case EPERM:
      return fmt::format(
          "{}: permission denied: only root may create dblock devices "
          "(fix: run it as root, e.g. with sudo)",
          what);
    case EEXIST:
      try {
        const DeviceInfo info = ControlDevice().info(name);
        return fmt::format(
            "{}: a dblock device with that name exists ({}) "
            "(fix: choose another name, or remove it: dblockctl destroy {})",
            what,
            info.server_pid != 0 ? fmt::format("served by pid {}", info.server_pid)
                                 : std::string("no server"),
            name);
      } catch (const std::exception&) {
        return fmt::format(
            "{}: a block device with that name exists, not a dblock one "
            "(fix: choose another name)",
            what);
      }
    case EPROTO:
      return fmt::format("{} (fix: use dblock.ko and the tools of the same release)", error.what());
    default:
      return error.what();
  }
}

int serve(const DeviceConfig& config, Backend& backend, const ServeOptions& options) {
  const Printer out(options.program);
  DeviceConfig wanted = config;
  // What the backend can do, the device offers (a write cache must be told
  // about flushes).
  wanted.flush = wanted.flush || backend.supports_flush();
  wanted.discard = wanted.discard || backend.supports_discard();
  wanted.write_zeroes = wanted.write_zeroes || backend.supports_write_zeroes();
  try {
    validate(wanted);
    if (backend.size() < wanted.size_bytes) {
      throw std::invalid_argument(fmt::format("the device ({}) is larger than its backend ({})",
                                              format_size(wanted.size_bytes),
                                              format_size(backend.size())));
    }
  } catch (const std::exception& e) {
    out.complain(e.what());
    return 1;
  }

  // Before any thread exists, so that all inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  if (options.destroy_on_signal) {
    for (const int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, sig);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  }

  DeviceInfo device;
  try {
    device = ControlDevice().create(wanted);
  } catch (const std::exception& e) {
    out.complain(explain_create_error(e, wanted.name));
    return 1;
  }

  try {
    Server server(device.id, backend);
    std::jthread watcher;
    if (options.destroy_on_signal) watcher = watch_signals(signals, wanted.name, out);
    server.run([&](const DeviceInfo& live) {
      if (options.on_started) {
        options.on_started(live);
        return;
      }
      out.say(fmt::format("serving {} ({}, {}-byte blocks, {} queues x {})", live.disk_path(),
                          format_size(live.config.size_bytes), live.config.block_size,
                          live.config.queues, live.config.queue_depth));
    });
    out.say(fmt::format("{} was destroyed, exiting", device.disk_path()));
    return 0;
  } catch (const std::exception& e) {
    out.complain(e.what());
    try {
      ControlDevice().destroy(device.id);  // do not leave a device without a server
    } catch (const std::exception& cleanup) {
      out.complain(cleanup.what());
    }
    return 1;
  }
}

}  // namespace dblock
