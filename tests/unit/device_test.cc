// Copyright (c) dblock authors.
#include "dblock/device.h"

#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

namespace dblock {
namespace {

DeviceConfig good_config() {
  DeviceConfig c;
  c.name = "disk_0-A";
  c.size_bytes = 64 << 20;
  c.block_size = 4096;
  c.max_io_bytes = 128 << 10;
  c.queues = 4;
  c.queue_depth = 32;
  c.flush = true;
  return c;
}

// Expects validate() to refuse the config and the message to name `field`.
void expect_invalid(const std::function<void(DeviceConfig&)>& mutate, const std::string& field) {
  DeviceConfig c = good_config();
  mutate(c);
  try {
    validate(c);
    ADD_FAILURE() << "accepted a bad " << field;
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(field), std::string::npos)
        << "message does not name '" << field << "': " << e.what();
  }
}

TEST(Validate, AcceptsGoodConfigs) {
  EXPECT_NO_THROW(validate(good_config()));
  DeviceConfig c = good_config();
  c.name = std::string(kMaxNameLength, 'x');
  c.block_size = 512;
  c.size_bytes = 512;
  c.max_io_bytes = DBLOCK_MAX_IO_BYTES;
  c.queues = DBLOCK_MAX_QUEUES;
  c.queue_depth = DBLOCK_MAX_BUFFER_BYTES / DBLOCK_MAX_IO_BYTES;
  EXPECT_NO_THROW(validate(c));
  c.max_io_bytes = 4096;
  c.queue_depth = DBLOCK_MAX_QUEUE_DEPTH;
  EXPECT_NO_THROW(validate(c));
}

TEST(Validate, Name) {
  expect_invalid([](DeviceConfig& c) { c.name = ""; }, "name");
  expect_invalid([](DeviceConfig& c) { c.name = std::string(kMaxNameLength + 1, 'x'); }, "name");
  for (const char* bad : {"a b", "a/b", "a.b", "dé", "x\n", "../x", "dblock", "dblockctl"}) {
    expect_invalid([&](DeviceConfig& c) { c.name = bad; }, "name");
  }
  expect_invalid([](DeviceConfig& c) { c.name = std::string("a\0b", 3); }, "name");
}

TEST(Validate, BlockSize) {
  for (std::uint32_t bad : {0u, 256u, 3000u, 8192u}) {
    expect_invalid([&](DeviceConfig& c) { c.block_size = bad; }, "block size");
  }
}

TEST(Validate, Size) {
  expect_invalid([](DeviceConfig& c) { c.size_bytes = 0; }, "device size");
  expect_invalid([](DeviceConfig& c) { c.size_bytes = (64 << 20) + 512; }, "device size");
}

TEST(Validate, MaxIo) {
  expect_invalid([](DeviceConfig& c) { c.max_io_bytes = 0; }, "max I/O");
  expect_invalid([](DeviceConfig& c) { c.max_io_bytes = 2048; }, "max I/O");
  expect_invalid([](DeviceConfig& c) { c.max_io_bytes = 4096 + 512; }, "max I/O");
  expect_invalid([](DeviceConfig& c) { c.max_io_bytes = DBLOCK_MAX_IO_BYTES + 4096; }, "max I/O");
}

TEST(Validate, Queues) {
  expect_invalid([](DeviceConfig& c) { c.queues = 0; }, "queues");
  expect_invalid([](DeviceConfig& c) { c.queues = DBLOCK_MAX_QUEUES + 1; }, "queues");
}

TEST(Validate, Depth) {
  expect_invalid([](DeviceConfig& c) { c.queue_depth = 0; }, "queue depth");
  expect_invalid([](DeviceConfig& c) { c.queue_depth = DBLOCK_MAX_QUEUE_DEPTH + 1; },
                 "queue depth");
}

TEST(Validate, QueueBufferIsBounded) {
  // Both within their own limits, but 1024 x 4 MiB is past DBLOCK_MAX_BUFFER_BYTES.
  expect_invalid(
      [](DeviceConfig& c) {
        c.queue_depth = DBLOCK_MAX_QUEUE_DEPTH;
        c.max_io_bytes = DBLOCK_MAX_IO_BYTES;
      },
      "queue depth 1024 x max I/O size");
  expect_invalid(
      [](DeviceConfig& c) {
        c.queue_depth = DBLOCK_MAX_BUFFER_BYTES / (1 << 20) + 1;
        c.max_io_bytes = 1 << 20;
      },
      "x max I/O size");
  DeviceConfig c = good_config();
  c.queue_depth = DBLOCK_MAX_BUFFER_BYTES / DBLOCK_MAX_IO_BYTES;
  c.max_io_bytes = DBLOCK_MAX_IO_BYTES;
  EXPECT_NO_THROW(validate(c));
}

TEST(Conversion, ConfigRoundTrip) {
  DeviceConfig c = good_config();
  c.read_only = true;
  const dblock_dev_config raw = to_uapi(c);
  EXPECT_STREQ(raw.name, "disk_0-A");
  EXPECT_EQ(raw.size_bytes, c.size_bytes);
  EXPECT_EQ(raw.logical_block_size, 4096u);
  EXPECT_EQ(raw.max_io_bytes, 128u << 10);
  EXPECT_EQ(raw.nr_queues, 4);
  EXPECT_EQ(raw.queue_depth, 32);
  EXPECT_EQ(raw.flags, DBLOCK_DEV_FLUSH | DBLOCK_DEV_READ_ONLY);
  for (const auto b : raw.__pad) EXPECT_EQ(b, 0u);
  for (const auto r : raw.__reserved) EXPECT_EQ(r, 0u);
  EXPECT_EQ(from_uapi(raw), c);

  c.flush = false;
  c.read_only = false;
  EXPECT_EQ(to_uapi(c).flags, 0u);
  EXPECT_EQ(from_uapi(to_uapi(c)), c);
}

TEST(Conversion, LongestNameKeepsItsNul) {
  DeviceConfig c = good_config();
  c.name = std::string(kMaxNameLength, 'n');
  const dblock_dev_config raw = to_uapi(c);
  EXPECT_EQ(raw.name[kMaxNameLength], '\0');
  EXPECT_EQ(from_uapi(raw).name, c.name);
  c.name += 'n';
  EXPECT_THROW(to_uapi(c), std::invalid_argument);
}

TEST(Conversion, NameWithoutNulStopsAtTheArray) {
  dblock_dev_config raw{};
  std::memset(raw.name, 'z', sizeof raw.name);
  EXPECT_EQ(from_uapi(raw).name, std::string(DBLOCK_NAME_MAX, 'z'));
}

TEST(Conversion, Info) {
  dblock_dev_info raw{};
  raw.config = to_uapi(good_config());
  raw.id = 7;
  raw.state = DBLOCK_STATE_LIVE;
  raw.server_pid = 1234;
  raw.buffer_bytes = 4 << 20;
  raw.disk_major = 252;
  raw.disk_minor = 16;
  const DeviceInfo info = from_uapi(raw);
  EXPECT_EQ(info.config, good_config());
  EXPECT_EQ(info.id, 7u);
  EXPECT_EQ(info.state, DeviceState::kLive);
  EXPECT_EQ(info.server_pid, 1234);
  EXPECT_EQ(info.buffer_bytes, 4u << 20);
  EXPECT_EQ(info.disk_major, 252u);
  EXPECT_EQ(info.disk_minor, 16u);
  EXPECT_EQ(info.disk_path(), "/dev/disk_0-A");
  EXPECT_EQ(info.channel_path(), "/dev/dblock/7");
}

TEST(DeviceStateName, KnownAndUnknown) {
  EXPECT_EQ(to_string(DeviceState::kCreated), "created");
  EXPECT_EQ(to_string(DeviceState::kLive), "live");
  EXPECT_EQ(to_string(DeviceState::kDead), "dead");
  EXPECT_EQ(to_string(static_cast<DeviceState>(9)), "unknown(9)");
}

TEST(TransportName, RoundTripAndRefusal) {
  for (const auto t : {dblock::Transport::kAuto, dblock::Transport::kDblock,
                       dblock::Transport::kUblk}) {
    EXPECT_EQ(dblock::parse_transport(dblock::to_string(t)), t);
  }
  EXPECT_EQ(dblock::to_string(dblock::Transport::kUblk), "ublk");
  EXPECT_THROW(dblock::parse_transport("nbd"), std::invalid_argument);
  EXPECT_THROW(dblock::parse_transport(""), std::invalid_argument);
}

TEST(FitBackendDescription, ShortTextsPassAndControlCharactersBecomeQuestionMarks) {
  EXPECT_EQ(fit_backend_description("file:/srv/vol1.img"), "file:/srv/vol1.img");
  EXPECT_EQ(fit_backend_description(""), "");
  EXPECT_EQ(fit_backend_description("a\nb\tc\x7f"), "a?b?c?");
  EXPECT_EQ(fit_backend_description("rbd:p/\xc3\xa9"), "rbd:p/\xc3\xa9");
  const std::string exact(kMaxBackendLength, 'x');
  EXPECT_EQ(fit_backend_description(exact), exact);
}

TEST(FitBackendDescription, LongTextsKeepTheirEnd) {
  const std::string path = "file:/" + std::string(200, 'd') + "/vol1.img";
  const std::string fit = fit_backend_description(path);
  EXPECT_EQ(fit.size(), kMaxBackendLength);
  EXPECT_TRUE(fit.starts_with("...ddd"));
  EXPECT_TRUE(fit.ends_with("/vol1.img"));
  EXPECT_EQ(fit.substr(3), path.substr(path.size() - (kMaxBackendLength - 3)));
}

TEST(FitBackendDescription, NeverCutsAUtf8Sequence) {
  // Two-byte characters: a cut at an odd offset would fall inside one.
  std::string text = "file:/";
  while (text.size() < 300) text += "\xc3\xa9";
  for (std::size_t extra = 0; extra < 2; ++extra) {
    const std::string fit = fit_backend_description(text + std::string(extra, 'z'));
    EXPECT_LE(fit.size(), kMaxBackendLength);
    EXPECT_TRUE(fit.starts_with("..."));
    EXPECT_NE(static_cast<unsigned char>(fit[3]) & 0xc0, 0x80) << "extra " << extra;
  }
}

}  // namespace
}  // namespace dblock
