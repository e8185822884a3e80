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

}  // namespace
}  // namespace serve_tool
