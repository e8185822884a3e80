// Copyright (c) dblock authors.
// dblockctl: create, destroy, list and describe dblock devices.
#include <charconv>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "dblock/control_device.h"
#include "dblock/size.h"

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

std::string flags_text(const dblock::DeviceConfig& c) {
  std::vector<std::string> flags;
  if (c.flush) flags.emplace_back("flush");
  if (c.read_only) flags.emplace_back("read-only");
  return flags.empty() ? "-" : fmt::format("{}", fmt::join(flags, ","));
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
      {"state", dblock::to_string(d.state)},
      {"server_pid", d.server_pid},
      {"buffer_bytes", d.buffer_bytes},
      {"disk_major", d.disk_major},
      {"disk_minor", d.disk_minor},
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
      {"flags:", flags_text(c)},
      {"server pid:", d.server_pid ? std::to_string(d.server_pid) : "- (none)"},
      {"buffer:", fmt::format("{} per queue", dblock::format_size(d.buffer_bytes))},
  });
}

void print_list(const std::vector<dblock::DeviceInfo>& devices) {
  std::vector<std::vector<std::string>> rows = {
      {"ID", "NAME", "SIZE", "BLOCK", "QUEUES", "DEPTH", "MAX-IO", "FLAGS", "STATE", "SERVER",
       "DISK"}};
  for (const auto& d : devices) {
    const auto& c = d.config;
    rows.push_back({std::to_string(d.id), c.name, dblock::format_size(c.size_bytes),
                    std::to_string(c.block_size), std::to_string(c.queues),
                    std::to_string(c.queue_depth), dblock::format_size(c.max_io_bytes),
                    flags_text(c), dblock::to_string(d.state),
                    d.server_pid ? std::to_string(d.server_pid) : "-",
                    fmt::format("{}:{}", d.disk_major, d.disk_minor)});
  }
  print_table(rows);
}

void print_json(const json& j) { fmt::print("{}\n", j.dump(2)); }

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
  for (auto* sub : {version_cmd, list_cmd, info_cmd, create_cmd, destroy_cmd}) sub->fallthrough();

  std::string target_text;
  info_cmd->add_option("device", target_text, "Device name, or id if all digits")->required();
  destroy_cmd->add_option("device", target_text, "Device name, or id if all digits")->required();

  dblock::DeviceConfig config;
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

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "dblockctl: {} (see dblockctl --help)\n", e.what());
    return 1;
  }

  try {
    if (*create_cmd) {
      // Parse everything before touching the device, so typos cost nothing.
      config.size_bytes = dblock::parse_size(size_text);
      const std::uint64_t block_size = dblock::parse_size(block_size_text);
      const std::uint64_t max_io = dblock::parse_size(max_io_text);
      if (block_size > UINT32_MAX || max_io > UINT32_MAX) {
        throw std::invalid_argument("block size or max I/O size is too large");
      }
      config.block_size = static_cast<std::uint32_t>(block_size);
      config.max_io_bytes = static_cast<std::uint32_t>(max_io);
      dblock::validate(config);
    }
    const Target target = parse_target(target_text);

    dblock::ControlDevice ctl;
    if (*version_cmd) {
      const dblock::ModuleVersion v = ctl.version();
      std::vector<std::string> features;
      if (v.has(DBLOCK_FEAT_FLUSH)) features.emplace_back("flush");
      if (v.has(DBLOCK_FEAT_READ_ONLY)) features.emplace_back("read-only");
      if (as_json) {
        print_json({{"abi_version", v.abi_version},
                    {"features", v.features},
                    {"feature_names", features},
                    {"userspace_abi_version", DBLOCK_ABI_VERSION}});
      } else {
        fmt::print("module ABI version {} (dblockctl speaks {})\nfeatures: {}\n", v.abi_version,
                   DBLOCK_ABI_VERSION, features.empty() ? "none" : fmt::to_string(fmt::join(features, ", ")));
      }
    } else if (*list_cmd) {
      const auto devices = ctl.list();
      if (as_json) {
        json array = json::array();
        for (const auto& d : devices) array.push_back(to_json(d));
        print_json(array);
      } else {
        print_list(devices);
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
    } else if (*destroy_cmd) {
      target.is_id ? ctl.destroy(target.id) : ctl.destroy(target.text);
      if (as_json) {
        print_json({{"destroyed", target.is_id ? json(target.id) : json(target.text)}});
      } else {
        fmt::print("destroyed device {}\n", target.is_id ? target.text : "'" + target.text + "'");
      }
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "dblockctl: {}\n", e.what());
    return 1;
  }
  return 0;
}
