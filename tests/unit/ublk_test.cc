// Copyright (c) dblock authors.
// The parts of the ublk transport that need no kernel: ADD_DEV's flags for
// a recovery policy, and serve()'s refusals of a takeover before it touches
// /dev/ublk-control.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <system_error>

#include "dblock/error.h"
#include "dblock/ram_backend.h"
#include "dblock/serve.h"
#include "ublk.h"

namespace {

using ::testing::HasSubstr;

// UBLK_F_* of <linux/ublk_cmd.h>.
constexpr std::uint64_t kUserRecovery = 1ULL << 3;
constexpr std::uint64_t kUserRecoveryReissue = 1ULL << 4;
constexpr std::uint64_t kCmdIoctlEncode = 1ULL << 6;
constexpr std::uint64_t kUpdateSize = 1ULL << 10;
constexpr std::uint64_t kAllFeatures = kUserRecovery | kUserRecoveryReissue | kCmdIoctlEncode;

// ublk_add_flags(), or a skip where libdblock was built without liburing.
#define ADD_FLAGS_OR_SKIP(out, config, features)                                      \
  try {                                                                                \
    out = dblock::internal::ublk_add_flags(config, features);                          \
  } catch (const dblock::Error& e) {                                                   \
    if (std::string(e.what()).find("without liburing") != std::string::npos) {         \
      GTEST_SKIP() << e.what();                                                        \
    }                                                                                  \
    throw;                                                                             \
  }

dblock::DeviceConfig config_with(dblock::Recovery recovery, std::uint32_t grace_ms = 0) {
  dblock::DeviceConfig c;
  c.name = "u";
  c.size_bytes = 64 << 20;
  c.recovery = recovery;
  c.grace_ms = grace_ms;
  return c;
}

TEST(UblkAddFlags, FailIsThePlainDevice) {
  std::uint64_t flags = 0;
  ADD_FLAGS_OR_SKIP(flags, config_with(dblock::Recovery::kFail), kAllFeatures);
  EXPECT_EQ(flags, kCmdIoctlEncode);
}

TEST(UblkAddFlags, WaitIsUserRecoveryWithReissue) {
  std::uint64_t flags = 0;
  ADD_FLAGS_OR_SKIP(flags, config_with(dblock::Recovery::kWait), kAllFeatures);
  EXPECT_EQ(flags, kCmdIoctlEncode | kUserRecovery | kUserRecoveryReissue);
}

TEST(UblkAddFlags, ResizableWhereTheDriverIs) {
  std::uint64_t flags = 0;
  ADD_FLAGS_OR_SKIP(flags, config_with(dblock::Recovery::kFail), kAllFeatures | kUpdateSize);
  EXPECT_EQ(flags, kCmdIoctlEncode | kUpdateSize);
}

TEST(UblkAddFlags, WaitNeedsTheDriversUserRecovery) {
  std::uint64_t flags = 0;
  // Probe for liburing first: the skip must not hide the check below.
  ADD_FLAGS_OR_SKIP(flags, config_with(dblock::Recovery::kFail), kCmdIoctlEncode);
  EXPECT_EQ(flags, kCmdIoctlEncode);  // 'fail' needs no more
  for (const std::uint64_t features :
       {kCmdIoctlEncode, kCmdIoctlEncode | kUserRecovery, kCmdIoctlEncode | kUserRecoveryReissue}) {
    try {
      dblock::internal::ublk_add_flags(config_with(dblock::Recovery::kWait), features);
      ADD_FAILURE() << "no error with features " << features;
    } catch (const dblock::Error& e) {
      EXPECT_EQ(e.code().value(), EOPNOTSUPP);
      EXPECT_THAT(e.what(), HasSubstr("fix: --recovery fail, or --transport dblock"));
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
  }
}

TEST(UblkAddFlags, AGracePeriodIsRefusedNotIgnored) {
  std::uint64_t flags = 0;
  ADD_FLAGS_OR_SKIP(flags, config_with(dblock::Recovery::kWait, 0), kAllFeatures);
  EXPECT_NE(flags & kUserRecovery, 0u);  // 0 is "never": ublk's own behaviour
  try {
    dblock::internal::ublk_add_flags(config_with(dblock::Recovery::kWait, 30'000), kAllFeatures);
    FAIL() << "a grace period was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("no grace period"));
    EXPECT_THAT(e.what(), HasSubstr("(fix: --grace never, or --transport dblock)"));
  }
}

TEST(UblkAddFlags, ARequestTimeoutIsRefusedNotIgnored) {
  std::uint64_t flags = 0;
  dblock::DeviceConfig config = config_with(dblock::Recovery::kFail);
  for (const std::uint32_t ok : {0u, dblock::kTimeoutNever}) {  // the default; ublk's own
    config.timeout_ms = ok;
    ADD_FLAGS_OR_SKIP(flags, config, kAllFeatures);
    EXPECT_EQ(flags, kCmdIoctlEncode);
  }
  for (const auto recovery : {dblock::Recovery::kFail, dblock::Recovery::kWait}) {
    config = config_with(recovery);
    config.timeout_ms = 5'000;
    try {
      dblock::internal::ublk_add_flags(config, kAllFeatures);
      ADD_FAILURE() << "a request timeout was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_THAT(e.what(), HasSubstr("no request timeout"));
      EXPECT_THAT(e.what(), HasSubstr("(fix: --timeout never, or --transport dblock)"));
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
  }
}

// --attach over ublk to a name that is no ublk disk: one line, exit 1, and
// nothing asked of the kernel (this host may have no ublk at all).
TEST(UblkServe, AttachToNoUblkDeviceIsRefusedInOneLine) {
  dblock::DeviceConfig config;
  config.name = "dblock-unit-no-such-ublk-device";
  config.size_bytes = 1 << 20;
  dblock::RamBackend backend(config.size_bytes);
  dblock::ServeOptions options;
  options.attach = true;
  options.transport = dblock::Transport::kUblk;
  options.destroy_on_signal = false;
  options.handover_on_signal = false;
  options.program = "test";
  ::testing::internal::CaptureStderr();
  const int rc = dblock::serve(config, backend, options);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(rc, 1);
  EXPECT_THAT(err, HasSubstr("cannot attach to /dev/dblock-unit-no-such-ublk-device: no ublk "
                             "device has that name"));
  EXPECT_THAT(err, HasSubstr("(fix: "));
  EXPECT_EQ(err.find('\n'), err.size() - 1) << err;
}

// The resize ask of `dblockctl resize` over ublk, between two ends in this
// process: the server's answer (done, or refused with its reason and errno)
// reaches the asker, and an asker finds out when nobody or the wrong
// process answers.  (The kernel's part, UPDATE_SIZE, runs in 66-ublk.sh.)
// Above any real ublk id, and one per test process: ctest -j runs tests
// side by side, and a service's socket is named after the id.
const std::uint32_t kUnusedId =
    4'000'000'000U + static_cast<std::uint32_t>(::getpid() % 100'000) * 4U;

int ask_errno(std::uint32_t id, int pid, std::uint64_t size, std::string* message = nullptr) {
  try {
    dblock::internal::ask_ublk_resize(id, pid, size);
  } catch (const std::system_error& e) {
    if (message != nullptr) *message = e.what();
    return e.code().value();
  }
  return 0;
}

TEST(UblkResize, TheServerResizesAndAnswers) {
  std::atomic<std::uint64_t> asked{0};
  const dblock::internal::UblkResizeService service(kUnusedId,
                                                    [&](std::uint64_t n) { asked = n; });
  EXPECT_EQ(ask_errno(kUnusedId, ::getpid(), 512 << 20), 0);
  EXPECT_EQ(asked.load(), 512U << 20);
  // One after the other: the service keeps taking asks.
  EXPECT_EQ(ask_errno(kUnusedId, ::getpid(), 768 << 20), 0);
  EXPECT_EQ(asked.load(), 768U << 20);
}

TEST(UblkResize, ARefusalReachesTheAskerWithItsErrno) {
  const dblock::internal::UblkResizeService service(kUnusedId, [](std::uint64_t) {
    throw dblock::Error(ENOSPC, "grow /srv/img to 1 GiB", "beyond its size limit");
  });
  std::string message;
  EXPECT_EQ(ask_errno(kUnusedId, ::getpid(), 1 << 30, &message), ENOSPC);
  EXPECT_THAT(message, HasSubstr("resize ublk device " + std::to_string(kUnusedId) +
                                 ": grow /srv/img to 1 GiB: "));
  EXPECT_THAT(message, HasSubstr("(beyond its size limit)"));
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(UblkResize, OnlyTheDevicesServerIsAsked) {
  std::atomic<int> calls{0};
  const dblock::internal::UblkResizeService service(kUnusedId, [&](std::uint64_t) { ++calls; });
  std::string message;
  EXPECT_EQ(ask_errno(kUnusedId, ::getpid() + 1, 1 << 30, &message), EPERM);
  EXPECT_THAT(message, HasSubstr("which is not the device's server"));
  EXPECT_EQ(calls.load(), 0);
}

TEST(UblkResize, NoServiceIsConnectionRefused) {
  std::string message;
  EXPECT_EQ(ask_errno(kUnusedId + 1, ::getpid(), 1 << 30, &message), ECONNREFUSED);
  EXPECT_THAT(message, HasSubstr("it takes no resize asks"));
  EXPECT_THAT(message, HasSubstr("(fix: "));
}

TEST(UblkResize, OneServicePerDevice) {
  const dblock::internal::UblkResizeService service(kUnusedId, [](std::uint64_t) {});
  try {
    const dblock::internal::UblkResizeService twin(kUnusedId, [](std::uint64_t) {});
    FAIL() << "a second service for one device";
  } catch (const dblock::Error& e) {
    EXPECT_EQ(e.code().value(), EADDRINUSE);
  }
}

}  // namespace
