// Copyright (c) dblock authors.
#include "dblock/serve.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
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
#include <vector>

#include <fmt/format.h>

#include "dblock/control_device.h"
#include "dblock/error.h"
#include "dblock/server.h"
#include "dblock/size.h"
#include "dblock/systemd_notify.h"
#include "dblock/unique_fd.h"
#include "ublk.h"

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

// How long a destroy retries while the disk is busy: udev probes a disk
// after writes (blkid), which under load can take seconds.
constexpr int kDestroyAttempts = 100;
constexpr std::chrono::milliseconds kDestroyRetry{200};

// Destroys the device, which makes the server see GONE and run() return.
// Over ublk: stops it (its disk goes; DEL_DEV follows once the server has
// closed its queues).
void destroy_retrying(const std::string& name, const Printer& out,
                      std::optional<std::uint32_t> ublk_id) {
  for (int attempt = 1;; ++attempt) {
    try {
      if (ublk_id) {
        internal::ublk_destroy(*ublk_id, false);
      } else {
        ControlDevice().destroy(name);
      }
      return;
    } catch (const Error& e) {
      if (e.code().value() == EBUSY && attempt < kDestroyAttempts) {
        std::this_thread::sleep_for(kDestroyRetry);
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
// policy do its requests wait for the next one instead of failing.  Over
// ublk that is user recovery (UBLK_F_USER_RECOVERY_REISSUE), set when the
// device was made: a server that closes /dev/ublkcN then leaves the disk
// quiesced, its I/O held, for the next one's START_USER_RECOVERY.
bool may_hand_over(const std::string& name, const Printer& out,
                   std::optional<std::uint32_t> ublk_id) {
  try {
    const DeviceInfo info =
        ublk_id ? internal::UblkControl().info(*ublk_id) : ControlDevice().info(name);
    if (info.config.recovery == Recovery::kWait) return true;
    out.complain(fmt::format(
        "not handing /dev/{} over: its recovery policy is 'fail', so its I/O would fail until "
        "the next server attaches (fix: {})",
        name,
        ublk_id ? "over ublk the policy is set when the device is made: serve it with "
                  "--recovery wait"
                : fmt::format("dblockctl set {} --recovery wait", name)));
  } catch (const std::exception& e) {
    out.complain(fmt::format("not handing /dev/{} over: {}", name, e.what()));
  }
  return false;
}

// Takes the signals of ServeOptions from a signalfd: they are blocked in
// every thread, so no handler runs in an arbitrary thread.  SIGUSR1 hands
// the device over (sets handed_over and stops the server); the others
// destroy it.  Stopped through an eventfd: it never wakes up for nothing.
class SignalWatcher {
 public:
  SignalWatcher(const sigset_t& signals, std::string name, std::optional<std::uint32_t> ublk_id,
                const Printer& out, Server& server, std::atomic<bool>& handed_over)
      : signals_(::signalfd(-1, &signals, SFD_CLOEXEC)), stop_(::eventfd(0, EFD_CLOEXEC)) {
    if (!signals_ || !stop_) {
      const int err = errno;
      throw Error(err, "watch signals: signalfd/eventfd");
    }
    thread_ = std::jthread([this, name = std::move(name), ublk_id, &out, &server, &handed_over] {
      watch(name, ublk_id, out, server, handed_over);
    });
  }
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;
  ~SignalWatcher() {
    const std::uint64_t one = 1;
    (void)!::write(stop_.get(), &one, sizeof(one));
  }

 private:
  void watch(const std::string& name, std::optional<std::uint32_t> ublk_id, const Printer& out,
             Server& server, std::atomic<bool>& handed_over) {
    for (;;) {
      pollfd fds[2] = {{signals_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        out.complain(Error(errno, "watch signals: poll").what());
        return;
      }
      if (fds[1].revents != 0) return;
      signalfd_siginfo info{};
      if (::read(signals_.get(), &info, sizeof(info)) != sizeof(info)) continue;
      const int sig = static_cast<int>(info.ssi_signo);
      if (sig == SIGUSR1) {
        if (!may_hand_over(name, out, ublk_id)) continue;
        out.say(fmt::format("got SIGUSR1, handing /dev/{} over to the next server", name));
        handed_over = true;
        server.request_stop();
        return;
      }
      out.say(fmt::format("got SIG{}, destroying /dev/{}", ::sigabbrev_np(sig), name));
      destroy_retrying(name, out, ublk_id);
      return;
    }
  }

  UniqueFd signals_;
  UniqueFd stop_;
  std::jthread thread_;  // last: joined first
};

// Whether a backend of `backend_size` bytes holds all of `device`; if not,
// says so in one line (what: "cannot attach to ...").
bool backend_holds(const DeviceInfo& device, std::uint64_t backend_size, const std::string& what,
                   const Printer& out) {
  if (backend_size >= device.config.size_bytes) return true;
  out.complain(fmt::format("{}: the device ({}) is larger than its backend ({})", what,
                           format_size(device.config.size_bytes), format_size(backend_size)));
  return false;
}

// The existing device `name`, if a new server may take it.
std::optional<DeviceInfo> find_unserved(const std::string& name, std::uint64_t backend_size,
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
  if (!backend_holds(device, backend_size, what, out)) return std::nullopt;
  return device;
}

// The existing ublk device /dev/`name` (a link to /dev/ublkbN), if a new
// server may take it over: made with the 'wait' policy, its server dead.
std::optional<DeviceInfo> find_unserved_ublk(const std::string& name, std::uint64_t backend_size,
                                             const Printer& out) {
  const std::string what = fmt::format("cannot attach to /dev/{}", name);
  const auto id = internal::ublk_id_of(name);
  if (!id) {
    out.complain(fmt::format("{}: no ublk device has that name, /dev/{} is no link to a "
                             "/dev/ublkbN (fix: check dblockctl list, or create it: leave out "
                             "--attach)",
                             what, name));
    return std::nullopt;
  }
  DeviceInfo device;
  try {
    device = internal::UblkControl().info(*id);
  } catch (const std::exception& e) {
    out.complain(fmt::format("{}: {}", what, e.what()));
    return std::nullopt;
  }
  device.config.name = name;
  // Until the kernel has quiesced the device, a dead server's pid stays.
  if (device.server_pid > 0 && !(::kill(device.server_pid, 0) < 0 && errno == ESRCH)) {
    out.complain(fmt::format("{}: it is served by pid {} (fix: a ublk device cannot be handed "
                             "over: stop that server, or serve with --transport dblock)",
                             what, device.server_pid));
    return std::nullopt;
  }
  if (device.config.recovery != Recovery::kWait) {
    out.complain(fmt::format("{}: its recovery policy is 'fail', so ublk failed its I/O and "
                             "cannot give it a new server (fix: dblockctl destroy {}, create it "
                             "with --recovery wait)",
                             what, name));
    return std::nullopt;
  }
  if (!backend_holds(device, backend_size, what, out)) return std::nullopt;
  return device;
}

}  // namespace

void destroy_device(const std::string& name, bool force) {
  if (const auto id = internal::ublk_id_of(name)) {
    // Its server, gone, could not remove the link it made.
    const std::string link = fmt::format("/dev/{}", name);
    struct stat st {};
    if (internal::ublk_destroy(*id, force) && ::lstat(link.c_str(), &st) == 0 &&
        S_ISLNK(st.st_mode)) {
      ::unlink(link.c_str());
    }
  } else {
    ControlDevice().destroy(name, force);
  }
}

void resize_device(const std::string& name, std::uint64_t new_size) {
  if (const auto id = internal::ublk_id_of(name)) {
    internal::resize_ublk(*id, new_size);
  } else {
    ControlDevice::Changes changes;
    changes.size_bytes = new_size;
    ControlDevice().change(name, changes);
  }
}

std::vector<DeviceInfo> list_devices() {
  const bool dblock = ::access(std::string(ControlDevice::kDefaultPath).c_str(), F_OK) == 0;
  const bool ublk = internal::ublk_present();
  std::vector<DeviceInfo> all;
  if (dblock || !ublk) all = ControlDevice().list();
  if (ublk) {
    for (DeviceInfo& d : internal::ublk_list()) all.push_back(std::move(d));
  }
  return all;
}

std::string explain_error(const std::exception& error) {
  const auto* system = dynamic_cast<const std::system_error*>(&error);
  if (system == nullptr) return error.what();
  switch (system->code().value()) {
    case ENOENT:
      if (::access(std::string(ControlDevice::kDefaultPath).c_str(), F_OK) == 0) break;
      return fmt::format("{}: the dblock kernel module is not loaded (fix: sudo modprobe dblock)",
                         error.what());
    case EACCES:
    case EPERM:
      return fmt::format("{}: only root may manage dblock devices (fix: run it as root, e.g. "
                         "with sudo)",
                         error.what());
    case ENODEV:
      return fmt::format("{}: no dblock device has that name or id (fix: dblockctl list shows "
                         "them)",
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
          "(fix: sudo modprobe dblock)",
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

namespace {

// What serve() needs to know of either kind of backend.
struct BackendTraits {
  std::uint64_t size = 0;
  bool flush = false;
  bool discard = false;
  bool write_zeroes = false;
  std::uint32_t discard_granularity = 0;
};

// serve() for both kinds: make_server builds the Server on the backend.
template <typename MakeServer>
int serve_device(const DeviceConfig& config, const BackendTraits& backend,
                 const ServeOptions& options, const MakeServer& make_server) {
  const Printer out(options.program);
  DeviceConfig wanted = config;
  // What the backend can do, the device offers (a write cache must be told
  // about flushes).
  wanted.flush = wanted.flush || backend.flush;
  wanted.discard = wanted.discard || backend.discard;
  wanted.write_zeroes = wanted.write_zeroes || backend.write_zeroes;
  if (wanted.discard && wanted.discard_granularity == 0) {
    wanted.discard_granularity = backend.discard_granularity;
  }
  Transport transport = options.transport;
  if (transport == Transport::kAuto && (options.attach || options.create_or_attach) &&
      internal::ublk_id_of(wanted.name)) {
    transport = Transport::kUblk;  // /dev/NAME is a ublk disk
  } else if (transport == Transport::kAuto) {
    // Without either control device, dblock.ko's error says what to load.
    const bool dblock = ::access(std::string(ControlDevice::kDefaultPath).c_str(), F_OK) == 0;
    transport = !dblock && internal::ublk_present() ? Transport::kUblk : Transport::kDblock;
  }
  const bool ublk = transport == Transport::kUblk;
  bool attach = options.attach;
  if (options.create_or_attach && !attach && ublk) {
    attach = internal::ublk_id_of(wanted.name).has_value();
  } else if (options.create_or_attach && !attach) {
    try {
      ControlDevice().info(wanted.name);
      attach = true;  // it exists: find_unserved() says whether it may be taken
    } catch (const std::system_error& e) {
      if (e.code().value() != ENODEV) {
        out.complain(explain_error(e));
        return 1;
      }
    }
  }
  // Over ublk, /dev/NAME is a link to the kernel's /dev/ublkbN.
  const std::string link = fmt::format("/dev/{}", wanted.name);
  if (!attach) {
    try {
      validate(wanted);
      if (backend.size < wanted.size_bytes) {
        throw std::invalid_argument(fmt::format("the device ({}) is larger than its backend ({})",
                                                format_size(wanted.size_bytes),
                                                format_size(backend.size)));
      }
      if (ublk && ::access(link.c_str(), F_OK) == 0) {
        throw std::invalid_argument(fmt::format(
            "cannot create {}: it exists (fix: choose another name)", link));
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
  std::optional<std::uint32_t> ublk_id;
  if (attach && ublk) {
    auto found = find_unserved_ublk(wanted.name, backend.size, out);
    if (!found) return 1;
    device = *found;
    ublk_id = device.id;
    try {
      internal::UblkControl().start_recovery(device.id);
    } catch (const std::exception& e) {
      out.complain(fmt::format("cannot attach to {}: {}", link, e.what()));
      return 1;
    }
  } else if (attach) {
    auto found = find_unserved(wanted.name, backend.size, out);
    if (!found) return 1;
    device = *found;
  } else if (ublk) {
    try {
      ublk_id = internal::UblkControl().add(wanted);
      device.config = wanted;
      device.id = *ublk_id;
    } catch (const std::exception& e) {
      out.complain(e.what());
      return 1;
    }
  } else {
    try {
      device = ControlDevice().create(wanted);
    } catch (const std::exception& e) {
      out.complain(explain_create_error(e, wanted.name));
      return 1;
    }
  }
  // A ublk device goes once its server has closed it: its link with it
  // (there already when taking over).
  bool linked = attach && ublk;
  const auto remove_ublk = [&] {
    if (!ublk_id) return;
    if (linked) ::unlink(link.c_str());
    try {
      internal::UblkControl().remove(*ublk_id);
    } catch (const std::exception& e) {
      out.complain(e.what());
    }
  };
  const std::string disk = ublk ? link : device.disk_path();

  std::atomic<bool> handed_over{false};
  bool ok = false;
  try {
    ServerOptions server_options;
    server_options.workers = options.workers;
    server_options.backend_description = options.backend_description;
    server_options.transport = transport;
    server_options.kernel_file_io = options.kernel_file_io;
    server_options.on_warning = [&out](const std::string& message) { out.complain(message); };
    const std::unique_ptr<Server> server = make_server(device.id, server_options);
    std::optional<SignalWatcher> watcher;
    if (watch) watcher.emplace(signals, device.config.name, ublk_id, out, *server, handed_over);
    const SystemdNotifier systemd;
    // The server takes `dblockctl resize` where the kernel's ublk can.
    const bool ublk_resizes = ublk && internal::UblkControl().can_resize();
    server->run([&](const DeviceInfo& live) {
      std::string where = live.disk_path();
      if (ublk && !linked) {
        if (::symlink(live.config.name.c_str(), link.c_str()) < 0) {
          const int err = errno;
          throw Error(err, fmt::format("link {} to {}", link, where));
        }
        linked = true;
      }
      if (ublk) where = fmt::format("{} -> {}, ublk", link, where);
      std::string backend = options.backend_description;
      if (!options.backend_details.empty()) {
        backend += (backend.empty() ? "" : ", ") + options.backend_details;
      }
      if (server->kernel_file_io()) {
        backend += (backend.empty() ? "" : "; ") + std::string("reads and writes by dblock.ko");
      }
      const std::string started = fmt::format(
          "{} {} ({}, {}-byte blocks, {} queues x {}{}{}){}", attach ? "took over" : "serving",
          where, format_size(live.config.size_bytes), live.config.block_size,
          live.config.queues, live.config.queue_depth, backend.empty() ? "" : "; ", backend,
          ublk && !ublk_resizes ? "; over ublk no online resize (Linux 6.14 has it)" : "");
      if (options.on_started) {
        options.on_started(live);
      } else {
        out.say(started);
      }
      if (const std::string error = systemd.notify("READY=1\nSTATUS=" + started); !error.empty()) {
        out.complain(error);
      }
    });
    if (const std::string error = systemd.notify("STOPPING=1"); !error.empty()) {
      out.complain(error);
    }
    ok = true;
  } catch (const std::exception& e) {
    out.complain(e.what());
  }
  // The server is gone (its queues closed): a ublk device can be deleted,
  // unless it was handed over (the kernel holds its disk, and /dev/NAME, for
  // the next server).
  if (ok) {
    if (!handed_over) remove_ublk();
    if (handed_over) {
      out.say(fmt::format("handed {} over, exiting", disk));
    } else {
      out.say(fmt::format("{} was destroyed, exiting", disk));
    }
    return 0;
  }
  if (attach) return 1;  // not ours to destroy: the next server may take it
  try {
    // Do not leave a device without a server.
    if (ublk_id) {
      internal::UblkControl().stop(*ublk_id);
    } else {
      ControlDevice().destroy(device.id);
    }
  } catch (const std::exception& cleanup) {
    out.complain(cleanup.what());
  }
  remove_ublk();
  return 1;
}

}  // namespace

int serve(const DeviceConfig& config, Backend& backend, const ServeOptions& options) {
  const BackendTraits traits{backend.size(), backend.supports_flush(), backend.supports_discard(),
                             backend.supports_write_zeroes(), 0};
  return serve_device(config, traits, options, [&](std::uint32_t id, const ServerOptions& o) {
    return std::make_unique<Server>(id, backend, o);
  });
}

int serve(const DeviceConfig& config, AsyncBackend& backend, const ServeOptions& options) {
  const BackendTraits traits{backend.size(), backend.supports_flush(), backend.supports_discard(),
                             backend.supports_write_zeroes(), backend.discard_granularity()};
  return serve_device(config, traits, options, [&](std::uint32_t id, const ServerOptions& o) {
    return std::make_unique<Server>(id, backend, o);
  });
}

}  // namespace dblock
