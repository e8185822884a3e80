// Copyright (c) dblock authors.
#include "dblock/systemd_notify.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "dblock/unique_fd.h"

namespace dblock {
namespace {

// A datagram socket bound where systemd's would be, NOTIFY_SOCKET naming it.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& name) : name_(name) {
    fd_ = UniqueFd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    EXPECT_TRUE(fd_);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, name.data(), name.size());
    if (name[0] == '@') address.sun_path[0] = '\0';
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<const sockaddr*>(&address), length), 0)
        << std::strerror(errno);
    ::setenv("NOTIFY_SOCKET", name.c_str(), 1);
  }
  ~NotifySocket() {
    ::unsetenv("NOTIFY_SOCKET");
    if (name_[0] == '/') ::unlink(name_.c_str());
  }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  std::string receive() const {
    char buffer[512];
    const auto got = ::recv(fd_.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
    return got < 0 ? std::string("(nothing: ") + std::strerror(errno) + ")"
                   : std::string(buffer, static_cast<std::size_t>(got));
  }

 private:
  std::string name_;
  UniqueFd fd_;
};

TEST(SystemdNotifier, DoesNothingOutsideSystemd) {
  ::unsetenv("NOTIFY_SOCKET");
  const SystemdNotifier notifier;
  EXPECT_FALSE(notifier.enabled());
  EXPECT_EQ(notifier.notify("READY=1"), "");
}

TEST(SystemdNotifier, SendsToAPathSocket) {
  const std::string path =
      (::testing::TempDir().empty() ? std::string("/tmp/") : ::testing::TempDir()) +
      "dblock-notify-" + std::to_string(::getpid());
  const NotifySocket socket(path);
  const SystemdNotifier notifier;
  ASSERT_TRUE(notifier.enabled());
  EXPECT_EQ(notifier.notify("READY=1\nSTATUS=serving /dev/x"), "");
  EXPECT_EQ(socket.receive(), "READY=1\nSTATUS=serving /dev/x");
}

TEST(SystemdNotifier, SendsToAnAbstractSocket) {
  const NotifySocket socket("@dblock-notify-test-" + std::to_string(::getpid()));
  const SystemdNotifier notifier;
  EXPECT_EQ(notifier.notify("STOPPING=1"), "");
  EXPECT_EQ(socket.receive(), "STOPPING=1");
}

TEST(SystemdNotifier, ReportsASocketThatIsGone) {
  ::setenv("NOTIFY_SOCKET", "/nonexistent/dblock-notify", 1);
  const SystemdNotifier notifier;
  const std::string error = notifier.notify("READY=1");
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_NE(error.find("NOTIFY_SOCKET /nonexistent/dblock-notify"), std::string::npos) << error;
  EXPECT_NE(error.find("No such file"), std::string::npos) << error;
}

}  // namespace
}  // namespace dblock
