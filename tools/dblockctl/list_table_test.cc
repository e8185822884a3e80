// Copyright (c) dblock authors.
#include "list_table.h"

#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace dblockctl {
namespace {

std::vector<std::string_view> names(const std::vector<const Column*>& columns) {
  std::vector<std::string_view> out;
  for (const Column* c : columns) out.push_back(c->name);
  return out;
}

std::vector<dblock::DeviceInfo> devices() {
  dblock::DeviceInfo a;
  a.id = 0;
  a.config.name = "vol1";
  a.config.size_bytes = 1ULL << 30;
  a.state = dblock::DeviceState::kLive;
  a.server_pid = 4242;
  a.disk_major = 252;
  a.backend = "file:/srv/my vol\\1.img";
  dblock::DeviceInfo b;
  b.id = 12;
  b.config.name = "scratch";
  b.config.size_bytes = 64ULL << 20;
  return {a, b};
}

TEST(ParseColumns, AnyCaseInTheOrderGiven) {
  EXPECT_EQ(names(parse_columns("NAME,BACKEND")), (std::vector<std::string_view>{"NAME", "BACKEND"}));
  EXPECT_EQ(names(parse_columns("backend,Id,max-io")),
            (std::vector<std::string_view>{"BACKEND", "ID", "MAX-IO"}));
}

TEST(ParseColumns, APlusAddsToTheDefaults) {
  auto cols = names(parse_columns("+RECOVERY"));
  EXPECT_EQ(cols.size(), default_columns().size() + 1);
  EXPECT_EQ(cols.front(), "ID");
  EXPECT_EQ(cols.back(), "RECOVERY");
}

TEST(ParseColumns, UnknownOrEmptyNamesTheValidOnes) {
  try {
    parse_columns("NAME,bogus");
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown column 'bogus'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("ID, NAME, SIZE"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("BACKEND"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_columns(""), std::invalid_argument);
  EXPECT_THROW(parse_columns("NAME,"), std::invalid_argument);
  EXPECT_THROW(parse_columns("NAME,,ID"), std::invalid_argument);
}

TEST(DefaultColumns, IncludeBackend) {
  const auto cols = names(default_columns());
  EXPECT_EQ(cols.front(), "ID");
  EXPECT_EQ(cols.back(), "BACKEND");
}

TEST(RenderTable, AlignedWithHeadings) {
  const std::string out =
      render_table_builtin(parse_columns("id,name,backend"), devices(), TableStyle{});
  EXPECT_EQ(out,
            "ID NAME    BACKEND\n"
            " 0 vol1    file:/srv/my vol\\1.img\n"
            "12 scratch -\n");
}

TEST(RenderTable, NoHeadingsAndRaw) {
  EXPECT_EQ(render_table_builtin(parse_columns("NAME,BACKEND"), devices(), {false, false}),
            "vol1    file:/srv/my vol\\1.img\nscratch -\n");
  EXPECT_EQ(render_table_builtin(parse_columns("BLOCK"), devices(), {false, false}),
            "4096\n4096\n")
      << "as wide as its values";
  EXPECT_EQ(render_table_builtin(parse_columns("NAME,BACKEND"), devices(), {true, true}),
            "NAME BACKEND\nvol1 file:/srv/my\\x20vol\\x5c1.img\nscratch -\n");
}

// The words of each line: libsmartcols 2.38 pads columns to their heading's
// width even with no headings; later versions, like the built-in printer,
// do not.
std::string fields(const std::string& text) {
  std::string out;
  bool space = false;
  for (const char c : text) {
    if (c == ' ') {
      space = true;
      continue;
    }
    if (space && !out.empty() && out.back() != '\n' && c != '\n') out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// Whichever printer the build uses, the output is the built-in one's (but
// for the padding above).
TEST(RenderTable, ThePrinterInUseAgreesWithTheBuiltInOne) {
  for (const auto& list : {"NAME,BACKEND", "+RECOVERY,BYTES", "backend,id"}) {
    for (const TableStyle style : {TableStyle{true, false}, TableStyle{false, false},
                                   TableStyle{true, true}, TableStyle{false, true}}) {
      const auto cols = parse_columns(list);
      const std::string used = render_table(cols, devices(), style);
      const std::string builtin = render_table_builtin(cols, devices(), style);
      EXPECT_EQ(style.headings || style.raw ? used : fields(used),
                style.headings || style.raw ? builtin : fields(builtin))
          << table_printer() << ", columns " << list << ", headings " << style.headings
          << ", raw " << style.raw;
    }
  }
}

}  // namespace
}  // namespace dblockctl
