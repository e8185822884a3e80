// Copyright (c) dblock authors.
// dblock-rbd: serve a dblock device from a Ceph RBD image (librbd, async).
//
//   dblock-rbd --conf /etc/ceph/ceph.conf --pool rbd --image vol --name rbdvol
//
// Creates /dev/NAME the size of the image (or takes over an existing device
// NAME that has no server: DBLOCK_RECOVERY_WAIT) and serves it until the
// device is destroyed or SIGINT/SIGTERM/SIGHUP (which destroy it, unless
// --keep-device).
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "dblock/async_server.h"
#include "dblock/control_device.h"
#include "dblock/error.h"
#include "dblock/rbd_backend.h"
#include "dblock/size.h"

namespace {

constexpr std::string_view kProg = "dblock-rbd";

void say(std::string_view message) {
  fmt::print("{}: {}\n", kProg, message);
  std::fflush(stdout);
}

void complain(std::string_view message) { fmt::print(stderr, "{}: {}\n", kProg, message); }

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool destroy_device(const std::string& name) {
  for (int attempt = 1;; ++attempt) {
    try {
      dblock::ControlDevice().destroy(name);
      return true;
    } catch (const dblock::Error& e) {
      // udev probes the disk after writes: under load that can take a while.
      if (e.code().value() == EBUSY && attempt < 100) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        continue;
      }
      complain(e.what());
      return false;
    } catch (const std::exception& e) {
      complain(e.what());
      return false;
    }
  }
}

