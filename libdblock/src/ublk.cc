// Copyright (c) dblock authors.
// ublk as a transport: the control device and a Server's channel over
// /dev/ublkcN (ublk.h, channel.h).  Built on liburing as Debian 12 has it
// (2.3): URING_CMD SQEs are filled in by hand.
#include "ublk.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "channel.h"
#include "dblock/error.h"
#include "dblock/mapping.h"
#include "lent_ring.h"
#include "queue_thread.h"

#ifdef DBLOCK_HAVE_URING
#include <liburing.h>
#include <linux/ublk_cmd.h>
#include <sys/ioctl.h>

// Older UAPI headers (Debian 12's are 6.1's) lack the ioctl-encoded
// commands, which ublk takes since 6.5 and requires where its legacy
// opcodes are configured out.
#ifndef UBLK_U_CMD_GET_FEATURES
#define UBLK_U_CMD_GET_DEV_INFO _IOR('u', UBLK_CMD_GET_DEV_INFO, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_ADD_DEV _IOWR('u', UBLK_CMD_ADD_DEV, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_DEL_DEV _IOWR('u', UBLK_CMD_DEL_DEV, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_START_DEV _IOWR('u', UBLK_CMD_START_DEV, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_STOP_DEV _IOWR('u', UBLK_CMD_STOP_DEV, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_SET_PARAMS _IOWR('u', UBLK_CMD_SET_PARAMS, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_GET_PARAMS _IOR('u', UBLK_CMD_GET_PARAMS, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_GET_FEATURES _IOR('u', 0x13, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_START_USER_RECOVERY _IOWR('u', UBLK_CMD_START_USER_RECOVERY, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_END_USER_RECOVERY _IOWR('u', UBLK_CMD_END_USER_RECOVERY, struct ublksrv_ctrl_cmd)
#define UBLK_U_IO_FETCH_REQ _IOWR('u', UBLK_IO_FETCH_REQ, struct ublksrv_io_cmd)
#define UBLK_U_IO_COMMIT_AND_FETCH_REQ _IOWR('u', UBLK_IO_COMMIT_AND_FETCH_REQ, struct ublksrv_io_cmd)
#endif
#ifndef UBLK_F_CMD_IOCTL_ENCODE
#define UBLK_F_CMD_IOCTL_ENCODE (1ULL << 6)
#endif
// Linux 6.11: a dead server's device fails I/O instead of holding it.
#ifndef UBLK_S_DEV_FAIL_IO
#define UBLK_S_DEV_FAIL_IO 3
#endif
// Linux 6.14: a live device resized.
#ifndef UBLK_U_CMD_UPDATE_SIZE
#define UBLK_U_CMD_UPDATE_SIZE _IOWR('u', 0x15, struct ublksrv_ctrl_cmd)
#endif
#ifndef UBLK_F_UPDATE_SIZE
#define UBLK_F_UPDATE_SIZE (1ULL << 10)
#endif
#endif  // DBLOCK_HAVE_URING

namespace dblock::internal {

bool ublk_present() {
  return ::access(std::string(kUblkControlPath).c_str(), F_OK) == 0;
}

std::optional<std::uint32_t> ublk_id_of(const std::string& name) {
  std::string disk = name;
  std::array<char, 64> target{};
  const std::string path = "/dev/" + name;
  const ssize_t n = ::readlink(path.c_str(), target.data(), target.size() - 1);
  if (n > 0) disk.assign(target.data(), static_cast<std::size_t>(n));
  constexpr std::string_view prefix = "ublkb";
  if (!disk.starts_with(prefix) || disk.size() == prefix.size() || disk.size() > prefix.size() + 9 ||
      disk.find_first_not_of("0123456789", prefix.size()) != std::string::npos) {
    return std::nullopt;
  }
  return static_cast<std::uint32_t>(std::stoul(disk.substr(prefix.size())));
}

bool ublk_destroy(std::uint32_t id, bool force) {
  const std::string disk = fmt::format("/dev/ublkb{}", id);
  if (!force) {
    const UniqueFd held(::open(disk.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC));
    if (!held && errno == EBUSY) {
      throw Error(EBUSY, fmt::format("destroy ublk device {}: open {} exclusively", id, disk),
                  "is its disk mounted or open?");
    }
  }
  UblkControl control;
  const DeviceInfo info = control.info(id);
  control.stop(id);
  // A live server deletes the device once it has seen the stop; one that
  // died (SIGKILL) left it to us.  (When it died, the kernel may have
  // stopped the device already and cleared the pid to -1.)
  if (info.server_pid <= 0 || (::kill(info.server_pid, 0) < 0 && errno == ESRCH)) {
    control.remove(id);
    return true;
  }
  return false;
}

namespace {

// The one message each way of a resize ask (SOCK_SEQPACKET: whole or not
// at all).
constexpr std::uint32_t kResizeMagic = 0x64627273;  // "dbrs"
struct ResizeAsk {
  std::uint32_t magic = kResizeMagic;
  std::uint32_t version = 1;
  std::uint64_t new_size = 0;
};
struct ResizeAnswer {
  std::int32_t error = 0;  // 0 or an errno
  std::uint32_t reserved = 0;
  std::array<char, 1024> message{};  // why not, NUL-terminated
};

// Abstract (no file, gone with its process): "\0dblock-ublk-resize-ID".
sockaddr_un resize_address(std::uint32_t id, socklen_t& length) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string name = fmt::format("dblock-ublk-resize-{}", id);
  std::memcpy(address.sun_path + 1, name.data(), name.size());
  length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return address;
}

// An error whose text is whole already (the server's).
class AnsweredError : public std::system_error {
 public:
  AnsweredError(int err, std::string message)
      : std::system_error(err, std::system_category()), message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

}  // namespace

struct UblkResizeService::State {
  std::uint32_t id = 0;
  Handler handler;
  UniqueFd listener;
  UniqueFd stop;  // an eventfd: written to end the thread
  // Last: joined before the fds close.  A small stack, as a worker's: a
  // server that locks its memory pins all of it.
  std::unique_ptr<SmallThread> thread;

