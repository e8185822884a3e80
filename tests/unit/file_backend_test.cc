// Copyright (c) dblock authors.
#include "dblock/file_backend.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dblock/error.h"

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

TEST_F(FileBackendTest, SizeComesFromTheFile) {
  resize(1 << 20);
  EXPECT_EQ(FileBackend(path_).size(), 1u << 20);
  resize(1000);
  EXPECT_EQ(FileBackend(path_).size(), 1000u);
}

TEST_F(FileBackendTest, WriteReadFlushAndFua) {
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

}  // namespace
}  // namespace dblock
