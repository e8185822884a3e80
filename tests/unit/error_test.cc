// Copyright (c) dblock authors.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include <gtest/gtest.h>

#include "dblock/control_device.h"
#include "dblock/error.h"
#include "dblock/mapping.h"
#include "dblock/serve.h"
#include "dblock/unique_fd.h"

namespace dblock {
namespace {

bool fd_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(Error, MessageNamesWhatFailedAndTheErrno) {
  const Error e(EEXIST, "create device 'foo': ioctl DBLOCK_CTL_CREATE on /dev/dblockctl");
  EXPECT_STREQ(e.what(), "create device 'foo': ioctl DBLOCK_CTL_CREATE on /dev/dblockctl: File exists");
  EXPECT_EQ(e.code(), std::error_code(EEXIST, std::system_category()));
  const Error hinted(ENOENT, "open /x", "try this");
  EXPECT_STREQ(hinted.what(), "open /x: No such file or directory (try this)");
}

TEST(UniqueFd, ClosesOnDestructionAndMoves) {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(raw, 0);
  {
    UniqueFd a(raw);
    UniqueFd b(std::move(a));
    EXPECT_FALSE(a);
    EXPECT_EQ(b.get(), raw);
    UniqueFd c;
    c = std::move(b);
    EXPECT_TRUE(fd_open(raw));
    UniqueFd& same = c;  // a self-move written through a reference: -Wself-move stays quiet
    c = std::move(same);  // self-move keeps it
    EXPECT_TRUE(fd_open(raw));
  }
  EXPECT_FALSE(fd_open(raw));

  raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  UniqueFd d(raw);
  EXPECT_EQ(d.release(), raw);
  d.reset();
  EXPECT_TRUE(fd_open(raw));
  ::close(raw);
}

TEST(Mapping, MapsSharedAndUnmaps) {
  UniqueFd fd(::memfd_create("dblock_test", MFD_CLOEXEC));
  ASSERT_TRUE(fd);
  ASSERT_EQ(::ftruncate(fd.get(), 2 * 4096), 0);
  std::byte* addr = nullptr;
  {
    Mapping m(fd.get(), 4096, 4096, "memfd");
    ASSERT_EQ(m.bytes().size(), 4096u);
    m.bytes()[0] = std::byte{0x7e};
    addr = m.bytes().data();
    Mapping moved(std::move(m));
    EXPECT_TRUE(m.bytes().empty());
    EXPECT_EQ(moved.bytes().data(), addr);
  }
  char c = 0;
  ASSERT_EQ(::pread(fd.get(), &c, 1, 4096), 1);  // MAP_SHARED: the write reached the file
  EXPECT_EQ(c, 0x7e);
  unsigned char vec = 0;
  EXPECT_EQ(::mincore(addr, 4096, &vec), -1);  // unmapped
  EXPECT_EQ(errno, ENOMEM);
}

TEST(Mapping, FailureNamesTheFile) {
  UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  try {
    Mapping m(fd.get(), 4096, 0, "/dev/null");
    FAIL() << "mapped read-only /dev/null shared and writable";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/dev/null"), std::string::npos) << e.what();
  }
}

TEST(ControlDevice, MissingDeviceSuggestsLoadingTheModule) {
  try {
    ControlDevice ctl("/nonexistent/dblockctl");
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_STREQ(e.what(), "open /nonexistent/dblockctl: No such file or directory");
    // One fix, said once; only where the module's control device is missing.
    if (::access(std::string(ControlDevice::kDefaultPath).c_str(), F_OK) != 0) {
      EXPECT_EQ(explain_error(e),
                "open /nonexistent/dblockctl: No such file or directory: the dblock kernel "
                "module is not loaded (fix: sudo modprobe dblock)");
    } else {
      EXPECT_EQ(explain_error(e), e.what());
    }
  }
}

TEST(ExplainError, AnUnknownDeviceSaysWhereTheNamesAre) {
  const Error e(ENODEV, "info of device 'nosuch': ioctl DBLOCK_CTL_INFO on /dev/dblockctl");
  EXPECT_EQ(explain_error(e),
            std::string(e.what()) +
                ": no dblock device has that name or id (fix: dblockctl list shows them)");
}

TEST(ControlDevice, BadNamesAreRefusedBeforeAnyIoctl) {
  // /dev/null accepts open(); an ioctl on it would fail with ENOTTY, so
  // invalid_argument proves the check happened first.
  ControlDevice ctl("/dev/null");
  EXPECT_THROW(ctl.destroy("no/slash"), std::invalid_argument);
  EXPECT_THROW(ctl.info(""), std::invalid_argument);
  DeviceConfig bad;
  bad.name = "ok";
  EXPECT_THROW(ctl.create(bad), std::invalid_argument);  // size 0
  try {
    ctl.version();
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(e.code().value(), ENOTTY);
    EXPECT_NE(std::string(e.what()).find("DBLOCK_CTL_GET_VERSION on /dev/null"), std::string::npos);
  }
}

}  // namespace
}  // namespace dblock