  void run() const;
  void answer(int connection) const;
};

UblkResizeService::UblkResizeService(std::uint32_t id, Handler handler)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.id = id;
  s.handler = std::move(handler);
  const std::string what = fmt::format("ublk device {}: take resize asks", id);
  s.listener.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!s.listener) throw Error(errno, what + ": socket");
  socklen_t length = 0;
  const sockaddr_un address = resize_address(id, length);
  if (::bind(s.listener.get(), reinterpret_cast<const sockaddr*>(&address), length) < 0 ||
      ::listen(s.listener.get(), 4) < 0) {
    const int err = errno;
    throw Error(err, what + ": bind and listen",
                err == EADDRINUSE ? "another process takes them" : "");
  }
  s.stop.reset(::eventfd(0, EFD_CLOEXEC));
  if (!s.stop) throw Error(errno, what + ": eventfd");
  s.thread = std::make_unique<SmallThread>([&s] { s.run(); });
}

UblkResizeService::~UblkResizeService() {
  const std::uint64_t one = 1;
  (void)!::write(state_->stop.get(), &one, sizeof(one));
}

void UblkResizeService::State::run() const {
  std::array<pollfd, 2> fds{{{listener.get(), POLLIN, 0}, {stop.get(), POLLIN, 0}}};
  for (;;) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    const UniqueFd connection(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (connection) answer(connection.get());
  }
}

void UblkResizeService::State::answer(int connection) const {
  ResizeAnswer reply;
  const auto refuse = [&reply](int err, std::string_view why) {
    reply.error = err;
    const std::size_t n = std::min(why.size(), reply.message.size() - 1);
    std::memcpy(reply.message.data(), why.data(), n);
  };
  ucred peer{};
  socklen_t peer_length = sizeof(peer);
  // An asker that sends nothing does not hold up the next one for long.
  const timeval limit{5, 0};
  ResizeAsk ask;
  ask.magic = 0;
  if (::getsockopt(connection, SOL_SOCKET, SO_PEERCRED, &peer, &peer_length) < 0) {
    refuse(errno, "SO_PEERCRED failed");
  } else if (peer.uid != 0 && peer.uid != ::geteuid()) {
    refuse(EPERM, fmt::format("ublk device {}: only root or uid {} may resize it", id,
                              ::geteuid()));
  } else if (::setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit)) < 0 ||
             ::recv(connection, &ask, sizeof(ask), 0) != sizeof(ask) ||
             ask.magic != kResizeMagic || ask.version != 1) {
    refuse(EPROTO, fmt::format("ublk device {}: a resize ask that is not one", id));
  } else {
    try {
      handler(ask.new_size);
    } catch (const std::system_error& e) {
      refuse(e.code().value(), e.what());
    } catch (const std::exception& e) {
      refuse(EINVAL, e.what());
    }
  }
  (void)!::send(connection, &reply, sizeof(reply), MSG_NOSIGNAL);
}

