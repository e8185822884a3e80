// Copyright (c) dblock authors.
// Readiness and status for systemd (Type=notify services): sd_notify(3)'s
// datagram protocol, which systemd documents as a stable interface to
// reimplement.  Written here rather than linked from libsystemd: Debian
// ships no libsystemd.a, and the static tools must say READY=1 too.
#ifndef DBLOCK_SYSTEMD_NOTIFY_H_
#define DBLOCK_SYSTEMD_NOTIFY_H_

#include <string>
#include <string_view>

namespace dblock {

// Sends to $NOTIFY_SOCKET if it is set (systemd sets it for Type=notify
// units); does nothing otherwise.  Thread-safety: plain value.
class SystemdNotifier {
 public:
  // Reads NOTIFY_SOCKET once.
  SystemdNotifier();

  bool enabled() const { return !socket_path_.empty(); }
  // Sends `state` ("READY=1\nSTATUS=..."): an error is returned as a
  // message ("" on success) for the caller to print, never thrown: serving
  // goes on without readiness, and systemd's start timeout reports it.
  std::string notify(std::string_view state) const;

 private:
  std::string socket_path_;  // '@' first: an abstract socket
};

}  // namespace dblock

#endif  // DBLOCK_SYSTEMD_NOTIFY_H_
