// Copyright (c) dblock authors.
// dblock-serve: create a dblock device and serve it from RAM, from nothing
// (null), from a file, from a Ceph RBD image or from an NBD export, until it is destroyed or
// SIGINT/SIGTERM/SIGHUP; or take over a device whose server died or handed
// it over (SIGUSR1).
//
//   dblock-serve NAME --backend ram|null|file:PATH|rbd:POOL/IMAGE|nbd://... [--size SIZE] [...]
//   dblock-serve NAME --backend file:PATH --attach      (the next server)
//   dblock-serve NAME --backend file:PATH --create-or-attach   (restarted by a supervisor)
//   dblock-serve --config /etc/dblock/NAME.conf        (systemd: dblock@NAME)
#include <signal.h>

#include <cstdio>
#include <deque>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "dblock/serve.h"
#include "serve_config.h"
#include "tool_cli.h"

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
  bool attach = false;
  bool create_or_attach = false;
  // Options given on the command line, by config key; they override the file.
  std::vector<std::pair<std::string, CLI::Option*>> given;
  std::deque<std::string> values;  // given[i]'s value (a deque: stable references)
  std::vector<std::pair<std::string, CLI::Option*>> flags;
  std::deque<bool> flag_values;  // flags[i]'s value
  const auto text_option = [&](const char* names, const char* key, const char* help) {
    values.emplace_back();
    given.emplace_back(key, app.add_option(names, values.back(), help));
  };
  const auto flag_option = [&](const char* names, const char* key, const char* help) {
    flag_values.push_back(false);
    flags.emplace_back(key, app.add_flag(names, flag_values.back(), help));
  };
  text_option("name", "name", "Disk name: /dev/NAME");
  text_option("-b,--backend", "backend",
              "ram (sparse, in memory), null (stores nothing, for benchmarks), "
              "file:PATH (a file or block device), rbd:POOL/IMAGE (a Ceph RBD image), or an NBD "
              "export: nbd://HOST[:PORT]/EXPORT, nbds://... (TLS), "
              "nbd+unix:///EXPORT?socket=PATH");
  text_option("-s,--size", "size",
              "Disk size, binary units (64M, 1G); default for file: the size of the part served, "
              "for rbd: the image's");
  text_option("--block-size", "block_size", "Logical block size (default 4096)");
  text_option("--queues", "queues", "Hardware queues (default 2)");
  text_option("--depth", "depth", "Requests in flight per queue (default 64)");
  text_option("--max-io", "max_io", "Largest request (default 256K)");
  text_option("--recovery", "recovery",
              "When this server goes away: fail (its I/O fails, the default) or wait (I/O is "
              "held for the next server, see --attach)");
  text_option("--grace", "grace",
              "With --recovery wait: how long I/O is held, e.g. 60s (default: never, i.e. forever)");
  text_option("--timeout", "timeout",
              "A request not answered in this time fails: e.g. 30s (the default), never");
  text_option("--workers", "workers",
              "Threads running the requests of a backend that may block (file): N, 0 (on the "
              "queue threads) or auto (the default: queues x depth, at most 32; none for ram "
              "and null)");
  text_option("--transport", "transport",
              "The kernel interface: dblock (dblock.ko), ublk (the kernel's ublk_drv, Linux "
              "6.5+; no --grace or --timeout; resize from 6.14) or auto (the default: dblock if "
              "/dev/dblockctl exists, else ublk)");
  flag_option("--read-only", "read_only", "Make the disk read-only (and open a file read-only)");
  flag_option("--mlock", "mlock",
              "Lock the server's memory (mlockall), for serving under memory pressure");
  flag_option("--direct-io", "direct_io",
              "file: open it with O_DIRECT, bypassing the page cache (the block size must be at "
              "least the alignment O_DIRECT needs there)");
  text_option("--aio", "aio",
              "file: how its requests run: io_uring, threads (see --workers) or auto (the "
              "default: with --direct-io on dblock.ko, reads and writes by the module on the "
              "requests' pages, like loop; else io_uring for --direct-io or a block device "
              "where io_uring is allowed, else threads)");
  text_option("--offset", "offset", "file: serve it from this byte on (binary units)");
  text_option("--size-limit", "size_limit",
              "file: serve at most this many bytes of it, from --offset (binary units)");
  text_option("--ceph-conf", "ceph_conf",
              "rbd: Ceph configuration file (default: librados' search)");
  text_option("--ceph-id", "ceph_id", "rbd: Ceph client id, client.ID (default admin)");
  text_option("--create-size", "create_size",
              "rbd: create the image with this size if it does not exist (64G, 1T)");
  text_option("--connect-timeout", "connect_timeout",
              "rbd: time to reach the cluster, whole seconds (default 15s)");
  text_option("--lock-timeout", "lock_timeout",
              "rbd: time to wait for the image's exclusive lock, e.g. from a dead server "
              "(default 60s)");
  flag_option("--rbd-cache", "rbd_cache",
              "rbd: enable librbd's client cache (writes acked before they reach the OSDs: a "
              "killed server loses them; safe only with --recovery fail)");
  text_option("--connections", "connections",
              "nbd: connections to the server, 1-64 or auto (the default: one per queue if the "
              "export allows multi-conn, else one)");
  auto* attach_flag = app.add_flag(
      "--attach", attach,
      "Serve the existing device NAME, left by a server that died or handed it over "
      "(SIGUSR1), instead of creating it; the device keeps its shape");
  app.add_flag("--create-or-attach", create_or_attach,
               "Attach (as --attach) if the device NAME exists, else create it: for a server "
               "that a supervisor restarts (dblock@.service)")
      ->excludes(attach_flag);
  app.add_option("-c,--config", config_path,
                 "Read settings from FILE: KEY=VALUE lines, KEY an option's long name with _ for "
                 "- (name, backend, size, block_size, ..., size_limit, rbd_cache; all but attach "
                 "and config); options override it");
  app.footer(
      "Example: dblock-serve scratch --backend ram --size 1G\n"
      "SIGINT, SIGTERM, SIGHUP destroy the device.  SIGUSR1 hands it over without failing a "
      "request (needs --recovery wait): the next server is started with --attach.");
  dblock::tool::add_version_flag(app);
  if (const auto done = dblock::tool::parse(app, argc, argv)) return *done;

  serve_tool::Plan plan;
  serve_tool::OpenedBackend backend;
  try {
    serve_tool::Settings settings;
    if (!config_path.empty()) settings = serve_tool::read_config_file(config_path);
    for (std::size_t i = 0; i < given.size(); ++i) {
      if (given[i].second->count() > 0) settings[given[i].first] = values[i];
    }
    for (std::size_t i = 0; i < flags.size(); ++i) {
      if (flags[i].second->count() > 0) settings[flags[i].first] = flag_values[i] ? "true" : "false";
    }
    if ((attach || create_or_attach) && settings["backend"] == "ram") {
      throw std::invalid_argument(fmt::format(
          "--{} with the ram backend would serve zeros in place of the device's data "
          "(use a file backend, or create a new device)",
          attach ? "attach" : "create-or-attach"));
    }
    plan = serve_tool::make_plan(settings);
  } catch (const std::exception& e) {
    return dblock::tool::usage_error(app, e.what());
  }
  try {
    if (plan.backend == serve_tool::BackendKind::kRbd) {
      // Before librados starts its threads, so that they inherit the mask and
      // serve() alone takes the signals it handles.
      sigset_t signals;
      sigemptyset(&signals);
      for (const int sig : {SIGINT, SIGTERM, SIGHUP, SIGUSR1}) sigaddset(&signals, sig);
      pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    }
    backend = serve_tool::open_backend(plan);
  } catch (const std::exception& e) {
    complain(e.what());
    return dblock::tool::kExitFailure;
  }
  dblock::ServeOptions options;
  options.program = kProg;
  options.attach = attach;
  options.create_or_attach = create_or_attach;
  options.transport = plan.transport;
  options.lock_memory = plan.lock_memory;
  options.workers = plan.workers;
  // --aio io_uring or threads: the server does the file's I/O as asked.
  options.kernel_file_io = plan.aio == serve_tool::Aio::kAuto;
  options.backend_description = backend.description;
  options.backend_details = backend.details;
  if (!backend.note.empty()) complain(backend.note);
  if (backend.async) return dblock::serve(plan.device, *backend.async, options);
  return dblock::serve(plan.device, *backend.sync, options);
}
