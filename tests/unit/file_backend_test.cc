// Copyright (c) dblock authors.
#include "dblock/file_backend.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dblock/error.h"
#include "dblock/uring_file_backend.h"

#ifdef DBLOCK_HAVE_URING
#include <liburing.h>

#include "lent_ring.h"
#endif

namespace dblock {
namespace {

class FileBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dblock_test_XXXXXX").string();
    const int fd = ::mkstemp(tmpl.data());
    ASSERT_GE(fd, 0);
    ::close(fd);
    path_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove(path_); }

  void resize(std::uint64_t size) { std::filesystem::resize_file(path_, size); }

  std::string path_;
};

std::vector<std::byte> bytes(const std::string& s) {
  std::vector<std::byte> v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

std::vector<std::byte> filled(std::size_t n, unsigned char c) {
  return std::vector<std::byte>(n, std::byte{c});
}

// The file's bytes [at, at + n), read around the backend.
std::vector<std::byte> file_bytes(const std::string& path, std::uint64_t at, std::size_t n) {
  std::vector<std::byte> v(n);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path;
  if (fd < 0) return v;
  EXPECT_EQ(::pread(fd, v.data(), n, static_cast<off_t>(at)), static_cast<ssize_t>(n));
  ::close(fd);
  return v;
}

// Makes `path` `size` bytes of `c`.
void fill_file(const std::string& path, std::size_t size, unsigned char c) {
  const std::vector<std::byte> data = filled(size, c);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(size));
  ASSERT_TRUE(out.good()) << path;
}

// Empty if `path`'s file system takes O_DIRECT, else why not.
std::string direct_io_refusal(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
  if (fd < 0) return std::string("open with O_DIRECT: ") + std::strerror(errno);
  ::close(fd);
  return {};
}

// Whether this process has `path` open with O_DIRECT (/proc/self/fdinfo).
bool open_with_o_direct(const std::string& path) {
  const std::filesystem::path want = std::filesystem::canonical(path);
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    if (std::filesystem::read_symlink(entry.path(), ec) != want || ec) continue;
    std::ifstream info("/proc/self/fdinfo/" + entry.path().filename().string());
    std::string key;
    while (info >> key) {
      if (key != "flags:") continue;
      std::string octal;
      info >> octal;
      if ((std::stoul(octal, nullptr, 8) & O_DIRECT) != 0) return true;
      break;
    }
  }
  return false;
}

struct FreeDeleter {
  void operator()(std::byte* p) const { std::free(p); }
};

// A page-aligned buffer, like the server's buffer areas.
std::unique_ptr<std::byte[], FreeDeleter> page_aligned(std::size_t n, unsigned char c) {
  void* p = nullptr;
  if (::posix_memalign(&p, 4096, n) != 0) return nullptr;
  std::memset(p, c, n);
  return std::unique_ptr<std::byte[], FreeDeleter>(static_cast<std::byte*>(p));
}

TEST_F(FileBackendTest, SizeComesFromTheFile) {
  resize(1 << 20);
  EXPECT_EQ(FileBackend(path_).size(), 1u << 20);
  resize(1000);
  EXPECT_EQ(FileBackend(path_).size(), 1000u);
}

TEST_F(FileBackendTest, WritesReachTheFile) {
  resize(64 * 1024);
  {
    FileBackend file(path_);
    file.write(4096, bytes("hello, disk"), false);
    file.write(8192, bytes("durable"), true);
    file.flush();
    std::vector<std::byte> out(11);
    file.read(4096, out);
    EXPECT_EQ(out, bytes("hello, disk"));
  }
  // Really in the file, not only in the object.
  FileBackend again(path_, /*read_only=*/true);
  std::vector<std::byte> out(7);
  again.read(8192, out);
  EXPECT_EQ(out, bytes("durable"));
  EXPECT_EQ(std::filesystem::file_size(path_), 64u * 1024);
}

