// Copyright (c) dblock authors.
// The columns of `dblockctl list` and how its table is printed: with
// libsmartcols (util-linux's library behind lsblk and losetup) when the
// build found it, else with a printer of its own that lays out the same
// table the same way (static builds: Debian ships no libsmartcols.a).
#ifndef DBLOCK_TOOLS_DBLOCKCTL_LIST_TABLE_H_
#define DBLOCK_TOOLS_DBLOCKCTL_LIST_TABLE_H_

#include <string>
#include <string_view>
#include <vector>

#include "dblock/device.h"

namespace dblockctl {

struct Column {
  std::string_view name;  // upper case, as printed in the heading
  std::string_view help;
  bool right = false;  // numbers: aligned right
  std::string (*value)(const dblock::DeviceInfo&);
};

// "flush,read-only,discard,write-zeroes" (those set), or "-".
std::string flags_text(const dblock::DeviceConfig& config);

// Every column, in the order `--help` lists them.
const std::vector<Column>& all_columns();
// Those printed without -o.
std::vector<const Column*> default_columns();
// "NAME,BACKEND" (any case, as lsblk -o and losetup -O): those columns in
// that order; "+BACKEND,...": the default ones and those.  Throws
// std::invalid_argument naming the unknown column and the valid ones.
std::vector<const Column*> parse_columns(std::string_view list);
// "ID, NAME, ...": for the help text and the error.
std::string column_names();

struct TableStyle {
  bool headings = true;  // -n turns them off
  bool raw = false;      // -r: one space between values, unsafe bytes as \xHH
};

// The table, as it would be printed; a device with no value in a column
// shows "-" there.
std::string render_table(const std::vector<const Column*>& columns,
                         const std::vector<dblock::DeviceInfo>& devices, const TableStyle& style);

// The same table by the built-in printer, whichever render_table() uses:
// the tests hold the two to the same output.
std::string render_table_builtin(const std::vector<const Column*>& columns,
                                 const std::vector<dblock::DeviceInfo>& devices,
                                 const TableStyle& style);

// Which printer render_table() uses: "libsmartcols" or "built-in".
std::string_view table_printer();

}  // namespace dblockctl

#endif  // DBLOCK_TOOLS_DBLOCKCTL_LIST_TABLE_H_
