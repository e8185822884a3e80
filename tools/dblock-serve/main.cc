// Copyright (c) dblock authors.
// dblock-serve: create a dblock device and serve it from RAM, from nothing
// (null) or from a file, until it is destroyed or SIGINT/SIGTERM/SIGHUP; or
// take over a device whose server died or handed it over (SIGUSR1).
//
//   dblock-serve NAME --backend ram|null|file:PATH [--size SIZE] [...]
//   dblock-serve NAME --backend file:PATH --attach      (the next server)
//   dblock-serve --config /etc/dblock/NAME.conf        (systemd: dblock@NAME)
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "dblock/serve.h"
#include "serve_config.h"

namespace {

constexpr std::string_view kProg = "dblock-serve";

void complain(std::string_view message) { fmt::print(stderr, "{}: {}\n", kProg, message); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Create a dblock device /dev/NAME and serve it until it is destroyed "
      "(dblockctl destroy NAME) or SIGINT/SIGTERM/SIGHUP.  Needs root and dblock.ko.",
      std::string(kProg)};
  std::string config_path;
  bool read_only = false, lock_memory = false, attach = false;
  // Options given on the command line, by config key; they override the file.
  std::vector<std::pair<std::string, CLI::Option*>> given;
  std::vector<std::string> values(11);
  const auto text_option = [&](const char* flags, const char* key, std::string& into,
                               const char* help) {
    given.emplace_back(key, app.add_option(flags, into, help));
  };
  text_option("name", "name", values[0], "Disk name: /dev/NAME");
  text_option("-b,--backend", "backend", values[1],
              "ram (sparse, in memory), null (stores nothing, for benchmarks), "
              "or file:PATH (a file or block device)");
  text_option("-s,--size", "size", values[2],
              "Disk size, binary units (64M, 1G); default for file: the file's size");
  text_option("--block-size", "block_size", values[3], "Logical block size (default 4096)");
  text_option("--queues", "queues", values[4], "Hardware queues (default 2)");
  text_option("--depth", "depth", values[5], "Requests in flight per queue (default 64)");
  text_option("--max-io", "max_io", values[6], "Largest request (default 256K)");
  text_option("--recovery", "recovery", values[7],
              "When this server goes away: fail (its I/O fails, the default) or wait (I/O is "
              "held for the next server, see --attach)");
  text_option("--grace", "grace", values[8],
              "With --recovery wait: how long I/O is held, e.g. 60s (default: never, i.e. forever)");
  text_option("--timeout", "timeout", values[9],
              "A request not answered in this time fails: e.g. 30s (the default), never");
  CLI::Option* read_only_opt =
      app.add_flag("--read-only", read_only, "Make the disk read-only (and open a file read-only)");
  CLI::Option* mlock_opt = app.add_flag(
      "--mlock", lock_memory, "Lock the server's memory (mlockall), for serving under memory pressure");
  app.add_flag("--attach", attach,
               "Serve the existing device NAME, left by a server that died or handed it over "
               "(SIGUSR1), instead of creating it; the device keeps its shape");
  app.add_option("-c,--config", config_path,
                 "Read settings from FILE: KEY=VALUE lines with keys name, backend, size, "
                 "block_size, queues, depth, max_io, read_only, recovery, grace, timeout, mlock; "
                 "options override it");
  app.footer(
      "Example: dblock-serve scratch --backend ram --size 1G\n"
      "SIGINT, SIGTERM, SIGHUP destroy the device.  SIGUSR1 hands it over without failing a "
      "request (needs --recovery wait): the next server is started with --attach.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    complain(fmt::format("{} (see --help)", e.what()));
    return 1;
  }

  serve_tool::Plan plan;
  std::unique_ptr<dblock::Backend> backend;
  try {
    serve_tool::Settings settings;
    if (!config_path.empty()) settings = serve_tool::read_config_file(config_path);
    for (std::size_t i = 0; i < given.size(); ++i) {
      if (given[i].second->count() > 0) settings[given[i].first] = values[i];
    }
    if (read_only_opt->count() > 0) settings["read_only"] = read_only ? "true" : "false";
    if (mlock_opt->count() > 0) settings["mlock"] = lock_memory ? "true" : "false";
    if (attach && settings["backend"] == "ram") {
      throw std::invalid_argument(
          "--attach with the ram backend would serve zeros in place of the device's data "
          "(use a file backend, or create a new device)");
    }
    plan = serve_tool::make_plan(settings);
    backend = serve_tool::open_backend(plan);
  } catch (const std::exception& e) {
    complain(e.what());
    return 1;
  }
  dblock::ServeOptions options;
  options.program = kProg;
  options.attach = attach;
  options.lock_memory = plan.lock_memory;
  return dblock::serve(plan.device, *backend, options);
}