// Durability requests reach the file: each flush and each FUA write is one
// fdatasync(), and nothing else syncs.
TEST_F(FileBackendTest, FlushAndFuaWritesSync) {
  resize(64 * 1024);
  FileBackend file(path_);
  EXPECT_FALSE(file.may_block());  // buffered: on the queue threads
  EXPECT_EQ(file.syncs_issued(), 0u);
  file.write(0, bytes("plain"), /*fua=*/false);
  std::vector<std::byte> out(5);
  file.read(0, out);
  file.write_zeroes(4096, 4096, false);
  file.discard(8192, 4096);
  EXPECT_EQ(file.syncs_issued(), 0u) << "only flush and FUA sync";
  file.write(4096, bytes("forced"), /*fua=*/true);
  EXPECT_EQ(file.syncs_issued(), 1u) << "a FUA write must fdatasync";
  file.flush();
  EXPECT_EQ(file.syncs_issued(), 2u) << "flush must fdatasync";
  file.flush();
  EXPECT_EQ(file.syncs_issued(), 3u);
}

TEST_F(FileBackendTest, ReadPastAShrunkenEndGivesZeros) {
  resize(8192);
  FileBackend file(path_);
  file.write(4096, std::vector<std::byte>(4096, std::byte{0x5a}), false);
  resize(4096 + 100);  // someone truncated it under us
  std::vector<std::byte> out(4096, std::byte{1});
  file.read(4096, out);
  for (std::size_t i = 0; i < out.size(); ++i) {
    ASSERT_EQ(out[i], i < 100 ? std::byte{0x5a} : std::byte{0}) << "byte " << i;
  }
}

TEST_F(FileBackendTest, BoundsAndReadOnly) {
  resize(4096);
  FileBackend file(path_);
  std::vector<std::byte> buf(4096);
  EXPECT_THROW(file.read(512, buf), std::system_error);
  EXPECT_THROW(file.write(4096, buf, false), std::system_error);
  FileBackend ro(path_, true);
  try {
    ro.write(0, buf, false);
    FAIL() << "no exception";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EROFS);
  }
}

TEST_F(FileBackendTest, OpenErrorsNameThePath) {
  try {
    FileBackend missing(path_ + ".missing");
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_NE(std::string(e.what()).find(path_ + ".missing"), std::string::npos) << e.what();
  }
  EXPECT_THROW(FileBackend("/dev/null"), Error);  // a char device has no size
}

// Zeroes read back as zeroes whichever way the file system provides them;
// run in the temp directory and, where there is one, on tmpfs (/dev/shm),
// which has no FALLOC_FL_ZERO_RANGE: zeroes are then written.
TEST_F(FileBackendTest, WriteZeroesAndDiscardOnEveryFileSystem) {
  std::vector<std::string> paths{path_};
  std::string shm = "/dev/shm/dblock_test_XXXXXX";
  if (const int fd = ::mkstemp(shm.data()); fd >= 0) {
    ::close(fd);
    paths.push_back(shm);
  }
  for (const std::string& path : paths) {
    SCOPED_TRACE(path);
    std::filesystem::resize_file(path, 256 * 1024);
    FileBackend file(path);
    const std::vector<std::byte> ones(64 * 1024, std::byte{0xff});
    file.write(0, ones, false);
    file.write(128 * 1024, ones, false);
    file.write_zeroes(4096, 8192, /*may_unmap=*/false);
    file.write_zeroes(128 * 1024 + 4096, 8192, /*may_unmap=*/true);
    file.discard(32 * 1024, 4096);  // may or may not free: must not fail
    std::vector<std::byte> out(8192);
    for (const std::uint64_t at : {std::uint64_t{4096}, std::uint64_t{128 * 1024 + 4096}}) {
      file.read(at, out);
      EXPECT_EQ(out, std::vector<std::byte>(8192, std::byte{0})) << "at " << at;
    }
    // Around the zeroed ranges the data is untouched.
    std::vector<std::byte> edge(4096);
    file.read(0, edge);
    EXPECT_EQ(edge, std::vector<std::byte>(4096, std::byte{0xff}));
    file.read(12288, edge);
    EXPECT_EQ(edge, std::vector<std::byte>(4096, std::byte{0xff}));
    EXPECT_THROW(file.write_zeroes(250 * 1024, 8192, false), std::exception);
  }
  if (paths.size() > 1) std::filesystem::remove(paths[1]);
}