void ask_ublk_resize(std::uint32_t id, int server_pid, std::uint64_t new_size) {
  const std::string what =
      fmt::format("resize ublk device {} to {} bytes: ask its server (pid {})", id, new_size,
                  server_pid);
  const UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) throw Error(errno, what + ": socket");
  socklen_t length = 0;
  const sockaddr_un address = resize_address(id, length);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), length) < 0) {
    const int err = errno;
    throw Error(err, what,
                err == ECONNREFUSED || err == ENOENT
                    ? "it takes no resize asks: not a libdblock server, one older than this "
                      "dblockctl, or in another network namespace (fix: run dblockctl in the "
                      "server's, or stop the server and serve the device again with the new "
                      "size)"
                    : "");
  }
  ucred peer{};
  socklen_t peer_length = sizeof(peer);
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &peer, &peer_length) < 0) {
    throw Error(errno, what + ": SO_PEERCRED");
  }
  if (peer.pid != server_pid) {
    throw Error(EPERM, what, fmt::format("pid {} answered, which is not the device's server",
                                         peer.pid));
  }
  const ResizeAsk ask{kResizeMagic, 1, new_size};
  if (::send(fd.get(), &ask, sizeof(ask), MSG_NOSIGNAL) != sizeof(ask)) {
    throw Error(errno, what + ": send");
  }
  ResizeAnswer reply;
  ssize_t n;
  do {
    n = ::recv(fd.get(), &reply, sizeof(reply), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw Error(errno, what + ": recv");
  if (n != sizeof(reply)) {
    throw Error(EPROTO, what, "the server hung up without an answer: did it die?");
  }
  if (reply.error != 0) {
    reply.message.back() = '\0';
    throw AnsweredError(reply.error, fmt::format("resize ublk device {}: {}", id,
                                                 reply.message.data()));
  }
}

void resize_ublk(std::uint32_t id, std::uint64_t new_size) {
  UblkControl control;
  if (!control.can_resize()) {
    throw Error(EOPNOTSUPP, fmt::format("resize ublk device {}", id),
                "this kernel's ublk has no online resize, UBLK_U_CMD_UPDATE_SIZE came in Linux "
                "6.14; fix: stop its server and serve it again with the new size, or use "
                "--transport dblock");
  }
  const DeviceInfo info = control.info(id);
  if (info.server_pid <= 0 || info.state != DeviceState::kLive) {
    throw Error(ENXIO, fmt::format("resize ublk device {}", id),
                "it has no server to grow its backend (fix: give it one with dblock-serve "
                "--attach, then resize)");
  }
  ask_ublk_resize(id, info.server_pid, new_size);
}

std::vector<DeviceInfo> ublk_list() {
  std::vector<std::uint32_t> ids;
  std::vector<std::pair<std::uint32_t, std::string>> links;  // ublkbN <- /dev/NAME
  const std::unique_ptr<DIR, int (*)(DIR*)> dev(::opendir("/dev"), ::closedir);
  if (!dev) throw Error(errno, "list ublk devices: opendir /dev");
  while (const dirent* e = ::readdir(dev.get())) {
    const std::string name = e->d_name;
    constexpr std::string_view channel = "ublkc";
    if (name.starts_with(channel) && name.size() > channel.size() &&
        name.find_first_not_of("0123456789", channel.size()) == std::string::npos) {
      ids.push_back(static_cast<std::uint32_t>(std::stoul(name.substr(channel.size()))));
    } else if (e->d_type == DT_LNK) {
      if (const auto id = ublk_id_of(name); id && !name.starts_with("ublkb")) {
        links.emplace_back(*id, name);
      }
    }
  }
  std::sort(ids.begin(), ids.end());
  std::vector<DeviceInfo> out;
  if (ids.empty()) return out;
  UblkControl control;
  for (const std::uint32_t id : ids) {
    DeviceInfo info;
    try {
      info = control.info(id);
    } catch (const Error& e) {
      if (e.code().value() == ENODEV) continue;  // deleted while listing
      throw;
    }
    for (const auto& [link_id, link] : links) {
      if (link_id == id) info.config.name = link;
    }
    struct stat st {};
    if (::stat(fmt::format("/dev/ublkb{}", id).c_str(), &st) == 0 && S_ISBLK(st.st_mode)) {
      info.disk_major = major(st.st_rdev);
      info.disk_minor = minor(st.st_rdev);
    }
    out.push_back(std::move(info));
  }
  return out;
}

#ifdef DBLOCK_HAVE_URING
namespace {

constexpr std::uint32_t kAnyDevice = std::numeric_limits<std::uint32_t>::max();
constexpr std::uint16_t kNoQueue = std::numeric_limits<std::uint16_t>::max();
constexpr std::uint32_t kMaxDiscardSectors = std::numeric_limits<std::uint32_t>::max() >> 9;

std::uint8_t shift_of(std::uint32_t bytes) {
  return static_cast<std::uint8_t>(std::countr_zero(bytes));
}

std::size_t page_round(std::size_t bytes) {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}

// A URING_CMD SQE (128 bytes: the ring is IORING_SETUP_SQE128) carrying
// `payload` in its command area.
template <typename Payload>
void prep_command(io_uring_sqe* sqe, int fd, std::uint32_t op, const Payload& payload,
                  std::uint64_t user_data) {
  static_assert(sizeof(Payload) <= 80, "a URING_CMD carries at most 80 bytes");
  std::memset(static_cast<void*>(sqe), 0, 2 * sizeof(io_uring_sqe));
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = fd;
  sqe->cmd_op = op;
  sqe->user_data = user_data;
  // The command area runs on past the 64-byte struct into the SQE's second
  // half.  GCC 16 bounds a pointer derived from the struct by it (and warns
  // of an overflow): the empty asm makes the pointer opaque to it.
  auto* area = reinterpret_cast<unsigned char*>(sqe) + offsetof(io_uring_sqe, addr3);
  asm("" : "+r"(area));
  std::memcpy(area, &payload, sizeof(payload));
}

// An io_uring with 128-byte SQEs (and `flags`), torn down with its owner.
struct Uring {
  explicit Uring(unsigned entries, const std::string& what, unsigned flags = 0) {
    io_uring_params params{};
    params.flags = IORING_SETUP_SQE128 | flags;
    int rc = ::io_uring_queue_init_params(entries, &ring, &params);
    if (rc == -EINVAL && flags != 0) {
      // A kernel without one of them (DEFER_TASKRUN came in 6.1, ublk in 6.0).
      params = io_uring_params{};
      params.flags = IORING_SETUP_SQE128;
      rc = ::io_uring_queue_init_params(entries, &ring, &params);
    }
    if (rc < 0) {
      throw Error(-rc, fmt::format("{}: io_uring_queue_init_params", what),
                  -rc == EPERM ? "io_uring is not allowed here, by a container's seccomp profile "
                                 "or kernel.io_uring_disabled; fix: use --transport dblock"
                               : "");
    }
  }
  Uring(const Uring&) = delete;
  Uring& operator=(const Uring&) = delete;
  ~Uring() { ::io_uring_queue_exit(&ring); }

  io_uring ring{};
};

}  // namespace

struct UblkControl::Ring : Uring {
  using Uring::Uring;
};

UblkControl::UblkControl() {
  const std::string path(kUblkControlPath);
  fd_.reset(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd_) {
    const int err = errno;
    throw Error(err, fmt::format("ublk: open {}", path),
                err == ENOENT   ? "fix: load the kernel's ublk driver: sudo modprobe ublk_drv"
                : err == EACCES ? "fix: run it as root"
                                : "");
  }
  ring_ = std::make_unique<Ring>(4, "ublk: control ring");
  std::uint64_t features = 0;
  const int rc = command(UBLK_U_CMD_GET_FEATURES, 0, &features, sizeof(features), 0);
  if (rc < 0) {
    throw Error(-rc, "ublk: UBLK_U_CMD_GET_FEATURES",
                "this kernel's ublk is older than Linux 6.5; fix: use --transport dblock");
  }
  features_ = features;
  if ((features_ & UBLK_F_CMD_IOCTL_ENCODE) == 0) {
    throw Error(EOPNOTSUPP, "ublk: the driver lacks UBLK_F_CMD_IOCTL_ENCODE",
                "fix: use --transport dblock");
  }
}

UblkControl::~UblkControl() = default;

int UblkControl::command(std::uint32_t op, std::uint32_t id, void* buffer, std::uint16_t length,
                         std::uint64_t data) {
  io_uring* ring = &ring_->ring;
  io_uring_sqe* sqe = ::io_uring_get_sqe(ring);
  if (sqe == nullptr) return -EBUSY;
  ublksrv_ctrl_cmd cmd{};
  cmd.dev_id = id;
  cmd.queue_id = kNoQueue;
  cmd.addr = reinterpret_cast<std::uintptr_t>(buffer);
  cmd.len = length;
  cmd.data[0] = data;
  prep_command(sqe, fd_.get(), op, cmd, op);
  int rc;
  do {
    rc = ::io_uring_submit_and_wait(ring, 1);
  } while (rc == -EINTR);
  if (rc < 0) return rc;
  io_uring_cqe* cqe = nullptr;
  do {
    rc = ::io_uring_wait_cqe(ring, &cqe);
  } while (rc == -EINTR);
  if (rc < 0) return rc;
  const int res = cqe->res;
  ::io_uring_cqe_seen(ring, cqe);
  return res;
}

std::uint64_t ublk_add_flags(const DeviceConfig& config, std::uint64_t features) {
  // Resizable where the driver can (its server then takes resize asks).
  std::uint64_t flags = UBLK_F_CMD_IOCTL_ENCODE | (features & UBLK_F_UPDATE_SIZE);
  const std::string what = fmt::format("ublk: add a device for '{}'", config.name);
  // ublk fails no request its server holds, however long (0 is dblock.ko's
  // default of 30 s, not asked for): a time limit would be ignored.
  if (config.timeout_ms != 0 && config.timeout_ms != kTimeoutNever) {
    throw std::invalid_argument(fmt::format(
        "{}: ublk never fails a request its server holds, it has no request timeout "
        "(fix: --timeout never, or --transport dblock)",
        what));
  }
  if (config.recovery != Recovery::kWait) return flags;
  // 'wait': the kernel holds the I/O of a server that died, and hands it
  // (again, REISSUE) to the next one (--attach).
  if (config.grace_ms != 0) {
    throw std::invalid_argument(fmt::format(
        "{}: ublk holds a dead server's I/O with no time limit, it has no grace period "
        "(fix: --grace never, or --transport dblock)",
        what));
  }
  constexpr std::uint64_t kRecovery = UBLK_F_USER_RECOVERY | UBLK_F_USER_RECOVERY_REISSUE;
  if ((features & kRecovery) != kRecovery) {
    throw Error(EOPNOTSUPP,
                fmt::format("{}: this kernel's ublk has no user recovery "
                            "(UBLK_F_USER_RECOVERY_REISSUE) for the 'wait' policy",
                            what),
                "fix: --recovery fail, or --transport dblock");
  }
  return flags | kRecovery;
}

std::uint32_t UblkControl::add(const DeviceConfig& config) {
  const std::string what = fmt::format("ublk: add a device for '{}'", config.name);
  const std::uint64_t flags = ublk_add_flags(config, features_);
  if (config.queue_depth > UBLK_MAX_QUEUE_DEPTH) {
    throw std::invalid_argument(
        fmt::format("{}: depth {} is above ublk's {}", what, config.queue_depth,
                    UBLK_MAX_QUEUE_DEPTH));
  }
  const std::uint32_t physical = std::max(config.physical_block_size, config.block_size);
  const std::uint32_t io_opt = config.io_opt_bytes != 0 ? config.io_opt_bytes : physical;
  if (!std::has_single_bit(physical) || !std::has_single_bit(io_opt)) {
    throw std::invalid_argument(fmt::format(
        "{}: ublk takes powers of two for the physical block and the optimal I/O size", what));
  }

  ublksrv_ctrl_dev_info dev{};
  dev.nr_hw_queues = config.queues;
  dev.queue_depth = config.queue_depth;
  dev.max_io_buf_bytes = config.max_io_bytes;
  dev.dev_id = kAnyDevice;
  dev.ublksrv_pid = ::getpid();
  dev.flags = flags;
  int rc = command(UBLK_U_CMD_ADD_DEV, kAnyDevice, &dev, sizeof(dev), 0);
  if (rc < 0) throw Error(-rc, fmt::format("{}: UBLK_U_CMD_ADD_DEV", what));
  const std::uint32_t id = dev.dev_id;

  ublk_params params{};
  params.len = sizeof(params);
  params.types = UBLK_PARAM_TYPE_BASIC;
  ublk_param_basic& basic = params.basic;
  if (config.read_only) basic.attrs |= UBLK_ATTR_READ_ONLY;
  if (config.flush) basic.attrs |= UBLK_ATTR_VOLATILE_CACHE | UBLK_ATTR_FUA;
  basic.logical_bs_shift = shift_of(config.block_size);
  basic.physical_bs_shift = shift_of(physical);
  basic.io_min_shift = shift_of(physical);
  basic.io_opt_shift = shift_of(io_opt);
  basic.max_sectors = std::min(config.max_io_bytes, dev.max_io_buf_bytes) >> 9;
  basic.dev_sectors = config.size_bytes >> 9;
  if (config.discard || config.write_zeroes) {
    params.types |= UBLK_PARAM_TYPE_DISCARD;
    ublk_param_discard& discard = params.discard;
    discard.discard_granularity =
        config.discard_granularity != 0 ? config.discard_granularity : config.block_size;
    discard.max_discard_segments = 1;
    if (config.discard) {
      discard.max_discard_sectors =
          config.max_discard_bytes != 0 ? config.max_discard_bytes >> 9 : kMaxDiscardSectors;
    }
    if (config.write_zeroes) {
      discard.max_write_zeroes_sectors = config.max_write_zeroes_bytes != 0
                                             ? config.max_write_zeroes_bytes >> 9
                                             : kMaxDiscardSectors;
    }
  }
  rc = command(UBLK_U_CMD_SET_PARAMS, id, &params, sizeof(params), 0);
  if (rc < 0) {
    const int err = -rc;
    remove(id);
    throw Error(err, fmt::format("{}: UBLK_U_CMD_SET_PARAMS on device {}", what, id));
  }
  return id;
}

void UblkControl::start(std::uint32_t id) {
  const int rc =
      command(UBLK_U_CMD_START_DEV, id, nullptr, 0, static_cast<std::uint64_t>(::getpid()));
  if (rc < 0) throw Error(-rc, fmt::format("ublk: UBLK_U_CMD_START_DEV on device {}", id));
}

void UblkControl::start_recovery(std::uint32_t id) {
  // EBUSY until the kernel has seen the old server go (its /dev/ublkcID
  // closed) and quiesced the device, which waits for the requests in
  // flight: seen to take 30 s, their timeout, on 6.12-rt.
  constexpr int kAttempts = 900;
  constexpr auto kRetry = std::chrono::milliseconds(100);
  for (int attempt = 1;; ++attempt) {
    const int rc = command(UBLK_U_CMD_START_USER_RECOVERY, id, nullptr, 0, 0);
    if (rc == 0) return;
    if (rc == -EBUSY && attempt < kAttempts) {
      std::this_thread::sleep_for(kRetry);
      continue;
    }
    throw Error(-rc, fmt::format("ublk: UBLK_U_CMD_START_USER_RECOVERY on device {}", id),
                rc == -EBUSY ? "its server still has /dev/ublkc" + std::to_string(id) +
                                   " open (fix: stop that process)"
                : rc == -EINVAL
                    ? "it was not created with the 'wait' recovery policy, or a takeover "
                      "failed half-way (fix: dblockctl destroy it and create it again)"
                    : "");
  }
}

void UblkControl::end_recovery(std::uint32_t id) {
  const int rc = command(UBLK_U_CMD_END_USER_RECOVERY, id, nullptr, 0,
                         static_cast<std::uint64_t>(::getpid()));
  if (rc < 0) throw Error(-rc, fmt::format("ublk: UBLK_U_CMD_END_USER_RECOVERY on device {}", id));
}

void UblkControl::stop(std::uint32_t id) {
  const int rc = command(UBLK_U_CMD_STOP_DEV, id, nullptr, 0, 0);
  if (rc < 0) throw Error(-rc, fmt::format("ublk: UBLK_U_CMD_STOP_DEV on device {}", id));
}

void UblkControl::remove(std::uint32_t id) {
  const int rc = command(UBLK_U_CMD_DEL_DEV, id, nullptr, 0, 0);
  if (rc < 0) throw Error(-rc, fmt::format("ublk: UBLK_U_CMD_DEL_DEV on device {}", id));
}

bool UblkControl::can_resize() const { return (features_ & UBLK_F_UPDATE_SIZE) != 0; }

void UblkControl::set_size(std::uint32_t id, std::uint64_t bytes) {
  const std::string what = fmt::format("ublk: UBLK_U_CMD_UPDATE_SIZE on device {}", id);
  if (!can_resize()) throw Error(EOPNOTSUPP, what, "Linux 6.14 or later has it");
  const int rc = command(UBLK_U_CMD_UPDATE_SIZE, id, nullptr, 0, bytes >> 9);
  if (rc < 0) throw Error(-rc, what);
}

DeviceInfo UblkControl::info(std::uint32_t id) {
  ublksrv_ctrl_dev_info dev{};
  int rc = command(UBLK_U_CMD_GET_DEV_INFO, id, &dev, sizeof(dev), 0);
  if (rc < 0) throw Error(-rc, fmt::format("ublk: UBLK_U_CMD_GET_DEV_INFO on device {}", id));
  ublk_params params{};
  params.len = sizeof(params);
  rc = command(UBLK_U_CMD_GET_PARAMS, id, &params, sizeof(params), 0);
  if (rc < 0) throw Error(-rc, fmt::format("ublk: UBLK_U_CMD_GET_PARAMS on device {}", id));

  DeviceInfo info;
  DeviceConfig& c = info.config;
  c.name = fmt::format("ublkb{}", id);
  c.size_bytes = params.basic.dev_sectors << 9;
  c.block_size = 1U << params.basic.logical_bs_shift;
  c.physical_block_size = 1U << params.basic.physical_bs_shift;
  c.io_opt_bytes = 1U << params.basic.io_opt_shift;
  c.max_io_bytes = params.basic.max_sectors << 9;
  c.queues = dev.nr_hw_queues;
  c.queue_depth = dev.queue_depth;
  c.read_only = (params.basic.attrs & UBLK_ATTR_READ_ONLY) != 0;
  c.flush = (params.basic.attrs & UBLK_ATTR_VOLATILE_CACHE) != 0;
  if (params.types & UBLK_PARAM_TYPE_DISCARD) {
    c.discard = params.discard.max_discard_sectors != 0;
    c.write_zeroes = params.discard.max_write_zeroes_sectors != 0;
    c.discard_granularity = params.discard.discard_granularity;
    c.max_discard_bytes = params.discard.max_discard_sectors << 9;
    c.max_write_zeroes_bytes = params.discard.max_write_zeroes_sectors << 9;
  }
  c.recovery = (dev.flags & UBLK_F_USER_RECOVERY) != 0 ? Recovery::kWait : Recovery::kFail;
  c.timeout_ms = kTimeoutNever;  // ublk fails no request its server holds
  info.id = id;
  info.transport = Transport::kUblk;
  // Quiesced (or failing I/O): its disk is there, its server gone.
  const bool serverless = dev.state == UBLK_S_DEV_QUIESCED || dev.state == UBLK_S_DEV_FAIL_IO;
  info.state = dev.state == UBLK_S_DEV_LIVE || serverless ? DeviceState::kLive
               : dev.state == UBLK_S_DEV_DEAD             ? DeviceState::kDead
                                                          : DeviceState::kCreated;
  info.server_pid = serverless ? 0 : dev.ublksrv_pid;
  info.buffer_bytes = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(std::uint64_t{c.queue_depth} * c.max_io_bytes,
                              std::numeric_limits<std::uint32_t>::max()));
  return info;
}

