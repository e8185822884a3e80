// Copyright (c) dblock authors.
#include "dblock/systemd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "dblock/error.h"
#include "dblock/unique_fd.h"

namespace dblock {

SystemdNotifier::SystemdNotifier() {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path != nullptr && (path[0] == '/' || path[0] == '@')) socket_path_ = path;
}

std::string SystemdNotifier::notify(std::string_view state) const {
  if (socket_path_.empty()) return {};
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof(address.sun_path)) {
    return "tell systemd: NOTIFY_SOCKET is longer than a socket path may be";
  }
  std::memcpy(address.sun_path, socket_path_.data(), socket_path_.size());
  if (address.sun_path[0] == '@') address.sun_path[0] = '\0';
  const auto length =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_path_.size());
  const UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error(errno, "tell systemd: socket(AF_UNIX)").what();
  const auto sent = ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
                             reinterpret_cast<const sockaddr*>(&address), length);
  if (sent < 0) {
    return Error(errno, "tell systemd: send to NOTIFY_SOCKET " + socket_path_).what();
  }
  return {};
}

}  // namespace dblock
