// Copyright (c) dblock authors.
// dblock_sample_ramdisk: a RAM disk served from userspace through dblock.
//
//   dblock_sample_ramdisk        create /dev/dblockramdisk and serve it until
//                                it is destroyed (or SIGINT/SIGTERM)
//   dblock_sample_ramdisk -d     destroy it
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "dblock/control_device.h"
#include "dblock/error.h"
#include "dblock/ram_backend.h"
#include "dblock/server.h"
#include "dblock/size.h"

namespace {

constexpr std::string_view kProg = "dblock_sample_ramdisk";

void say(std::string_view message) {
  fmt::print("{}: {}\n", kProg, message);
  std::fflush(stdout);  // tests read our output through a pipe
}

void complain(std::string_view message) { fmt::print(stderr, "{}: {}\n", kProg, message); }

// Turns SIGINT/SIGTERM/SIGHUP into destroying the device, which makes the
// server see GONE and main() return normally.  The signals are blocked in
// every thread and taken here with sigtimedwait(), so no handler runs in
// an arbitrary thread.
std::jthread watch_signals(const sigset_t& signals, std::string name) {
  return std::jthread([signals, name = std::move(name)](std::stop_token stop) {
    const timespec tick{0, 200'000'000};
    while (!stop.stop_requested()) {
      const int sig = ::sigtimedwait(&signals, nullptr, &tick);
      if (sig < 0) continue;
      say(fmt::format("got {}, destroying /dev/{}", ::sigabbrev_np(sig), name));
      // udev may hold the disk open for a moment (EBUSY): retry briefly.
      for (int attempt = 1;; ++attempt) {
        try {
          dblock::ControlDevice().destroy(name);
          return;
        } catch (const dblock::Error& e) {
          if (e.code().value() == EBUSY && attempt < 10) {
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            continue;
          }
          // Best effort: exiting closes the channel, and the kernel fails what is left.
          complain(e.what());
          std::_Exit(1);
        } catch (const std::exception& e) {
          complain(e.what());
          std::_Exit(1);
        }
      }
    }
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Serve a RAM disk through dblock (needs root and dblock.ko)", std::string(kProg)};
  dblock::DeviceConfig config;
  config.name = "dblockramdisk";
  config.queues = 2;
  config.queue_depth = 64;
  config.max_io_bytes = 256 * 1024;
  config.block_size = 4096;
  config.flush = true;
  bool destroy = false;
  std::string size_text = "256M";
  std::string block_size_text = "4096";
  std::string max_io_text = "256K";
  app.add_flag("-d,--destroy", destroy, "Destroy the device and exit");
  app.add_option("--name", config.name, "Disk name: /dev/NAME")->capture_default_str();
  app.add_option("--size", size_text, "Disk size (binary units: 64M, 1G)")->capture_default_str();
  app.add_option("--block-size", block_size_text, "Logical block size")->capture_default_str();
  app.add_option("--queues", config.queues, "Hardware queues")->capture_default_str();
  app.add_option("--depth", config.queue_depth, "Requests in flight per queue")
      ->capture_default_str();
  app.add_option("--max-io", max_io_text, "Largest request")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    complain(fmt::format("{} (see --help)", e.what()));
    return 1;
  }

  try {
    if (destroy) {
      dblock::ControlDevice().destroy(config.name);
      say(fmt::format("destroyed /dev/{}", config.name));
      return 0;
    }
    config.size_bytes = dblock::parse_size(size_text);
    config.block_size = static_cast<std::uint32_t>(dblock::parse_size(block_size_text));
    config.max_io_bytes = static_cast<std::uint32_t>(dblock::parse_size(max_io_text));
    dblock::validate(config);
  } catch (const std::exception& e) {
    complain(e.what());
    return 1;
  }

  // Before any thread exists, so that all inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  for (const int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, sig);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  dblock::RamBackend backend(config.size_bytes);
  dblock::DeviceInfo device;
  try {
    device = dblock::ControlDevice().create(config);
  } catch (const std::exception& e) {
    complain(e.what());
    return 1;
  }

  try {
    dblock::Server server(device.id, backend);
    std::jthread watcher = watch_signals(signals, config.name);
    server.run([&](const dblock::DeviceInfo& live) {
      say(fmt::format("serving {} ({}, {}-byte blocks, {} queues x {}) from RAM", live.disk_path(),
                      dblock::format_size(live.config.size_bytes), live.config.block_size,
                      live.config.queues, live.config.queue_depth));
    });
    say(fmt::format("{} was destroyed, exiting", device.disk_path()));
    return 0;
  } catch (const std::exception& e) {
    complain(e.what());
    try {
      dblock::ControlDevice().destroy(device.id);  // do not leave a device without a server
    } catch (const std::exception& cleanup) {
      complain(cleanup.what());
    }
    return 1;
  }
}
