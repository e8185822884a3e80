// Copyright (c) dblock authors.
// dblock_sample_ramdisk: a RAM disk served from userspace through dblock.
//
//   dblock_sample_ramdisk        create /dev/dblockramdisk and serve it until
//                                it is destroyed (or SIGINT/SIGTERM)
//   dblock_sample_ramdisk -d     destroy it
#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "dblock/ram_backend.h"
#include "dblock/serve.h"
#include "dblock/size.h"
#include "tool_cli.h"

namespace {

constexpr std::string_view kProg = "dblock_sample_ramdisk";

void say(std::string_view message) {
  fmt::print("{}: {}\n", kProg, message);
  std::fflush(stdout);  // tests read our output through a pipe
}

void complain(std::string_view message) { fmt::print(stderr, "{}: {}\n", kProg, message); }

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
  // NAME as the other tools take it, or --name as the seed's sample did.
  auto* name_option =
      app.add_option("NAME", config.name, "Disk name: /dev/NAME")->capture_default_str();
  app.add_option("--name", config.name, "The same as NAME")->excludes(name_option);
  app.add_option("--size", size_text, "Disk size (binary units: 64M, 1G)")->capture_default_str();
  app.add_option("--block-size", block_size_text, "Logical block size")->capture_default_str();
  app.add_option("--queues", config.queues, "Hardware queues")->capture_default_str();
  app.add_option("--depth", config.queue_depth, "Requests in flight per queue")
      ->capture_default_str();
  app.add_option("--max-io", max_io_text, "Largest request")->capture_default_str();
  dblock::tool::add_version_flag(app);
  if (const auto done = dblock::tool::parse(app, argc, argv)) return *done;

  // Every setting is checked before anything is opened.
  try {
    config.size_bytes = dblock::parse_size(size_text);
    config.block_size = dblock::tool::parse_size32("--block-size", block_size_text);
    config.max_io_bytes = dblock::tool::parse_size32("--max-io", max_io_text);
    dblock::validate(config);
  } catch (const std::exception& e) {
    return dblock::tool::usage_error(app, e.what());
  }

  if (destroy) {
    try {
      dblock::destroy_device(config.name);
    } catch (const std::exception& e) {
      complain(dblock::explain_error(e));
      return dblock::tool::kExitFailure;
    }
    say(fmt::format("destroyed /dev/{}", config.name));
    return 0;
  }

  // serve() creates the device, serves it until it is destroyed (-d, or
  // SIGINT/SIGTERM/SIGHUP) and explains the common mistakes.
  dblock::RamBackend backend(config.size_bytes);
  dblock::ServeOptions options;
  options.program = kProg;
  options.on_started = [](const dblock::DeviceInfo& live) {
    say(fmt::format("serving {} ({}, {}-byte blocks, {} queues x {}) from RAM", live.disk_path(),
                    dblock::format_size(live.config.size_bytes), live.config.block_size,
                    live.config.queues, live.config.queue_depth));
  };
  return dblock::serve(config, backend, options);
}
