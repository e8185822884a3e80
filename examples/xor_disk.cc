// Copyright (c) dblock authors.
// dblock_example_xor: the shortest complete dblock server.  /dev/NAME shows
// the contents of FILE with every byte XORed with KEY: a toy "encryption"
// (never use it for secrets) to show where a real transformation would go.
//
//   dblock_example_xor NAME FILE [KEY]   serve until `dblockctl destroy NAME`
//                                        or Ctrl-C; FILE's size is the disk's
#include <cstdio>
#include <charconv>
#include <exception>
#include <string_view>
#include <system_error>
#include <vector>

#include "dblock/file_backend.h"
#include "dblock/serve.h"

class XorBackend final : public dblock::Backend {
 public:
  XorBackend(const char* path, std::byte key) : file_(path), key_(key) {}

  std::uint64_t size() const override { return file_.size(); }
  void read(std::uint64_t offset, std::span<std::byte> out) override {
    file_.read(offset, out);
    for (std::byte& b : out) b ^= key_;
  }
  void write(std::uint64_t offset, std::span<const std::byte> data, bool fua) override {
    std::vector<std::byte> scrambled(data.begin(), data.end());
    for (std::byte& b : scrambled) b ^= key_;
    file_.write(offset, scrambled, fua);
  }
  void flush() override { file_.flush(); }
  bool supports_flush() const override { return true; }

 private:
  dblock::FileBackend file_;
  const std::byte key_;
};

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s NAME FILE [KEY]\n", argv[0]);
    return 2;
  }
  // The key is one byte, 1..255: 0 would store the data as it is.
  unsigned key = 0x5a;
  if (argc > 3) {
    const std::string_view text = argv[3];
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), key);
    if (ec != std::errc() || end != text.data() + text.size() || key == 0 || key > 255) {
      std::fprintf(stderr, "dblock_example_xor: key '%s' is not a number from 1 to 255\n", argv[3]);
      return 2;
    }
  }
  try {
    XorBackend backend(argv[2], std::byte(key));
    dblock::DeviceConfig config;
    config.name = argv[1];
    config.size_bytes = backend.size();
    dblock::ServeOptions options;
    options.program = "dblock_example_xor";
    return dblock::serve(config, backend, options);  // Ctrl-C destroys the device
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dblock_example_xor: %s\n", e.what());
    return 1;
  }
}
