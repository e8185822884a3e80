// Copyright (c) dblock authors.
#include "list_table.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join

#include "dblock/error.h"
#include "dblock/size.h"

#ifdef DBLOCK_HAVE_SMARTCOLS
#include <libsmartcols.h>
#endif

namespace dblockctl {
namespace {

std::string or_dash(std::string text) { return text.empty() ? "-" : text; }

std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// As libsmartcols's raw output: bytes that would split or garble a field
// (space, backslash, control characters) become \xHH.
std::string raw_escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '\\') {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<std::vector<std::string>> table_rows(const std::vector<const Column*>& columns,
                                                const std::vector<dblock::DeviceInfo>& devices) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& d : devices) {
    std::vector<std::string> row;
    for (const Column* c : columns) row.push_back(c->value(d));
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string render_builtin(const std::vector<const Column*>& columns,
                           const std::vector<std::vector<std::string>>& rows,
                           const TableStyle& style) {
  std::vector<std::vector<std::string>> lines;
  if (style.headings) {
    std::vector<std::string> head;
    for (const Column* c : columns) head.emplace_back(c->name);
    lines.push_back(std::move(head));
  }
  lines.insert(lines.end(), rows.begin(), rows.end());
  std::string out;
  if (style.raw) {
    for (const auto& line : lines) {
      for (std::size_t i = 0; i < line.size(); ++i) {
        if (i) out += ' ';
        out += raw_escape(line[i]);
      }
      out += '\n';
    }
    return out;
  }
  // Without headings, as wide as the values (libsmartcols 2.38 still makes
  // a column as wide as its heading then; later versions do not).
  std::vector<std::size_t> widths(columns.size(), 0);
  for (const auto& line : lines) {
    for (std::size_t i = 0; i < line.size(); ++i) widths[i] = std::max(widths[i], line[i].size());
  }
  for (const auto& line : lines) {
    std::string text;
    for (std::size_t i = 0; i < line.size(); ++i) {
      const bool last = i + 1 == line.size();
      if (i) text += ' ';
      if (columns[i]->right) {
        text += fmt::format("{:>{}}", line[i], widths[i]);
      } else {
        text += last ? line[i] : fmt::format("{:<{}}", line[i], widths[i]);
      }
    }
    out += text + '\n';
  }
  return out;
}

#ifdef DBLOCK_HAVE_SMARTCOLS
struct TableUnref {
  void operator()(libscols_table* t) const { scols_unref_table(t); }
};

void check(int ret, std::string_view what) {
  if (ret < 0) throw dblock::Error(-ret, fmt::format("print the table: libsmartcols {}", what));
}

std::string render_smartcols(const std::vector<const Column*>& columns,
                             const std::vector<std::vector<std::string>>& rows,
                             const TableStyle& style) {
  const std::unique_ptr<libscols_table, TableUnref> table(scols_new_table());
  if (!table) throw dblock::Error(ENOMEM, "print the table: libsmartcols scols_new_table");
  check(scols_table_enable_raw(table.get(), style.raw), "scols_table_enable_raw");
  check(scols_table_enable_noheadings(table.get(), !style.headings),
        "scols_table_enable_noheadings");
  for (const Column* c : columns) {
    if (!scols_table_new_column(table.get(), std::string(c->name).c_str(), 0,
                                c->right ? SCOLS_FL_RIGHT : 0)) {
      throw dblock::Error(ENOMEM, "print the table: libsmartcols scols_table_new_column");
    }
  }
  for (const auto& row : rows) {
    libscols_line* line = scols_table_new_line(table.get(), nullptr);
    if (!line) throw dblock::Error(ENOMEM, "print the table: libsmartcols scols_table_new_line");
    for (std::size_t i = 0; i < row.size(); ++i) {
      check(scols_line_set_data(line, i, row[i].c_str()), "scols_line_set_data");
    }
  }
  char* data = nullptr;
  check(scols_print_table_to_string(table.get(), &data), "scols_print_table_to_string");
  const std::unique_ptr<char, decltype(&std::free)> owned(data, &std::free);
  std::string out = data ? data : "";
  if (!out.empty() && out.back() != '\n') out += '\n';
  return out;
}
#endif

}  // namespace

std::string flags_text(const dblock::DeviceConfig& c) {
  std::vector<std::string> flags;
  if (c.flush) flags.emplace_back("flush");
  if (c.read_only) flags.emplace_back("read-only");
  if (c.discard) flags.emplace_back("discard");
  if (c.write_zeroes) flags.emplace_back("write-zeroes");
  return flags.empty() ? "-" : fmt::format("{}", fmt::join(flags, ","));
}

const std::vector<Column>& all_columns() {
  using Info = dblock::DeviceInfo;
  static const std::vector<Column> columns = {
      {"ID", "device id (its channel is /dev/dblock/ID)", true,
       [](const Info& d) { return std::to_string(d.id); }},
      {"NAME", "disk name (/dev/NAME)", false, [](const Info& d) { return d.config.name; }},
      {"SIZE", "size", true,
       [](const Info& d) { return dblock::format_size(d.config.size_bytes); }},
      {"BYTES", "size in bytes", true,
       [](const Info& d) { return std::to_string(d.config.size_bytes); }},
      {"BLOCK", "logical block size", true,
       [](const Info& d) { return std::to_string(d.config.block_size); }},
      {"QUEUES", "hardware queues", true,
       [](const Info& d) { return std::to_string(d.config.queues); }},
      {"DEPTH", "requests in flight per queue", true,
       [](const Info& d) { return std::to_string(d.config.queue_depth); }},
      {"MAX-IO", "largest request", true,
       [](const Info& d) { return dblock::format_size(d.config.max_io_bytes); }},
      {"FLAGS", "flush, read-only, discard, write-zeroes", false,
       [](const Info& d) { return flags_text(d.config); }},
      {"STATE", "created, live or dead", false,
       [](const Info& d) { return dblock::to_string(d.state); }},
      {"RECOVERY", "fail or wait, when the server goes away", false,
       [](const Info& d) { return dblock::to_string(d.config.recovery); }},
      {"SERVER", "pid of the server, - if none", true,
       [](const Info& d) { return d.server_pid ? std::to_string(d.server_pid) : "-"; }},
      {"DISK", "the disk's MAJ:MIN", false,
       [](const Info& d) { return fmt::format("{}:{}", d.disk_major, d.disk_minor); }},
      {"TRANSPORT", "the kernel interface: dblock (dblock.ko) or ublk", false,
       [](const Info& d) { return dblock::to_string(d.transport); }},
      {"BACKEND", "what serves it, as its server says (file:PATH, ram, ...)", false,
       [](const Info& d) { return or_dash(d.backend); }},
  };
  return columns;
}

std::vector<const Column*> default_columns() {
  std::vector<const Column*> out;
  for (const Column& c : all_columns()) {
    if (c.name != "BYTES" && c.name != "RECOVERY") out.push_back(&c);
  }
  return out;
}

std::string column_names() {
  std::vector<std::string_view> names;
  for (const Column& c : all_columns()) names.push_back(c.name);
  return fmt::format("{}", fmt::join(names, ", "));
}

std::vector<const Column*> parse_columns(std::string_view list) {
  std::vector<const Column*> out;
  if (list.starts_with('+')) {
    out = default_columns();
    list.remove_prefix(1);
  }
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = list.find(',', start);
    const std::string word = upper(list.substr(start, comma - start));
    const auto& all = all_columns();
    const auto it = std::find_if(all.begin(), all.end(), [&](const Column& c) { return c.name == word; });
    if (it == all.end()) {
      throw std::invalid_argument(
          word.empty() ? fmt::format("empty column name in '{}' (columns: {})", list, column_names())
                       : fmt::format("unknown column '{}' (columns: {})",
                                     list.substr(start, comma - start), column_names()));
    }
    out.push_back(&*it);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string render_table(const std::vector<const Column*>& columns,
                         const std::vector<dblock::DeviceInfo>& devices, const TableStyle& style) {
#ifdef DBLOCK_HAVE_SMARTCOLS
  return render_smartcols(columns, table_rows(columns, devices), style);
#else
  return render_builtin(columns, table_rows(columns, devices), style);
#endif
}

std::string render_table_builtin(const std::vector<const Column*>& columns,
                                 const std::vector<dblock::DeviceInfo>& devices,
                                 const TableStyle& style) {
  return render_builtin(columns, table_rows(columns, devices), style);
}

std::string_view table_printer() {
#ifdef DBLOCK_HAVE_SMARTCOLS
  return "libsmartcols";
#else
  return "built-in";
#endif
}

}  // namespace dblockctl
