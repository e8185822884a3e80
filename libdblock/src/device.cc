// Copyright (c) dblock authors.
#include "dblock/device.h"

#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

namespace dblock {
namespace {

bool valid_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '-';
}

std::string name_from(const char (&name)[DBLOCK_NAME_MAX]) {
  return std::string(name, strnlen(name, DBLOCK_NAME_MAX));
}

}  // namespace

std::string DeviceInfo::disk_path() const { return "/dev/" + config.name; }

std::string DeviceInfo::channel_path() const {
  if (transport == Transport::kUblk) return fmt::format("/dev/ublkc{}", id);
  return fmt::format("{}/{}", kChannelDir, id);
}

std::string to_string(DeviceState state) {
  switch (state) {
    case DeviceState::kCreated: return "created";
    case DeviceState::kLive: return "live";
    case DeviceState::kDead: return "dead";
  }
  return fmt::format("unknown({})", static_cast<std::uint32_t>(state));
}

std::string to_string(Recovery recovery) {
  return recovery == Recovery::kWait ? "wait" : "fail";
}

Recovery parse_recovery(std::string_view text) {
  if (text == "fail") return Recovery::kFail;
  if (text == "wait") return Recovery::kWait;
  throw std::invalid_argument(fmt::format("recovery policy must be 'fail' or 'wait': got '{}'", text));
}

std::string to_string(Transport transport) {
  switch (transport) {
    case Transport::kAuto:
      return "auto";
    case Transport::kDblock:
      return "dblock";
    case Transport::kUblk:
      return "ublk";
  }
  return fmt::format("unknown({})", static_cast<int>(transport));
}

Transport parse_transport(std::string_view text) {
  if (text == "auto") return Transport::kAuto;
  if (text == "dblock") return Transport::kDblock;
  if (text == "ublk") return Transport::kUblk;
  throw std::invalid_argument(
      fmt::format("transport must be 'auto', 'dblock' or 'ublk': got '{}'", text));
}

void validate_name(std::string_view name) {
  if (name.empty()) throw std::invalid_argument("device name must not be empty");
  // The module's own nodes: /dev/dblockctl and the channel directory /dev/dblock.
  if (name == "dblock" || name == "dblockctl") {
    throw std::invalid_argument(
        fmt::format("device name '{}' is reserved for the module's own nodes", name));
  }
  if (name.size() > kMaxNameLength) {
    throw std::invalid_argument(fmt::format("device name '{}' is too long: {} characters, at most {}",
                                            name, name.size(), kMaxNameLength));
  }
  for (const char c : name) {
    if (!valid_name_char(c)) {
      throw std::invalid_argument(fmt::format(
          "device name '{}' has an invalid character '{}': use A-Z, a-z, 0-9, '_' and '-'", name,
          c));
    }
  }
}

void validate(const DeviceConfig& c) {
  validate_name(c.name);
  const std::uint32_t bs = c.block_size;
  if (bs != 512 && bs != 1024 && bs != 2048 && bs != 4096) {
    throw std::invalid_argument(
        fmt::format("block size must be 512, 1024, 2048 or 4096: got {}", bs));
  }
  if (c.size_bytes == 0 || c.size_bytes % bs != 0) {
    throw std::invalid_argument(fmt::format(
        "device size must be a non-zero multiple of the block size ({}): got {}", bs,
        c.size_bytes));
  }
  if (c.max_io_bytes < DBLOCK_MIN_IO_BYTES || c.max_io_bytes > DBLOCK_MAX_IO_BYTES ||
      c.max_io_bytes % DBLOCK_MIN_IO_BYTES != 0 || c.max_io_bytes % bs != 0) {
    throw std::invalid_argument(fmt::format(
        "max I/O size must be a multiple of 4096 and of the block size, from {} to {}: got {}",
        DBLOCK_MIN_IO_BYTES, DBLOCK_MAX_IO_BYTES, c.max_io_bytes));
  }
  if (c.queues < 1 || c.queues > DBLOCK_MAX_QUEUES) {
    throw std::invalid_argument(
        fmt::format("number of queues must be from 1 to {}: got {}", DBLOCK_MAX_QUEUES, c.queues));
  }
  if (c.queue_depth < 1 || c.queue_depth > DBLOCK_MAX_QUEUE_DEPTH) {
    throw std::invalid_argument(fmt::format("queue depth must be from 1 to {}: got {}",
                                            DBLOCK_MAX_QUEUE_DEPTH, c.queue_depth));
  }
  // Each queue's buffer holds queue_depth slots of max_io_bytes.
  if (std::uint64_t{c.queue_depth} * c.max_io_bytes > DBLOCK_MAX_BUFFER_BYTES) {
    throw std::invalid_argument(fmt::format(
        "queue depth {} x max I/O size {} is too large: a queue's buffer is at most {} MiB",
        c.queue_depth, c.max_io_bytes, DBLOCK_MAX_BUFFER_BYTES >> 20));
  }
  const auto power_of_two = [](std::uint32_t v) { return v != 0 && (v & (v - 1)) == 0; };
  const std::uint32_t pbs = c.physical_block_size ? c.physical_block_size : bs;
  if (!power_of_two(pbs) || pbs < bs || pbs > 65536) {
    throw std::invalid_argument(fmt::format(
        "physical block size must be a power of two from the block size ({}) to 65536: got {}", bs,
        c.physical_block_size));
  }
  if (c.io_opt_bytes % pbs != 0) {
    throw std::invalid_argument(fmt::format(
        "optimal I/O size must be a multiple of the physical block size ({}): got {}", pbs,
        c.io_opt_bytes));
  }
  constexpr std::uint32_t kMaxSpecial = 1U << 30;
  if (!c.discard && (c.discard_granularity || c.max_discard_bytes)) {
    throw std::invalid_argument("discard granularity and size need discard support");
  }
  if (!c.write_zeroes && c.max_write_zeroes_bytes) {
    throw std::invalid_argument("the largest write-zeroes size needs write-zeroes support");
  }
  const std::uint32_t gran = c.discard_granularity ? c.discard_granularity : bs;
  if (c.discard && (!power_of_two(gran) || gran % bs != 0 || gran > kMaxSpecial)) {
    throw std::invalid_argument(fmt::format(
        "discard granularity must be a power-of-two multiple of the block size: got {}", gran));
  }
  if (c.discard && (c.max_discard_bytes % gran != 0 || c.max_discard_bytes > kMaxSpecial)) {
    throw std::invalid_argument(fmt::format(
        "largest discard must be a multiple of the discard granularity ({}) up to 1 GiB: got {}",
        gran, c.max_discard_bytes));
  }
  if (c.write_zeroes && (c.max_write_zeroes_bytes % bs != 0 || c.max_write_zeroes_bytes > kMaxSpecial)) {
    throw std::invalid_argument(fmt::format(
        "largest write-zeroes must be a multiple of the block size up to 1 GiB: got {}",
        c.max_write_zeroes_bytes));
  }
  if (c.recovery != Recovery::kFail && c.recovery != Recovery::kWait) {
    throw std::invalid_argument("recovery policy must be 'fail' or 'wait'");
  }
}