namespace {

// user_data of the read that a kick ends (a tag is below 4096).
constexpr std::uint64_t kKickData = std::numeric_limits<std::uint64_t>::max();

// A Server's view of /dev/ublkcN: per queue, an io_uring in which every tag
// has a FETCH_REQ or COMMIT_AND_FETCH_REQ outstanding, the kernel's request
// descriptors (mapped read-only), the data buffer whose slot tag x
// max_io_bytes each tag's commands name, and an eventfd whose pending read
// a kick ends.
class UblkChannel final : public Channel {
 public:
  explicit UblkChannel(std::uint32_t id)
      : id_(id), path_(fmt::format("/dev/ublkc{}", id)), info_(control_.info(id)) {
    context_ = fmt::format("serve ublk device {}", id);
    // A live disk with no server: a takeover, after start_recovery().
    recovering_ = info_.state == DeviceState::kLive && info_.server_pid == 0;
    fd_.reset(::open(path_.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd_) {
      const int err = errno;
      throw Error(err, fmt::format("{}: open {}", context_, path_),
                  err == EBUSY ? "another server is attached" : "");
    }
    const DeviceConfig& c = info_.config;
    const std::size_t descs = page_round(std::size_t{c.queue_depth} * sizeof(ublksrv_io_desc));
    const std::size_t stride = page_round(UBLK_MAX_QUEUE_DEPTH * sizeof(ublksrv_io_desc));
    // Room for a commit per tag, the kick, and the SQEs of a batch's
    // requests that a backend puts in the queue's ring (lent_ring.h: at most
    // two each).
    const unsigned entries = std::bit_ceil(3 * unsigned{c.queue_depth} + 1);
    queues_.reserve(c.queues);
    for (std::uint16_t q = 0; q < c.queues; ++q) {
      const std::string what = fmt::format("{} (queue {})", path_, q);
      auto queue = std::make_unique<Queue>(entries, what);
      queue->descs = Mapping(fd_.get(), descs,
                             static_cast<off_t>(UBLKSRV_CMD_BUF_OFFSET + q * stride), what, false);
      queue->buffer = Mapping::anonymous(std::size_t{c.queue_depth} * c.max_io_bytes, what);
      queue->kick.reset(::eventfd(0, EFD_CLOEXEC));
      if (!queue->kick) {
        const int err = errno;
        throw Error(err, fmt::format("{}: eventfd", what));
      }
      queue->lengths.assign(c.queue_depth, 0);
      queue->rw.assign(c.queue_depth, false);
      queue->given.assign(c.queue_depth, false);
      queues_.push_back(std::move(queue));
    }
  }

  DeviceInfo info() override {
    DeviceInfo now = control_.info(id_);
    now.backend = info_.backend;
    return now;
  }

  std::span<std::byte> buffer(std::uint16_t queue) override {
    return queues_.at(queue)->buffer.bytes();
  }

  bool serve(dblock_serve& s) override {
    Queue& q = *queues_.at(s.queue);
    io_uring* ring = &q.ring.ring;
    const std::uint16_t depth = info_.config.queue_depth;
    s.nr_requests = 0;
    s.nr_rejected = 0;
    s.status = 0;

    if (!q.enabled) enable(q, s.queue);
    const auto* completions = reinterpret_cast<const dblock_completion*>(s.completions_ptr);
    for (std::uint32_t i = 0; i < s.nr_completions; ++i) {
      const dblock_completion& c = completions[i];
      if (c.tag >= depth || !q.given[c.tag]) {
        ++s.nr_rejected;
        continue;
      }
      // ublk counts the bytes of a read or write done: all of them, or an
      // error.
      const int result = (c.result == 0 && q.rw[c.tag]) ? static_cast<int>(q.lengths[c.tag])
                                                          : c.result;
      q.given[c.tag] = false;
      io(q, UBLK_U_IO_COMMIT_AND_FETCH_REQ, s.queue, c.tag, result);
    }
    if (!q.fetching) {
      for (std::uint16_t tag = 0; tag < depth; ++tag) io(q, UBLK_U_IO_FETCH_REQ, s.queue, tag, 0);
      q.fetching = true;
    }
    if (!q.kick_armed) {
      io_uring_sqe* sqe = ::io_uring_get_sqe(ring);
      std::memset(static_cast<void*>(sqe), 0, 2 * sizeof(io_uring_sqe));
      ::io_uring_prep_read(sqe, q.kick.get(), &q.kick_count, sizeof(q.kick_count), 0);
      sqe->user_data = kKickData;
      q.kick_armed = true;
    }

    const bool wait = (s.flags & DBLOCK_SERVE_NOWAIT) == 0 && s.max_requests > 0;
    const int rc = ::io_uring_submit_and_wait(ring, wait ? 1 : 0);
    if (rc == -EINTR) return false;
    if (rc < 0) {
      throw Error(-rc, fmt::format("{}: io_uring_submit_and_wait (queue {})", context_, s.queue));
    }
    // When stopping (no new requests wanted), what the kernel hands us now
    // stays in the ring: the kernel fails or requeues it when we close.
    if (s.max_requests == 0) {
      reap_lent(q);
      return true;
    }

    unsigned head = 0;
    unsigned seen = 0;
    int error = 0;
    bool aborted = false;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(ring, head, cqe) {
      if (cqe->user_data == kKickData) {
        ++seen;
        q.kick_armed = false;
        continue;
      }
      if ((cqe->user_data & kLentBit) != 0) {
        ++seen;
        complete_lent(q, *cqe);
        continue;
      }
      if (s.nr_requests == s.max_requests) break;
      ++seen;
      const auto tag = static_cast<std::uint16_t>(cqe->user_data);
      if (cqe->res == UBLK_IO_RES_ABORT) {
        aborted = true;
        continue;
      }
      if (cqe->res != UBLK_IO_RES_OK || tag >= depth) {
        error = cqe->res < 0 ? -cqe->res : EPROTO;
        continue;
      }
      dblock_request r = request(q, tag);
      std::memcpy(reinterpret_cast<unsigned char*>(s.requests_ptr) +
                      std::size_t{s.nr_requests} * s.request_size,
                  &r, sizeof(r));
      ++s.nr_requests;
    }
    ::io_uring_cq_advance(ring, seen);
    if (error != 0) {
      throw Error(error, fmt::format("{}: a fetch or commit of queue {} failed", context_,
                                     s.queue));
    }
    if (aborted) {
      if (still_live()) {
        // Not a stop: 6.12's ublk cancels a dead server's commands after it
        // has quiesced the disk, outside its lock, and can so cancel those of
        // the server that took the disk over meanwhile.  Going on would stop
        // (and delete) a disk that holds I/O for a server: leave it to the next.
        throw Error(ECANCELED,
                    fmt::format("{}: the kernel canceled queue {}'s commands while the disk "
                                "stays live: leaving it held for the next server",
                                context_, s.queue),
                    "fix: take it over with dblock-serve NAME --attach");
      }
      s.status |= DBLOCK_SERVE_GONE;
    }
    return true;
  }

  bool reap(std::uint16_t queue) override {
    Queue& q = *queues_.at(queue);
    if (q.lent.inflight == 0) return false;
    const int rc = ::io_uring_submit_and_wait(&q.ring.ring, 1);
    if (rc < 0 && rc != -EINTR) {
      throw Error(-rc, fmt::format("{}: io_uring_submit_and_wait (queue {})", context_, queue));
    }
    reap_lent(q);
    return true;
  }

  void kick(std::uint16_t queue) noexcept override {
    const std::uint64_t one = 1;
    (void)!::write(queues_.at(queue)->kick.get(), &one, sizeof(one));
  }

  std::unique_ptr<Running> take_resizes(ResizeHandler resize) override {
    if (!control_.can_resize()) return nullptr;
    return std::make_unique<UblkResizeService>(id_, std::move(resize));
  }

  // From the resize service's thread: a control ring of its own.
  void set_size(std::uint64_t bytes) override { UblkControl().set_size(id_, bytes); }

  bool start() override {
    if (recovering_) {
      control_.end_recovery(id_);
      recovering_ = false;
      return false;
    }
    control_.start(id_);
    return true;
  }

 private:
  struct Queue {
    // As the kernel's ublk servers set theirs up: the queue's thread alone
    // submits (SINGLE_ISSUER, enabled from that thread: R_DISABLED), and the
    // kernel runs the ring's task work when that thread waits for
    // completions (DEFER_TASKRUN, COOP_TASKRUN), not by interrupting it with
    // an IPI for every request it dispatches to the queue.  TASKRUN_FLAG
    // says when there is such work, so that liburing enters the kernel for
    // it in a SERVE that does not wait, too (a queue whose backend keeps
    // completing requests from other threads may never wait).
    Queue(unsigned entries, const std::string& what)
        : ring(entries, what,
               IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
                   IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                   IORING_SETUP_R_DISABLED) {}
    Uring ring;
    Mapping descs;
    Mapping buffer;
    UniqueFd kick;
    std::uint64_t kick_count = 0;
    bool kick_armed = false;
    bool fetching = false;
    bool enabled = false;  // by its thread: see Queue()
    std::vector<std::uint32_t> lengths;  // of each tag's read or write
    std::vector<bool> rw;                // whether it is a read or write
    std::vector<bool> given;             // with the server, to be answered
    LentRing lent;                       // this ring, as a backend sees it
  };

  // On the queue's thread, before its first submission: the ring becomes
  // this thread's (a ring set up without R_DISABLED is enabled already), and
  // /dev/ublkcN its fixed file 0, so that a command takes no file reference.
  void enable(Queue& q, std::uint16_t queue) {
    io_uring* ring = &q.ring.ring;
    if ((ring->flags & IORING_SETUP_R_DISABLED) != 0) {
      // The raw call: bookworm's liburing 2.3 declares io_uring_enable_rings()
      // but does not export it.
      if (::syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr,
                    0) < 0) {
        const int err = errno;
        throw Error(err,
                    fmt::format("{}: IORING_REGISTER_ENABLE_RINGS (queue {})", context_, queue));
      }
    }
    const int fd = fd_.get();
    const int rc = ::io_uring_register_files(ring, &fd, 1);
    if (rc < 0) {
      throw Error(-rc, fmt::format("{}: io_uring_register_files (queue {})", context_, queue));
    }
    q.enabled = true;
    // From now on a backend may put its SQEs in this ring (lent_ring.h).
    q.lent.ring = ring;
    lent_ring = &q.lent;
  }

