// Copyright (c) dblock authors.
// dblockctl: create, destroy, list and describe dblock devices.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (fmt 11 moved it here)
#include <nlohmann/json.hpp>

#include "dblock/control_device.h"
#include "dblock/serve.h"
#include "dblock/size.h"
#include "list_table.h"
#include "tool_cli.h"

namespace {

using nlohmann::json;

// A device named by the user: all digits means an id, anything else a name.
struct Target {
  std::string text;
  bool is_id = false;
  std::uint32_t id = 0;
};

Target parse_target(const std::string& text) {
  Target t{text};
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, t.id);
  t.is_id = !text.empty() && ec == std::errc() && ptr == end;
  if (!t.is_id && ec == std::errc::result_out_of_range) {
    throw std::invalid_argument(fmt::format("device id {} is out of range", text));
  }
  return t;
}

json to_json(const dblock::DeviceInfo& d) {
  const auto& c = d.config;
  return {
      {"id", d.id},
      {"name", c.name},
      {"disk", d.disk_path()},
      {"channel", d.channel_path()},
      {"size_bytes", c.size_bytes},
      {"logical_block_size", c.block_size},
      {"max_io_bytes", c.max_io_bytes},
      {"nr_queues", c.queues},
      {"queue_depth", c.queue_depth},
      {"flush", c.flush},
      {"read_only", c.read_only},
      {"discard", c.discard},
      {"write_zeroes", c.write_zeroes},
      {"physical_block_size", c.physical_block_size},
      {"io_opt_bytes", c.io_opt_bytes},
      {"discard_granularity", c.discard_granularity},
      {"max_discard_bytes", c.max_discard_bytes},
      {"max_write_zeroes_bytes", c.max_write_zeroes_bytes},
      {"timeout_ms", c.timeout_ms},
      {"recovery", dblock::to_string(c.recovery)},
      {"transport", dblock::to_string(d.transport)},
      {"grace_ms", c.grace_ms},
      {"stats",
       {{"reads", d.stats.reads},
        {"writes", d.stats.writes},
        {"flushes", d.stats.flushes},
        {"discards", d.stats.discards},
        {"write_zeroes", d.stats.write_zeroes},
        {"errors", d.stats.errors},
        {"timeouts", d.stats.timeouts},
        {"requeued", d.stats.requeued},
        {"rejected", d.stats.rejected},
        {"file_ios", d.stats.file_ios}}},
      {"state", dblock::to_string(d.state)},
      {"server_pid", d.server_pid},
      {"buffer_bytes", d.buffer_bytes},
      {"disk_major", d.disk_major},
      {"disk_minor", d.disk_minor},
      {"backend", d.backend},
  };
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += i + 1 < row.size() ? fmt::format("{:<{}}  ", row[i], widths[i]) : row[i];
    }
    fmt::print("{}\n", line);
  }
}

void print_info(const dblock::DeviceInfo& d) {
  const auto& c = d.config;
  print_table({
      {"id:", std::to_string(d.id)},
      {"name:", c.name},
      {"disk:", fmt::format("{} ({}:{})", d.disk_path(), d.disk_major, d.disk_minor)},
      {"channel:", d.channel_path()},
      {"state:", dblock::to_string(d.state)},
      {"size:", fmt::format("{} ({} bytes)", dblock::format_size(c.size_bytes), c.size_bytes)},
      {"block size:", std::to_string(c.block_size)},
      {"max I/O:", dblock::format_size(c.max_io_bytes)},
      {"queues:", fmt::format("{} x depth {}", c.queues, c.queue_depth)},
      {"physical block:", std::to_string(c.physical_block_size)},
      {"optimal I/O:", c.io_opt_bytes ? dblock::format_size(c.io_opt_bytes) : "-"},
      {"discard:", c.discard ? fmt::format("granularity {}, up to {}",
                                           dblock::format_size(c.discard_granularity),
                                           dblock::format_size(c.max_discard_bytes))
                             : "no"},
      {"write zeroes:",
       c.write_zeroes ? fmt::format("up to {}", dblock::format_size(c.max_write_zeroes_bytes))
                      : "no"},
      {"flags:", dblockctl::flags_text(c)},
      {"timeout:", dblock::format_duration_ms(c.timeout_ms)},
      {"recovery:", c.recovery == dblock::Recovery::kWait
                        ? fmt::format("wait ({})", c.grace_ms ? fmt::format("grace {} ms", c.grace_ms)
                                                              : std::string("forever"))
                        : std::string("fail")},
      {"server pid:", d.server_pid ? std::to_string(d.server_pid) : "- (none)"},
      {"backend:", d.backend.empty() ? "- (not described)" : d.backend},
      {"buffer:", fmt::format("{} per queue", dblock::format_size(d.buffer_bytes))},
      {"requests:", fmt::format("{} reads, {} writes, {} flushes, {} discards, {} write-zeroes{}",
                                d.stats.reads, d.stats.writes, d.stats.flushes, d.stats.discards,
                                d.stats.write_zeroes,
                                d.stats.file_ios ? fmt::format(" ({} reads and writes by dblock.ko "
                                                               "on the server's file)",
                                                               d.stats.file_ios)
                                                 : "")},
      {"problems:", fmt::format("{} errors, {} timeouts, {} requeued, {} answers rejected",
                                d.stats.errors, d.stats.timeouts, d.stats.requeued,
                                d.stats.rejected)},
  });
}