dblock_dev_config to_uapi(const DeviceConfig& c) {
  if (c.name.size() > kMaxNameLength) validate_name(c.name);
  dblock_dev_config out{};
  std::memcpy(out.name, c.name.data(), c.name.size());
  out.size_bytes = c.size_bytes;
  out.logical_block_size = c.block_size;
  out.max_io_bytes = c.max_io_bytes;
  out.nr_queues = c.queues;
  out.queue_depth = c.queue_depth;
  out.flags = (c.flush ? DBLOCK_DEV_FLUSH : 0) | (c.read_only ? DBLOCK_DEV_READ_ONLY : 0) |
              (c.discard ? DBLOCK_DEV_DISCARD : 0) | (c.write_zeroes ? DBLOCK_DEV_WRITE_ZEROES : 0);
  out.physical_block_size = c.physical_block_size;
  out.io_opt_bytes = c.io_opt_bytes;
  out.discard_granularity = c.discard_granularity;
  out.max_discard_bytes = c.max_discard_bytes;
  out.max_write_zeroes_bytes = c.max_write_zeroes_bytes;
  out.timeout_ms = c.timeout_ms;
  out.recovery = static_cast<std::uint8_t>(c.recovery);
  out.grace_ms = c.grace_ms;
  return out;
}

std::string fit_backend_description(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  if (out.size() <= kMaxBackendLength) return out;
  constexpr std::string_view kEllipsis = "...";
  std::size_t from = out.size() - (kMaxBackendLength - kEllipsis.size());
  // Not inside a UTF-8 sequence: skip its continuation bytes (10xxxxxx).
  while (from < out.size() && (static_cast<unsigned char>(out[from]) & 0xc0) == 0x80) ++from;
  return std::string(kEllipsis) + out.substr(from);
}

DeviceConfig from_uapi(const dblock_dev_config& c) {
  DeviceConfig out;
  out.name = name_from(c.name);
  out.size_bytes = c.size_bytes;
  out.block_size = c.logical_block_size;
  out.max_io_bytes = c.max_io_bytes;
  out.queues = c.nr_queues;
  out.queue_depth = c.queue_depth;
  out.flush = (c.flags & DBLOCK_DEV_FLUSH) != 0;
  out.read_only = (c.flags & DBLOCK_DEV_READ_ONLY) != 0;
  out.discard = (c.flags & DBLOCK_DEV_DISCARD) != 0;
  out.write_zeroes = (c.flags & DBLOCK_DEV_WRITE_ZEROES) != 0;
  out.physical_block_size = c.physical_block_size;
  out.io_opt_bytes = c.io_opt_bytes;
  out.discard_granularity = c.discard_granularity;
  out.max_discard_bytes = c.max_discard_bytes;
  out.max_write_zeroes_bytes = c.max_write_zeroes_bytes;
  out.timeout_ms = c.timeout_ms;
  out.recovery = static_cast<Recovery>(c.recovery);
  out.grace_ms = c.grace_ms;
  return out;
}

DeviceInfo from_uapi(const dblock_dev_info& i) {
  DeviceInfo out;
  out.config = from_uapi(i.config);
  out.id = i.id;
  out.state = static_cast<DeviceState>(i.state);
  out.server_pid = i.server_pid;
  out.buffer_bytes = i.buffer_bytes;
  out.disk_major = i.disk_major;
  out.disk_minor = i.disk_minor;
  out.stats = DeviceStats{i.stats.reads,    i.stats.writes,       i.stats.flushes,
                          i.stats.discards, i.stats.write_zeroes, i.stats.errors,
                          i.stats.timeouts, i.stats.requeued,     i.stats.rejected,
                          i.stats.file_ios};
  out.features = i.features;
  return out;
}

}  // namespace dblock