  // A CQE of an SQE a backend put in the queue's ring, to the backend.
  static void complete_lent(Queue& q, const io_uring_cqe& cqe) {
    --q.lent.inflight;
    q.lent.complete(cqe.user_data, cqe);
  }

  // When no new requests are wanted (stopping): the CQEs there are go to
  // the backend, or are dropped (a request fetched now stays with the
  // kernel, which fails or requeues it when the channel closes).
  void reap_lent(Queue& q) {
    unsigned head = 0;
    unsigned seen = 0;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(&q.ring.ring, head, cqe) {
      ++seen;
      if (cqe->user_data == kKickData) {
        q.kick_armed = false;
      } else if ((cqe->user_data & kLentBit) != 0) {
        complete_lent(q, *cqe);
      }
    }
    ::io_uring_cq_advance(&q.ring.ring, seen);
  }

  // FETCH_REQ or COMMIT_AND_FETCH_REQ for `tag`: its data goes to and from
  // its slot of the queue's buffer.
  void io(Queue& q, std::uint32_t op, std::uint16_t queue, std::uint16_t tag, int result) {
    io_uring_sqe* sqe = ::io_uring_get_sqe(&q.ring.ring);
    if (sqe == nullptr) {
      // Cannot happen: the ring has room for every tag and the kick.
      throw Error(EOVERFLOW, fmt::format("{}: queue {}'s ring is full", context_, queue));
    }
    ublksrv_io_cmd cmd{};
    cmd.q_id = queue;
    cmd.tag = tag;
    cmd.result = result;
    cmd.addr = reinterpret_cast<std::uintptr_t>(q.buffer.bytes().data()) +
               std::uint64_t{tag} * info_.config.max_io_bytes;
    prep_command(sqe, 0, op, cmd, tag);  // fixed file 0: /dev/ublkcN
    sqe->flags |= IOSQE_FIXED_FILE;
  }

