// Copyright (c) dblock authors.
#include "dblock/serve.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
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

// Destroys the device, which makes the server see GONE and run() return.
void destroy_device(const std::string& name, const Printer& out) {
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

// Whether the device may be left without a server: only under the "wait"
// policy do its requests wait for the next one instead of failing.
bool may_hand_over(const std::string& name, const Printer& out) {
  try {
    const DeviceInfo info = ControlDevice().info(name);
    if (info.config.recovery == Recovery::kWait) return true;
    out.complain(fmt::format(
        "not handing /dev/{} over: its recovery policy is 'fail', so its I/O would fail until "
        "the next server attaches (fix: dblockctl set {} --recovery wait)",
        name, name));
  } catch (const std::exception& e) {
    out.complain(fmt::format("not handing /dev/{} over: {}", name, e.what()));
  }
  return false;
}

// Takes the signals of ServeOptions with sigtimedwait(): they are blocked in
// every thread, so no handler runs in an arbitrary thread.  SIGUSR1 hands
// the device over (sets handed_over and stops the server); the others
// destroy it.
std::jthread watch_signals(const sigset_t& signals, std::string name, const Printer& out,
                           Server& server, std::atomic<bool>& handed_over) {
  return std::jthread([signals, name = std::move(name), &out, &server,
                       &handed_over](std::stop_token stop) {
    const timespec tick{0, 200'000'000};
    while (!stop.stop_requested()) {
      const int sig = ::sigtimedwait(&signals, nullptr, &tick);
      if (sig < 0) continue;
      if (sig == SIGUSR1) {
        if (!may_hand_over(name, out)) continue;
        out.say(fmt::format("got SIGUSR1, handing /dev/{} over to the next server", name));
        handed_over = true;
        server.request_stop();
        return;
      }
      out.say(fmt::format("got SIG{}, destroying /dev/{}", ::sigabbrev_np(sig), name));
      destroy_device(name, out);
      return;
    }
  });
}

// The existing device `name`, if a new server may take it.
std::optional<DeviceInfo> find_unserved(const std::string& name, const Backend& backend,
                                        const Printer& out) {
  const std::string what = fmt::format("cannot attach to /dev/{}", name);
  DeviceInfo device;
  try {
    device = ControlDevice().info(name);
  } catch (const std::system_error& e) {
    const int err = e.code().value();
    if (err == ENODEV) {
      out.complain(fmt::format("{}: no dblock device has that name (fix: check dblockctl list, "
                               "or create it: leave out --attach)",
                               what));
    } else {
      out.complain(explain_error(e));
    }
    return std::nullopt;
  }
  if (device.server_pid != 0) {
    out.complain(fmt::format(
        "{}: it is served by pid {} (fix: let that server hand it over: kill -USR1 {})", what,
        device.server_pid, device.server_pid));
    return std::nullopt;
  }
  if (backend.size() < device.config.size_bytes) {
    out.complain(fmt::format("{}: the device ({}) is larger than its backend ({})", what,
                             format_size(device.config.size_bytes),
                             format_size(backend.size())));
    return std::nullopt;
  }
  return device;
}

}  // namespace

std::string explain_error(const std::exception& error) {
  const auto* system = dynamic_cast<const std::system_error*>(&error);
  if (system == nullptr) return error.what();
  switch (system->code().value()) {
    case ENOENT:
      if (::access(std::string(ControlDevice::kDefaultPath).c_str(), F_OK) == 0) break;
      return fmt::format(
          "{}: the dblock kernel module is not loaded "
          "(fix: sudo modprobe dblock, or sudo insmod dblock.ko in a build tree)",
          error.what());
    case EACCES:
    case EPERM:
      return fmt::format("{}: only root may manage dblock devices (fix: run it as root, e.g. "
                         "with sudo)",
                         error.what());
    default:
      break;
  }
  return error.what();
}

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
  if (!options.attach) {
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
  }
  if (options.lock_memory && ::mlockall(MCL_CURRENT | MCL_FUTURE) < 0) {
    const int err = errno;
    out.complain(Error(err, "mlockall", err == ENOMEM || err == EPERM
                                            ? "raise RLIMIT_MEMLOCK or run as root"
                                            : "")
                     .what());
    return 1;
  }

  // Before any thread exists, so that all inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  if (options.destroy_on_signal) {
    for (const int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, sig);
  }
  if (options.handover_on_signal) sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  const bool watch = options.destroy_on_signal || options.handover_on_signal;

  DeviceInfo device;
  if (options.attach) {
    auto found = find_unserved(wanted.name, backend, out);
    if (!found) return 1;
    device = *found;
  } else {
    try {
      device = ControlDevice().create(wanted);
    } catch (const std::exception& e) {
      out.complain(explain_create_error(e, wanted.name));
      return 1;
    }
  }

  std::atomic<bool> handed_over{false};
  try {
    Server server(device.id, backend);
    std::jthread watcher;
    if (watch) watcher = watch_signals(signals, device.config.name, out, server, handed_over);
    server.run([&](const DeviceInfo& live) {
      if (options.on_started) {
        options.on_started(live);
        return;
      }
      out.say(fmt::format("{} {} ({}, {}-byte blocks, {} queues x {})",
                          options.attach ? "took over" : "serving", live.disk_path(),
                          format_size(live.config.size_bytes), live.config.block_size,
                          live.config.queues, live.config.queue_depth));
    });
    if (handed_over) {
      out.say(fmt::format("handed {} over, exiting", device.disk_path()));
    } else {
      out.say(fmt::format("{} was destroyed, exiting", device.disk_path()));
    }
    return 0;
  } catch (const std::exception& e) {
    out.complain(e.what());
    if (options.attach) return 1;  // not ours to destroy: the next server may take it
    try {
      ControlDevice().destroy(device.id);  // do not leave a device without a server
    } catch (const std::exception& cleanup) {
      out.complain(cleanup.what());
    }
    return 1;
  }
}

}  // namespace dblock