TEST_F(FileBackendTest, OffsetAndSizeLimitServeAWindow) {
  fill_file(path_, 64 * 1024, 0xaa);
  FileBackend::Options options;
  options.offset = 8192;
  options.size_limit = 16384;
  FileBackend file(path_, options);
  EXPECT_EQ(file.size(), 16384u);
  EXPECT_EQ(file.offset(), 8192u);
  EXPECT_EQ(file.size_limit(), std::optional<std::uint64_t>(16384));

  const std::vector<std::byte> ones = filled(4096, 0x11);
  file.write(0, ones, false);
  file.write(12288, ones, true);
  EXPECT_EQ(file_bytes(path_, 8192, 4096), ones);
  EXPECT_EQ(file_bytes(path_, 8192 + 12288, 4096), ones);
  std::vector<std::byte> out(4096);
  file.read(0, out);
  EXPECT_EQ(out, ones);
  file.read(4096, out);
  EXPECT_EQ(out, filled(4096, 0xaa));

  file.write_zeroes(4096, 4096, /*may_unmap=*/false);
  EXPECT_EQ(file_bytes(path_, 8192 + 4096, 4096), filled(4096, 0));
  file.write_zeroes(8192, 4096, /*may_unmap=*/true);
  EXPECT_EQ(file_bytes(path_, 8192 + 8192, 4096), filled(4096, 0));
  file.discard(0, 4096);

  // Bounds are the window's; around it the file is untouched.
  EXPECT_THROW(file.read(16384 - 2048, out), std::system_error);
  EXPECT_THROW(file.write(16384, ones, false), std::system_error);
  EXPECT_THROW(file.write_zeroes(12288, 8192, false), std::system_error);
  EXPECT_THROW(file.discard(16384, 4096), std::system_error);
  EXPECT_EQ(file_bytes(path_, 0, 8192), filled(8192, 0xaa));
  EXPECT_EQ(file_bytes(path_, 8192 + 16384, 64 * 1024 - 8192 - 16384),
            filled(64 * 1024 - 8192 - 16384, 0xaa));
  EXPECT_EQ(std::filesystem::file_size(path_), 64u * 1024);
}

TEST_F(FileBackendTest, WindowSizesAndBadWindows) {
  resize(64 * 1024);
  FileBackend::Options options;
  options.offset = 60 * 1024;
  EXPECT_EQ(FileBackend(path_, options).size(), 4096u);
  options.size_limit = 1 << 20;  // a limit past the end: the file's end
  EXPECT_EQ(FileBackend(path_, options).size(), 4096u);
  options.offset = 64 * 1024;
  EXPECT_EQ(FileBackend(path_, options).size(), 0u);

  options.offset = 64 * 1024 + 512;
  try {
    FileBackend beyond(path_, options);
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(e.code().value(), EINVAL);
    const std::string what = e.what();
    EXPECT_NE(what.find("offset 66048"), std::string::npos) << what;
    EXPECT_NE(what.find("beyond its end, 65536 bytes"), std::string::npos) << what;
    EXPECT_NE(what.find(path_), std::string::npos) << what;
  }
  options.offset = 0;
  options.size_limit = 0;
  try {
    FileBackend nothing(path_, options);
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(e.code().value(), EINVAL);
    EXPECT_NE(std::string(e.what()).find("size limit of 0"), std::string::npos) << e.what();
  }
}