std::optional<dblock::DeviceInfo> find_device(dblock::ControlDevice& ctl, const std::string& name) {
  for (const auto& d : ctl.list()) {
    if (d.config.name == name) return d;
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  const auto t_start = Clock::now();
  CLI::App app{"Serve a dblock device from a Ceph RBD image (needs root, dblock.ko, librbd)",
               std::string(kProg)};
  dblock::RbdBackend::Options rbd;
  dblock::DeviceConfig config;
  config.queues = 2;
  config.queue_depth = 64;
  config.block_size = 4096;
  std::string create_size_text, max_io_text = "512K", recovery_text = "wait";
  unsigned connect_timeout = 15, lock_timeout = 60, grace_s = 0, io_timeout_s = 0;
  bool keep_device = false, cache = false;
  app.add_option("--conf", rbd.conf_file, "Ceph configuration file (default: librados' search)");
  app.add_option("--id", rbd.client_id, "Ceph client id (client.ID)")->capture_default_str();
  app.add_option("--pool", rbd.pool, "RADOS pool")->capture_default_str();
  app.add_option("--image", rbd.image, "RBD image")->required();
  app.add_option("--name", config.name, "Disk name: /dev/NAME")->required();
  app.add_option("--create-size", create_size_text,
                 "Create the image with this size if it does not exist (64G, 1T)");
  app.add_option("--queues", config.queues, "Hardware queues")->capture_default_str();
  app.add_option("--depth", config.queue_depth, "Requests in flight per queue")
      ->capture_default_str();
  app.add_option("--max-io", max_io_text, "Largest request")->capture_default_str();
  app.add_option("--connect-timeout", connect_timeout, "Seconds to reach the cluster")
      ->capture_default_str();
  app.add_option("--lock-timeout", lock_timeout,
                 "Seconds to wait for the image's exclusive lock (e.g. from a dead server)")
      ->capture_default_str();
  app.add_option("--recovery", recovery_text,
                 "When this server dies: 'wait' holds I/O for a new server, 'fail' fails it")
      ->capture_default_str();
  app.add_option("--grace", grace_s, "With --recovery wait: seconds to hold I/O (0: forever)")
      ->capture_default_str();
  app.add_option("--io-timeout", io_timeout_s, "Seconds before a request fails (0: 30 s)")
      ->capture_default_str();
  app.add_flag("--cache", cache,
               "Enable librbd's client cache (writes acked before they reach the OSDs: a killed "
               "server loses them; safe only with --recovery fail)");
  app.add_flag("--keep-device", keep_device,
               "On SIGINT/SIGTERM/SIGHUP stop serving but keep the device (a new server takes "
               "it over)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    complain(fmt::format("{} (see --help)", e.what()));
    return 1;
  }

  try {
    dblock::validate_name(config.name);
    if (!create_size_text.empty()) rbd.create_size = dblock::parse_size(create_size_text);
    config.max_io_bytes = static_cast<std::uint32_t>(dblock::parse_size(max_io_text));
    config.recovery = dblock::parse_recovery(recovery_text);
    config.grace_ms = grace_s * 1000;
    config.timeout_ms = io_timeout_s * 1000;
  } catch (const std::exception& e) {
    complain(e.what());
    return 1;
  }
  rbd.connect_timeout = std::chrono::seconds(connect_timeout);
  rbd.lock_timeout = std::chrono::seconds(lock_timeout);
  rbd.cache = cache;

  // Before librados starts its threads, so that all inherit the mask and
  // the signals are taken only by the watcher below.
  sigset_t signals;
  sigemptyset(&signals);
  for (const int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, sig);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // The cluster first: a device is created only once its data is reachable.
  std::optional<dblock::RbdBackend> backend;
  try {
    backend.emplace(rbd);
  } catch (const std::exception& e) {
    complain(e.what());
    return 1;
  }
  const double lock_s = std::chrono::duration<double>(backend->lock_wait()).count();
  say(fmt::format("{} image {} ({}), connected in {:.1f} s{}", backend->created() ? "created" : "opened",
                  backend->spec(), dblock::format_size(backend->size()), seconds_since(t_start),
                  lock_s >= 0.5 ? fmt::format(" (waited {:.1f} s for the exclusive lock)", lock_s)
                                : ""));

  dblock::DeviceInfo device;
  bool created = false;
  try {
    dblock::ControlDevice ctl;
    const dblock::ModuleVersion v = ctl.version();
    config.size_bytes = backend->size() / config.block_size * config.block_size;
    if (auto existing = find_device(ctl, config.name)) {
      if (existing->server_pid != 0) {
        throw dblock::Error(EBUSY, fmt::format("take over device '{}'", config.name),
                            fmt::format("it is served by pid {}", existing->server_pid));
      }
      if (existing->config.size_bytes > backend->size()) {
        throw dblock::Error(EINVAL, fmt::format("take over device '{}'", config.name),
                            fmt::format("the device has {} bytes, image {} only {}",
                                        existing->config.size_bytes, backend->spec(),
                                        backend->size()));
      }
      device = *existing;
    } else {
      if (config.size_bytes == 0) {
        throw dblock::Error(EINVAL, "image " + backend->spec() + " is smaller than one block");
      }
      config.flush = backend->supports_flush();
      if (v.has(DBLOCK_FEAT_DISCARD)) {
        config.discard = backend->supports_discard();
        config.discard_granularity = backend->discard_granularity();
        config.write_zeroes = backend->supports_write_zeroes();
      }
      if (!v.has(DBLOCK_FEAT_RECOVERY) && config.recovery != dblock::Recovery::kFail) {
        complain("this dblock.ko has no recovery policies: using 'fail'");
        config.recovery = dblock::Recovery::kFail;
        config.grace_ms = 0;
      }
      device = ctl.create(config);
      created = true;
    }
  } catch (const std::exception& e) {
    complain(e.what());
    return 1;
  }

  // Whether a signal asked us to stop (and whether that destroys the device).
  std::atomic<bool> signalled{false};
  std::atomic<bool> destroy_failed{false};
  try {
    dblock::AsyncServer server(device.id, *backend);
    std::jthread watcher([&](std::stop_token stop) {
      const timespec tick{0, 200'000'000};
      while (!stop.stop_requested()) {
        const int sig = ::sigtimedwait(&signals, nullptr, &tick);
        if (sig < 0) continue;
        signalled = true;
        if (keep_device) {
          say(fmt::format("got {}, leaving /dev/{} to a new server", ::sigabbrev_np(sig),
                          config.name));
          server.request_stop();
        } else {
          say(fmt::format("got {}, destroying /dev/{}", ::sigabbrev_np(sig), config.name));
          if (!destroy_device(config.name)) {
            destroy_failed = true;
            server.request_stop();
          }
        }
        return;
      }
    });
    server.run([&](const dblock::DeviceInfo& live) {
      const auto& c = live.config;
      say(fmt::format("serving {} ({}, {} queues x {}, max I/O {}, recovery {}) from rbd {}{}, "
                      "{:.1f} s after start",
                      live.disk_path(), dblock::format_size(c.size_bytes), c.queues, c.queue_depth,
                      dblock::format_size(c.max_io_bytes), dblock::to_string(c.recovery),
                      backend->spec(), server.took_over() ? " (took over)" : "",
                      seconds_since(t_start)));
    });
    watcher.request_stop();
    say(fmt::format("stopped: {} requests served, {} answers refused by the kernel",
                    server.submitted(), server.rejected_completions()));
    return destroy_failed ? 1 : 0;
  } catch (const std::exception& e) {
    complain(e.what());
    // Do not leave a device of ours without a server, unless it waits for one.
    if (created && config.recovery == dblock::Recovery::kFail && !signalled) {
      destroy_device(config.name);
    }
    return 1;
  }
}