  // The request the kernel put in `tag`'s descriptor, in dblock's terms.
  dblock_request request(Queue& q, std::uint16_t tag) const {
    const auto* descs = reinterpret_cast<const ublksrv_io_desc*>(q.descs.bytes().data());
    ublksrv_io_desc d{};
    std::memcpy(&d, &descs[tag], sizeof(d));
    const std::uint32_t flags = d.op_flags >> 8;
    dblock_request r{};
    r.tag = tag;
    r.offset = d.start_sector << 9;
    r.length = d.nr_sectors << 9;
    switch (d.op_flags & 0xff) {
      case UBLK_IO_OP_READ:
        r.op = DBLOCK_OP_READ;
        break;
      case UBLK_IO_OP_WRITE:
        r.op = DBLOCK_OP_WRITE;
        if (flags & (UBLK_IO_F_FUA >> 8)) r.flags |= DBLOCK_REQ_FUA;
        break;
      case UBLK_IO_OP_FLUSH:
        r.op = DBLOCK_OP_FLUSH;
        r.length = 0;
        break;
      case UBLK_IO_OP_DISCARD:
        r.op = DBLOCK_OP_DISCARD;
        break;
      case UBLK_IO_OP_WRITE_ZEROES:
        r.op = DBLOCK_OP_WRITE_ZEROES;
        if (flags & (UBLK_IO_F_NOUNMAP >> 8)) r.flags |= DBLOCK_REQ_NOUNMAP;
        break;
      default:
        r.op = 0xff;  // refused by the request checks with EIO
        break;
    }
    const bool rw = r.op == DBLOCK_OP_READ || r.op == DBLOCK_OP_WRITE;
    q.rw[tag] = rw;
    q.lengths[tag] = rw ? r.length : 0;
    q.given[tag] = true;
    return r;
  }

