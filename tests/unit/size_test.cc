// Copyright (c) dblock authors.
#include "dblock/size.h"

#include <stdexcept>

#include <gtest/gtest.h>

namespace dblock {
namespace {

TEST(ParseSize, PlainBytes) {
  EXPECT_EQ(parse_size("0"), 0u);
  EXPECT_EQ(parse_size("512"), 512u);
  EXPECT_EQ(parse_size("512B"), 512u);
}

TEST(ParseSize, BinaryUnitsAnyCase) {
  EXPECT_EQ(parse_size("4K"), 4096u);
  EXPECT_EQ(parse_size("4k"), 4096u);
  EXPECT_EQ(parse_size("64M"), 64u << 20);
  EXPECT_EQ(parse_size("1G"), 1u << 30);
  EXPECT_EQ(parse_size("1T"), 1ull << 40);
  EXPECT_EQ(parse_size("2P"), 2ull << 50);
  EXPECT_EQ(parse_size("256KiB"), 256u << 10);
  EXPECT_EQ(parse_size("1gib"), 1u << 30);
  EXPECT_EQ(parse_size("8MB"), 8u << 20);
}

TEST(ParseSize, LargestValues) {
  EXPECT_EQ(parse_size("18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(parse_size("16383P"), 16383ull << 50);
}

TEST(ParseSize, RejectsGarbage) {
  for (const char* bad : {"", "K", "-1", "1.5G", "4 K", "4KK", "4X", "4iB", "0x10", "4Kb2",
                          " 4K", "4K "}) {
    EXPECT_THROW(parse_size(bad), std::invalid_argument) << "'" << bad << "'";
  }
}

TEST(ParseSize, RejectsOverflow) {
  EXPECT_THROW(parse_size("18446744073709551616"), std::invalid_argument);
  EXPECT_THROW(parse_size("16384P"), std::invalid_argument);
  EXPECT_THROW(parse_size("99999999999999999999T"), std::invalid_argument);
}

TEST(ParseSize, MessageQuotesTheInput) {
  try {
    parse_size("12Q");
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'12Q'"), std::string::npos) << e.what();
  }
}

TEST(FormatSize, ExactAndFractional) {
  EXPECT_EQ(format_size(0), "0 B");
  EXPECT_EQ(format_size(1023), "1023 B");
  EXPECT_EQ(format_size(4096), "4 KiB");
  EXPECT_EQ(format_size(1536), "1.5 KiB");
  EXPECT_EQ(format_size(256ull << 20), "256 MiB");
  EXPECT_EQ(format_size(3ull << 40), "3 TiB");
  EXPECT_EQ(format_size(parse_size("1G") + parse_size("512M")), "1.5 GiB");
}

TEST(ParseDuration, UnitsAndNever) {
  EXPECT_EQ(parse_duration_ms("0"), 0u);
  EXPECT_EQ(parse_duration_ms("500ms"), 500u);
  EXPECT_EQ(parse_duration_ms("30s"), 30'000u);
  EXPECT_EQ(parse_duration_ms("2m"), 120'000u);
  EXPECT_EQ(parse_duration_ms("never"), UINT32_MAX);
  EXPECT_EQ(parse_duration_ms("4294967294ms"), UINT32_MAX - 1);
}

TEST(ParseDuration, RejectsBadText) {
  for (const char* text : {"", "s", "-1s", "1h", "1 s", "10sec", "4294967295", "4294968s",
                           "99999999999999999999", "never!"}) {
    EXPECT_THROW(parse_duration_ms(text), std::invalid_argument) << text;
  }
  try {
    parse_duration_ms("3x");
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'3x'"), std::string::npos) << e.what();
  }
}

TEST(ParseDuration, RefusesANumberWithoutUnit) {
  // A bare number was milliseconds to one tool and seconds to another.
  try {
    parse_duration_ms("30");
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("write 30s for seconds or 30ms"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(parse_grace_ms("60"), std::invalid_argument);
}

TEST(ParseGrace, NeverIsTheKernelsForever) {
  EXPECT_EQ(parse_grace_ms("never"), 0u);
  EXPECT_EQ(parse_grace_ms("60s"), 60'000u);
  EXPECT_THROW(parse_grace_ms("soon"), std::invalid_argument);
}

TEST(FormatDuration, NeverAndMilliseconds) {
  EXPECT_EQ(format_duration_ms(UINT32_MAX), "never");
  EXPECT_EQ(format_duration_ms(1500), "1500 ms");
}

}  // namespace
}  // namespace dblock
