// Copyright (c) dblock authors.
// A program built against an installed libdblock (tests/install/run.sh):
// creates /dev/NAME backed by a RamBackend, writes a block through the disk,
// reads it back, destroys the device and checks the server stopped.
//   dblock_install_consumer NAME
#include <fcntl.h>
#include <linux/dblock.h>  // installed as <linux/dblock.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <thread>
#include <vector>

#include <dblock/control_device.h>
#include <dblock/error.h>
#include <dblock/ram_backend.h>
#include <dblock/server.h>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  static_assert(DBLOCK_NAME_MAX == 32);
  try {
    dblock::DeviceConfig config;
    config.name = argv[1];
    config.size_bytes = 16 << 20;
    dblock::RamBackend backend(config.size_bytes);
    dblock::ControlDevice control;
    const dblock::DeviceInfo device = control.create(config);
    dblock::Server server(device.id, backend);
    std::thread serving([&] { server.run(); });

    const std::string disk = device.disk_path();
    struct stat st {};
    for (int i = 0; i < 300 && (::stat(disk.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::vector<char> block(4096), back(4096);
    for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>(i * 7 + 1);
    const int fd = ::open(disk.c_str(), O_RDWR | O_DIRECT);
    void* aligned = nullptr;
    if (fd < 0 || ::posix_memalign(&aligned, 4096, 4096) != 0) {
      std::perror(disk.c_str());
      return 1;
    }
    std::memcpy(aligned, block.data(), 4096);
    bool ok = ::pwrite(fd, aligned, 4096, 8192) == 4096 && ::fsync(fd) == 0;
    std::memset(aligned, 0, 4096);
    ok = ok && ::pread(fd, aligned, 4096, 8192) == 4096;
    std::memcpy(back.data(), aligned, 4096);
    ::free(aligned);
    ::close(fd);
    // The data went through the server: the backend holds it.
    std::vector<std::byte> stored(4096);
    backend.read(8192, stored);
    ok = ok && back == block && std::memcmp(stored.data(), block.data(), 4096) == 0;

    for (int attempt = 0;; ++attempt) {  // udev or blkid may hold the disk a moment
      try {
        control.destroy(config.name);
        break;
      } catch (const dblock::Error& e) {
        if (attempt == 20) throw;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
    serving.join();  // run() returns once the device is destroyed
    std::printf("%s: wrote and read back a block through %s: %s\n", argv[0], disk.c_str(),
                ok ? "ok" : "MISMATCH");
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
}