  // The disk is there and not stopping (stopped, deleted or gone with its
  // server, it is DEAD or unknown).  Any queue thread may ask: a control
  // ring of its own.
  bool still_live() const {
    try {
      return UblkControl().info(id_).state == DeviceState::kLive;
    } catch (const std::exception&) {
      return false;
    }
  }

  UblkControl control_;
  std::uint32_t id_;
  std::string path_;
  std::string context_;
  DeviceInfo info_;
  bool recovering_ = false;
  UniqueFd fd_;
  std::vector<std::unique_ptr<Queue>> queues_;
};

}  // namespace

std::unique_ptr<Channel> open_ublk_channel(std::uint32_t id) {
  return std::make_unique<UblkChannel>(id);
}

#else  // !DBLOCK_HAVE_URING

namespace {
[[noreturn]] void no_uring() {
  throw Error(EOPNOTSUPP, "ublk: this libdblock was built without liburing",
              "fix: install liburing-dev and rebuild, or use --transport dblock");
}
}  // namespace

std::uint64_t ublk_add_flags(const DeviceConfig&, std::uint64_t) { no_uring(); }
struct UblkControl::Ring {};
UblkControl::UblkControl() { no_uring(); }
UblkControl::~UblkControl() = default;
std::uint32_t UblkControl::add(const DeviceConfig&) { no_uring(); }
void UblkControl::start(std::uint32_t) { no_uring(); }
void UblkControl::start_recovery(std::uint32_t) { no_uring(); }
void UblkControl::end_recovery(std::uint32_t) { no_uring(); }
void UblkControl::stop(std::uint32_t) { no_uring(); }
void UblkControl::remove(std::uint32_t) { no_uring(); }
bool UblkControl::can_resize() const { return false; }
void UblkControl::set_size(std::uint32_t, std::uint64_t) { no_uring(); }
DeviceInfo UblkControl::info(std::uint32_t) { no_uring(); }
int UblkControl::command(std::uint32_t, std::uint32_t, void*, std::uint16_t, std::uint64_t) {
  no_uring();
}
std::unique_ptr<Channel> open_ublk_channel(std::uint32_t) { no_uring(); }

#endif  // DBLOCK_HAVE_URING

}  // namespace dblock::internal