void print_json(const json& j) { fmt::print("{}\n", j.dump(2)); }

void print_resized(const std::string& name, bool as_json, const dblock::DeviceInfo& d) {
  as_json ? print_json(to_json(d))
          : fmt::print("resized device '{}' to {} ({} bytes)\n", name,
                       dblock::format_size(d.config.size_bytes), d.config.size_bytes);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Create, destroy, list and describe dblock devices (needs root)", "dblockctl"};
  app.require_subcommand(1);
  bool as_json = false;
  app.add_flag("--json", as_json, "Print JSON instead of text");

  auto* version_cmd = app.add_subcommand("version", "Show the module's ABI version and features");
  auto* list_cmd = app.add_subcommand("list", "List devices");
  auto* info_cmd = app.add_subcommand("info", "Describe one device");
  auto* create_cmd = app.add_subcommand("create", "Create a device (with no server attached)");
  auto* destroy_cmd = app.add_subcommand("destroy", "Destroy a device");
  std::string target_text;
  auto* resize_cmd = app.add_subcommand("resize", "Grow or shrink a device while in use");
  auto* set_cmd = app.add_subcommand("set", "Change a device's timeout or recovery policy");
  const std::vector<CLI::App*> commands{version_cmd, list_cmd,   info_cmd, create_cmd,
                                         destroy_cmd, resize_cmd, set_cmd};
  std::vector<std::string> command_names;
  for (auto* sub : commands) {
    sub->fallthrough();
    command_names.push_back(sub->get_name());
  }
  bool force = false;
  destroy_cmd->add_flag("--force", force,
                        "Destroy even while the disk is open or mounted: its I/O fails");
  std::string new_size_text;
  resize_cmd->add_option("name", target_text, "Device name")->required();
  resize_cmd->add_option("size", new_size_text, "New size, e.g. 2G")->required();
  std::string set_timeout_text, set_recovery_text, set_grace_text;
  set_cmd->add_option("name", target_text, "Device name")->required();
  set_cmd->add_option("--timeout", set_timeout_text, "Request timeout: e.g. 30s, 500ms, never");
  set_cmd->add_option("--recovery", set_recovery_text,
                      "When the server goes away: fail (its I/O) or wait (for a new server)");
  set_cmd->add_option("--grace", set_grace_text,
                      "With --recovery wait: how long to wait, e.g. 60s; never = forever");

  std::string columns_text;
  bool no_headings = false, raw = false;
  list_cmd
      ->add_option("-o,--output", columns_text,
                   fmt::format("Columns to print, comma-separated, any case; +COLS adds to the "
                               "default ones. Columns: {}",
                               dblockctl::column_names()))
      ->type_name("COLS");
  list_cmd->add_flag("-n,--noheadings", no_headings, "Do not print the headings");
  list_cmd->add_flag("-r,--raw", raw,
                     "One space between values, no alignment; spaces and other unsafe bytes "
                     "in a value as \\xHH");
  list_cmd->footer(
      "--json prints every field of every device, whatever -o, -n and -r say.");

  info_cmd->add_option("device", target_text, "Device name, or id if all digits")->required();
  destroy_cmd->add_option("device", target_text, "Device name, or id if all digits")->required();

  dblock::DeviceConfig config;
  config.queues = 2;  // as dblock-serve and the sample
  std::string size_text;
  std::string block_size_text = std::to_string(config.block_size);
  std::string max_io_text = std::to_string(config.max_io_bytes);
  create_cmd->add_option("name", config.name, "Disk name: /dev/NAME")->required();
  create_cmd->add_option("--size", size_text, "Size, e.g. 64M or 1G (binary units)")->required();
  create_cmd->add_option("--block-size", block_size_text, "Logical block size: 512..4096")
      ->capture_default_str();
  create_cmd->add_option("--queues", config.queues, "Hardware queues")->capture_default_str();
  create_cmd->add_option("--depth", config.queue_depth, "Requests in flight per queue")
      ->capture_default_str();
  create_cmd->add_option("--max-io", max_io_text, "Largest request, e.g. 256K")
      ->capture_default_str();
  create_cmd->add_flag("--read-only", config.read_only, "Make the disk read-only");
  create_cmd->add_flag("--flush", config.flush, "The server implements flush and FUA");
  create_cmd->add_flag("--discard", config.discard, "The server implements discard");
  create_cmd->add_flag("--write-zeroes", config.write_zeroes, "The server implements write zeroes");
  std::string timeout_text_in, recovery_text_in, grace_text_in;
  create_cmd->add_option("--timeout", timeout_text_in, "Request timeout: e.g. 30s, 500ms, never");
  create_cmd->add_option("--recovery", recovery_text_in, "fail (default) or wait");
  create_cmd->add_option("--grace", grace_text_in, "With --recovery wait: e.g. 60s; never = forever");

  dblock::tool::add_version_flag(app);
  // Before the command, only the global options: an unknown word or option
  // there is named as such, not reported as a missing command.
  const std::string use_commands =
      fmt::format("use {} or {}",
                  fmt::join(command_names.begin(), command_names.end() - 1, ", "),
                  command_names.back());
  bool have_command = false;
  for (int i = 1; i < argc && !have_command; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--json") continue;
    if (arg == "-h" || arg == "--help" || arg == "--version") {
      have_command = true;  // answered by the parser
    } else if (arg.starts_with('-')) {
      return dblock::tool::usage_error(app, fmt::format("unknown option '{}'", arg));
    } else if (std::find(command_names.begin(), command_names.end(), arg) == command_names.end()) {
      return dblock::tool::usage_error(app,
                                       fmt::format("unknown command '{}': {}", arg, use_commands));
    } else {
      have_command = true;
    }
  }
  if (!have_command) {
    return dblock::tool::usage_error(app, fmt::format("no command: {}", use_commands));
  }
  if (const auto done = dblock::tool::parse(app, argc, argv)) return *done;

  // Every argument is checked before the control device is opened: a typo
  // is reported as such, with or without the module.
  Target target;
  dblock::ControlDevice::Changes changes;
  std::vector<const dblockctl::Column*> columns = dblockctl::default_columns();
  try {
    if (*list_cmd && !columns_text.empty()) {
      columns = dblockctl::parse_columns(columns_text);
    } else if (*create_cmd) {
      config.size_bytes = dblock::parse_size(size_text);
      config.block_size = dblock::tool::parse_size32("--block-size", block_size_text);
      config.max_io_bytes = dblock::tool::parse_size32("--max-io", max_io_text);
      if (!timeout_text_in.empty()) config.timeout_ms = dblock::parse_duration_ms(timeout_text_in);
      if (!recovery_text_in.empty()) config.recovery = dblock::parse_recovery(recovery_text_in);
      if (!grace_text_in.empty()) config.grace_ms = dblock::parse_grace_ms(grace_text_in);
      dblock::validate(config);
    } else if (*resize_cmd) {
      changes.size_bytes = dblock::parse_size(new_size_text);
    } else if (*set_cmd) {
      if (!set_timeout_text.empty()) changes.timeout_ms = dblock::parse_duration_ms(set_timeout_text);
      if (!set_recovery_text.empty()) changes.recovery = dblock::parse_recovery(set_recovery_text);
      if (!set_grace_text.empty()) {
        if (!changes.recovery) throw std::invalid_argument("--grace goes with --recovery");
        changes.grace_ms = dblock::parse_grace_ms(set_grace_text);
      }
      if (!changes.timeout_ms && !changes.recovery) {
        throw std::invalid_argument("nothing to set: give --timeout and/or --recovery");
      }
    }
    target = parse_target(target_text);
  } catch (const std::exception& e) {
    return dblock::tool::usage_error(app, e.what());
  }

  try {
    // A ublk device (/dev/NAME links to /dev/ublkbN) needs no dblock.ko.
    if (*list_cmd) {
      const auto devices = dblock::list_devices();
      if (as_json) {
        json array = json::array();
        for (const auto& d : devices) array.push_back(to_json(d));
        print_json(array);
      } else {
        fmt::print("{}", dblockctl::render_table(columns, devices, {!no_headings, raw}));
      }
      return 0;
    }
    if (*destroy_cmd && !target.is_id) {
      dblock::destroy_device(target.text, force);
      if (as_json) {
        print_json({{"destroyed", json(target.text)}});
      } else {
        fmt::print("destroyed device '{}'\n", target.text);
      }
      return 0;
    }
    // A ublk device by name: anyone may look at it; its server resizes it
    // (the kernel's ublk tells a server nothing); the rest is dblock.ko's.
    if ((*info_cmd || *resize_cmd || *set_cmd) && !target.is_id) {
      for (const auto& d : dblock::list_devices()) {
        if (d.transport != dblock::Transport::kUblk ||
            (d.config.name != target.text && fmt::format("ublkb{}", d.id) != target.text)) {
          continue;
        }
        if (*info_cmd) {
          as_json ? print_json(to_json(d)) : print_info(d);
          return 0;
        }
        if (*resize_cmd) {
          dblock::resize_device(fmt::format("ublkb{}", d.id), *changes.size_bytes);
          for (const auto& now : dblock::list_devices()) {
            if (now.transport == d.transport && now.id == d.id) {
              print_resized(target.text, as_json, now);
            }
          }
          return 0;
        }
        throw std::invalid_argument(fmt::format(
            "'{}' is served over ublk (/dev/ublkb{}): dblockctl set goes with dblock.ko (fix: "
            "stop its server and serve it again with --timeout/--recovery, or with "
            "--transport dblock)",
            d.config.name, d.id));
      }
    }
    dblock::ControlDevice ctl;
    if (*version_cmd) {
      const dblock::ModuleVersion v = ctl.version();
      std::vector<std::string> features;
      if (v.has(DBLOCK_FEAT_FLUSH)) features.emplace_back("flush");
      if (v.has(DBLOCK_FEAT_READ_ONLY)) features.emplace_back("read-only");
      if (v.has(DBLOCK_FEAT_DISCARD)) features.emplace_back("discard");
      if (v.has(DBLOCK_FEAT_RECOVERY)) features.emplace_back("recovery");
      if (v.has(DBLOCK_FEAT_SET_PARAMS)) features.emplace_back("set-params");
      if (v.has(DBLOCK_FEAT_BACKEND_DESC)) features.emplace_back("backend-description");
      if (as_json) {
        print_json({{"abi_version", v.abi_version},
                    {"features", v.features},
                    {"feature_names", features},
                    {"userspace_abi_version", DBLOCK_ABI_VERSION}});
      } else {
        fmt::print("module ABI version {} (dblockctl speaks {})\nfeatures: {}\n", v.abi_version,
                   DBLOCK_ABI_VERSION, features.empty() ? "none" : fmt::to_string(fmt::join(features, ", ")));
      }
    } else if (*info_cmd) {
      const auto d = target.is_id ? ctl.info(target.id) : ctl.info(target.text);
      as_json ? print_json(to_json(d)) : print_info(d);
    } else if (*create_cmd) {
      const auto d = ctl.create(config);
      if (as_json) {
        print_json(to_json(d));
      } else {
        fmt::print("created device '{}' (id {}): its disk {} appears once a server attaches to {}\n",
                   d.config.name, d.id, d.disk_path(), d.channel_path());
      }
    } else if (*resize_cmd) {
      ctl.change(target.text, changes);
      print_resized(target.text, as_json, ctl.info(target.text));
    } else if (*set_cmd) {
      ctl.change(target.text, changes);
      const auto d = ctl.info(target.text);
      as_json ? print_json(to_json(d)) : print_info(d);
    } else if (*destroy_cmd) {
      ctl.destroy(target.id, force);
      if (as_json) {
        print_json({{"destroyed", json(target.id)}});
      } else {
        fmt::print("destroyed device {}\n", target.text);
      }
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "dblockctl: {}\n",
               *create_cmd ? dblock::explain_create_error(e, config.name)
                           : dblock::explain_error(e));
    return dblock::tool::kExitFailure;
  }
  return 0;
}