TEST_F(FileBackendTest, ResizeStaysWithinTheSizeLimit) {
  fill_file(path_, 16 * 1024, 0xaa);
  FileBackend::Options options;
  options.offset = 4096;
  options.size_limit = 32 * 1024;
  FileBackend file(path_, options);
  EXPECT_EQ(file.size(), 12u * 1024);

  file.resize(32 * 1024);  // grows the file, up to the limit
  EXPECT_EQ(file.size(), 32u * 1024);
  EXPECT_EQ(std::filesystem::file_size(path_), 4096u + 32 * 1024);
  file.write(28 * 1024, filled(4096, 0x22), false);
  EXPECT_EQ(file_bytes(path_, 4096 + 28 * 1024, 4096), filled(4096, 0x22));
  try {
    file.resize(32 * 1024 + 4096);
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(e.code().value(), ENOSPC);
    EXPECT_NE(std::string(e.what()).find("size limit of 32768 bytes"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(file.size(), 32u * 1024);

  // A shrink keeps the file: what follows the window is not the device's.
  file.resize(8 * 1024);
  EXPECT_EQ(file.size(), 8u * 1024);
  EXPECT_EQ(std::filesystem::file_size(path_), 4096u + 32 * 1024);
  EXPECT_THROW(file.write(8 * 1024, filled(4096, 0x33), false), std::system_error);
  file.resize(32 * 1024);
  std::vector<std::byte> out(4096);
  file.read(28 * 1024, out);
  EXPECT_EQ(out, filled(4096, 0x22));

  // Without a limit the window is the file's tail: the file follows it.
  FileBackend::Options tail;
  tail.offset = 4096;
  FileBackend rest(path_, tail);
  EXPECT_EQ(rest.size(), 32u * 1024);
  rest.resize(8 * 1024);
  EXPECT_EQ(std::filesystem::file_size(path_), 4096u + 8 * 1024);
  rest.resize(1 << 20);
  EXPECT_EQ(std::filesystem::file_size(path_), 4096u + (1 << 20));
  EXPECT_EQ(rest.size(), 1u << 20);
}

TEST_F(FileBackendTest, DirectIo) {
  if (const std::string why = direct_io_refusal(path_); !why.empty()) {
    GTEST_SKIP() << "the file system of " << path_ << " refuses O_DIRECT: " << why;
  }
  EXPECT_EQ(FileBackend(path_).direct_io_alignment(), 1u);  // no constraint without it
  fill_file(path_, 1 << 20, 0xaa);
  FileBackend::Options options;
  options.direct_io = true;
  FileBackend file(path_, options);
  EXPECT_TRUE(file.direct_io());
  EXPECT_TRUE(file.may_block());  // every request waits for storage: worker threads
  EXPECT_TRUE(open_with_o_direct(path_)) << "direct_io must open with O_DIRECT";
  const std::uint32_t align = file.direct_io_alignment();
  EXPECT_GE(align, 2u);
  EXPECT_LE(align, 64u * 1024);
  EXPECT_EQ(align & (align - 1), 0u) << align;

  // An aligned buffer, as the server's are.
  const auto aligned = page_aligned(8192, 0x33);
  ASSERT_TRUE(aligned);
  file.write(64 * 1024, std::span<const std::byte>(aligned.get(), 8192), /*fua=*/true);
  EXPECT_EQ(file_bytes(path_, 64 * 1024, 8192), filled(8192, 0x33));
  const auto back = page_aligned(8192, 0);
  file.read(64 * 1024, std::span(back.get(), 8192));
  EXPECT_EQ(std::vector<std::byte>(back.get(), back.get() + 8192), filled(8192, 0x33));
  // A misaligned buffer goes through an aligned copy.
  std::vector<std::byte> odd(4096 + 1, std::byte{0x44});
  file.write(0, std::span<const std::byte>(odd.data() + 1, 4096), false);
  EXPECT_EQ(file_bytes(path_, 0, 4096), filled(4096, 0x44));
  std::fill(odd.begin(), odd.end(), std::byte{0});
  file.read(0, std::span(odd.data() + 1, 4096));
  EXPECT_EQ(std::vector<std::byte>(odd.begin() + 1, odd.end()), filled(4096, 0x44));
  // Offsets and lengths O_DIRECT cannot take fail clearly.
  try {
    file.read(0, std::span(back.get(), align / 2));
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(e.code().value(), EINVAL);
    EXPECT_NE(std::string(e.what()).find("the alignment O_DIRECT needs"), std::string::npos)
        << e.what();
  }
  // Zeroes, and flushes.
  file.write_zeroes(64 * 1024, 8192, false);
  EXPECT_EQ(file_bytes(path_, 64 * 1024, 8192), filled(8192, 0));
  const std::uint64_t syncs = file.syncs_issued();
  file.flush();
  EXPECT_EQ(file.syncs_issued(), syncs + 1);

  // A window: its offset must be aligned too.
  FileBackend::Options shifted = options;
  shifted.offset = align;
  FileBackend window(path_, shifted);
  EXPECT_EQ(window.size(), (1u << 20) - align);
  window.read(0, std::span(back.get(), 4096));
  EXPECT_EQ(std::vector<std::byte>(back.get(), back.get() + 4096), file_bytes(path_, align, 4096));
  shifted.offset = align / 2;
  try {
    FileBackend misaligned(path_, shifted);
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(e.code().value(), EINVAL);
    EXPECT_NE(std::string(e.what()).find("alignment O_DIRECT needs"), std::string::npos)
        << e.what();
  }

  // The file shrank under us to mid-block: the rest of the block reads as
  // zeros (the next O_DIRECT read would be misaligned).
  if (align <= 4096) {
    resize(8192 + 100);
    const auto block = page_aligned(4096, 1);
    file.read(8192, std::span(block.get(), 4096));
    for (std::size_t i = 0; i < 4096; ++i) {
      ASSERT_EQ(block[i], i < 100 ? std::byte{0xaa} : std::byte{0}) << "byte " << i;
    }
  }
}

// tmpfs has no FALLOC_FL_ZERO_RANGE: zeroes are written, through O_DIRECT
// (from an aligned buffer, which file systems stricter than tmpfs need).
TEST(FileBackendDirectIo, ZeroesWhereFallocateCannot) {
  std::string shm = "/dev/shm/dblock_test_XXXXXX";
  const int fd = ::mkstemp(shm.data());
  if (fd < 0) GTEST_SKIP() << "no /dev/shm";
  const bool zero_range = ::fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, 4096) == 0;
  ::close(fd);
  struct Remove {
    std::string path;
    ~Remove() { std::filesystem::remove(path); }
  } remove{shm};
  if (zero_range) GTEST_SKIP() << "/dev/shm has FALLOC_FL_ZERO_RANGE: no fallback to test";
  if (const std::string why = direct_io_refusal(shm); !why.empty()) {
    GTEST_SKIP() << "/dev/shm refuses O_DIRECT: " << why;
  }
  fill_file(shm, 512 * 1024, 0xff);
  FileBackend::Options options;
  options.direct_io = true;
  options.offset = 64 * 1024;
  FileBackend file(shm, options);
  ASSERT_TRUE(open_with_o_direct(shm));
  file.write_zeroes(4096, 300 * 1024, /*may_unmap=*/false);  // more than one buffer
  EXPECT_EQ(file_bytes(shm, 64 * 1024 + 4096, 300 * 1024), filled(300 * 1024, 0));
  EXPECT_EQ(file_bytes(shm, 64 * 1024, 4096), filled(4096, 0xff));
  EXPECT_EQ(file_bytes(shm, 64 * 1024 + 4096 + 300 * 1024, 4096), filled(4096, 0xff));
}

// A file system without O_DIRECT: one line saying so, with the fix.
TEST(FileBackendDirectIo, RefusalSaysWhatToDo) {
  FileBackend::Options options;
  options.read_only = true;
  options.direct_io = true;
  try {
    FileBackend proc("/proc/self/status", options);
    GTEST_SKIP() << "procfs took O_DIRECT";
  } catch (const Error& e) {
    EXPECT_EQ(e.code().value(), EINVAL);
    const std::string what = e.what();
    EXPECT_NE(what.find("the file system of /proc/self/status does not support O_DIRECT"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("fix: leave out --direct-io"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

#ifdef DBLOCK_HAVE_URING
// On a thread that lends its io_uring (a ublk queue thread, lent_ring.h),
// UringFileBackend puts its SQEs there, unsubmitted (commit() leaves them to
// the thread), and what comes back completes through the lent ring's
// complete(): a FUA write (write and fdatasync) and a read, from one file.
TEST(UringLentRing, RequestsGoThroughTheLentRing) {
  char path[] = "/tmp/dblock-lent-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(::ftruncate(fd, 1 << 20), 0);
  std::vector<std::byte> old(4096, std::byte{0x5a});
  ASSERT_EQ(::pwrite(fd, old.data(), old.size(), 8192), 4096);
  FileBackend file(path);
  ::unlink(path);
  std::unique_ptr<UringFileBackend> uring;
  io_uring ring{};
  try {
    uring = std::make_unique<UringFileBackend>(file);
  } catch (const Error& e) {
    ::close(fd);
    GTEST_SKIP() << "io_uring refused here: " << e.what();
  }
  ASSERT_EQ(::io_uring_queue_init(16, &ring, 0), 0);
  internal::LentRing lent;
  lent.ring = &ring;
  internal::lent_ring = &lent;

  std::vector<std::byte> wrote(8192, std::byte{0x6b});
  std::vector<std::byte> read(4096);
  AsyncRequest write_request;
  write_request.op = DBLOCK_OP_WRITE;
  write_request.flags = DBLOCK_REQ_FUA;
  write_request.offset = 65536;
  write_request.length = 8192;
  write_request.data = wrote;
  AsyncRequest read_request;
  read_request.op = DBLOCK_OP_READ;
  read_request.offset = 8192;
  read_request.length = 4096;
  read_request.data = read;
  uring->submit(write_request, AsyncCompletion());
  uring->submit(read_request, AsyncCompletion());
  uring->commit();
  EXPECT_EQ(lent.inflight, 3u);  // the write, its fdatasync, the read
  EXPECT_EQ(::io_uring_sq_ready(&ring), 3u) << "submitted by the backend, not by the thread";
  ASSERT_NE(lent.complete, nullptr);

  ASSERT_EQ(::io_uring_submit(&ring), 3);
  while (lent.inflight > 0) {
    io_uring_cqe* cqe = nullptr;
    ASSERT_EQ(::io_uring_wait_cqe(&ring, &cqe), 0);
    EXPECT_NE(cqe->user_data & internal::kLentBit, 0u);
    EXPECT_GE(cqe->res, 0) << std::strerror(-cqe->res);
    const io_uring_cqe copy = *cqe;
    ::io_uring_cqe_seen(&ring, cqe);
    --lent.inflight;
    lent.complete(copy.user_data, copy);
  }
  internal::lent_ring = nullptr;
  ::io_uring_queue_exit(&ring);

  EXPECT_EQ(uring->syncs_issued(), 1u) << "the FUA write's fdatasync did not complete";
  EXPECT_EQ(read, old);
  std::vector<std::byte> in_file(8192);
  ASSERT_EQ(::pread(fd, in_file.data(), in_file.size(), 65536), 8192);
  EXPECT_EQ(in_file, wrote);
  ::close(fd);
}
#endif

}  // namespace
}  // namespace dblock
