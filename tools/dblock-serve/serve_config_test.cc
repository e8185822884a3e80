// Copyright (c) dblock authors.
#include "serve_config.h"

#include <stdexcept>

#include <gtest/gtest.h>

namespace serve_tool {
namespace {

TEST(ParseConfig, KeysCommentsBlanksAndQuotes) {
  const Settings s = parse_config(
      "# a comment\n\nname = disk0\r\nbackend=\"file:/var/lib/x img\"\n  read_only=yes\n", "f");
  EXPECT_EQ(s.at("name"), "disk0");
  EXPECT_EQ(s.at("backend"), "file:/var/lib/x img");
  EXPECT_EQ(s.at("read_only"), "yes");
  EXPECT_EQ(s.size(), 3u);
}

TEST(ParseConfig, RejectsUnknownKeysAndJunkWithTheLine) {
  try {
    parse_config("name=a\nsizee=1G\n", "my.conf");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("my.conf:2: unknown key 'sizee'"), std::string::npos);
  }
  EXPECT_THROW(parse_config("just words\n", "f"), std::invalid_argument);
}

TEST(MakePlan, DefaultsAndConversions) {
  const Plan p = make_plan({{"name", "d"}, {"backend", "null"}, {"size", "1G"}});
  EXPECT_EQ(p.backend, BackendKind::kNull);
  EXPECT_EQ(p.device.size_bytes, 1ull << 30);
  EXPECT_EQ(p.device.block_size, 4096u);
  EXPECT_EQ(p.device.queues, 2);
  EXPECT_EQ(p.device.queue_depth, 64);
  EXPECT_EQ(p.device.max_io_bytes, 256u * 1024);
  EXPECT_FALSE(p.device.read_only);

  const Plan f = make_plan({{"name", "d"},
                            {"backend", "file:/x"},
                            {"queues", "4"},
                            {"depth", "128"},
                            {"max_io", "1M"},
                            {"block_size", "512"},
                            {"read_only", "true"}});
  EXPECT_EQ(f.backend, BackendKind::kFile);
  EXPECT_EQ(f.file, "/x");
  EXPECT_FALSE(f.size_given);
  EXPECT_EQ(f.device.queues, 4);
  EXPECT_EQ(f.device.queue_depth, 128);
  EXPECT_EQ(f.device.max_io_bytes, 1u << 20);
  EXPECT_EQ(f.device.block_size, 512u);
  EXPECT_TRUE(f.device.read_only);
}

TEST(MakePlan, SaysWhatIsWrong) {
  EXPECT_THROW(make_plan({{"backend", "ram"}, {"size", "1G"}}), std::invalid_argument);
  EXPECT_THROW(make_plan({{"name", "d"}, {"size", "1G"}}), std::invalid_argument);
  EXPECT_THROW(make_plan({{"name", "d"}, {"backend", "ram"}}), std::invalid_argument);
  EXPECT_THROW(make_plan({{"name", "d"}, {"backend", "disk"}, {"size", "1G"}}),
               std::invalid_argument);
  EXPECT_THROW(make_plan({{"name", "d"}, {"backend", "ram"}, {"size", "1G"}, {"queues", "x"}}),
               std::invalid_argument);
  EXPECT_THROW(make_plan({{"name", "d"}, {"backend", "ram"}, {"size", "1G"}, {"queues", "-1"}}),
               std::invalid_argument);
  EXPECT_THROW(make_plan({{"name", "d"}, {"backend", "ram"}, {"size", "1G"}, {"queues", "70000"}}),
               std::invalid_argument);
  EXPECT_THROW(
      make_plan({{"name", "d"}, {"backend", "ram"}, {"size", "1G"}, {"read_only", "maybe"}}),
      std::invalid_argument);
  EXPECT_THROW(make_plan({{"name", "bad/name"}, {"backend", "ram"}, {"size", "1G"}}),
               std::invalid_argument);
}

TEST(MakePlan, RecoveryGraceTimeoutAndMlock) {
  const Plan d = make_plan({{"name", "d"}, {"backend", "null"}, {"size", "1G"}});
  EXPECT_EQ(d.device.recovery, dblock::Recovery::kFail);
  EXPECT_EQ(d.device.grace_ms, 0u);
  EXPECT_EQ(d.device.timeout_ms, 0u);
  EXPECT_FALSE(d.lock_memory);

  const Plan p = make_plan({{"name", "d"},
                            {"backend", "file:/x"},
                            {"recovery", "wait"},
                            {"grace", "90s"},
                            {"timeout", "never"},
                            {"mlock", "yes"}});
  EXPECT_EQ(p.device.recovery, dblock::Recovery::kWait);
  EXPECT_EQ(p.device.grace_ms, 90'000u);
  EXPECT_EQ(p.device.timeout_ms, dblock::kTimeoutNever);
  EXPECT_TRUE(p.lock_memory);

  // "never" for the grace period is the kernel's 0: hold I/O forever.
  const Plan forever =
      make_plan({{"name", "d"}, {"backend", "file:/x"}, {"recovery", "wait"}, {"grace", "never"}});
  EXPECT_EQ(forever.device.grace_ms, 0u);
}

TEST(MakePlan, RefusesBadRecoverySettings) {
  const Settings base{{"name", "d"}, {"backend", "file:/x"}};
  const auto with = [&](std::string key, std::string value) {
    Settings s = base;
    s[std::move(key)] = std::move(value);
    return s;
  };
  EXPECT_THROW(make_plan(with("recovery", "retry")), std::invalid_argument);
  EXPECT_THROW(make_plan(with("timeout", "5 s")), std::invalid_argument);
  EXPECT_THROW(make_plan(with("mlock", "2")), std::invalid_argument);
  try {
    make_plan(with("grace", "60s"));  // without recovery wait
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("recovery wait"), std::string::npos) << e.what();
  }
  Settings bad_grace = with("recovery", "wait");
  bad_grace["grace"] = "soon";
  try {
    make_plan(bad_grace);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("grace"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace serve_tool
