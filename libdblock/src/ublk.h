// Copyright (c) dblock authors.
// The kernel's ublk driver as a second transport (Transport::kUblk): its
// control device, and (channel.h) a Server's queues over /dev/ublkcN.
#ifndef DBLOCK_SRC_UBLK_H_
#define DBLOCK_SRC_UBLK_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "channel.h"
#include "dblock/device.h"
#include "dblock/unique_fd.h"

namespace dblock::internal {

inline constexpr std::string_view kUblkControlPath = "/dev/ublk-control";

// /dev/ublk-control: adds, starts, stops and deletes ublk devices, one
// command at a time through an io_uring of its own (URING_CMD).  Needs
// Linux 6.5 or later (UBLK_U_CMD_GET_FEATURES, ioctl-encoded commands).
// Thread-safety: one thread at a time; use one per thread.
class UblkControl {
 public:
  // Throws Error: ENOENT (module ublk_drv not loaded, with the fix),
  // EOPNOTSUPP (no io_uring in this build or this kernel, too old a ublk).
  UblkControl();
  UblkControl(const UblkControl&) = delete;
  UblkControl& operator=(const UblkControl&) = delete;
  ~UblkControl();

  // UBLK_F_* of the kernel's driver.
  std::uint64_t features() const { return features_; }
  // Whether it resizes a live device (UBLK_U_CMD_UPDATE_SIZE, Linux 6.14).
  bool can_resize() const;
  // Adds a device of `config`'s shape (ADD_DEV, SET_PARAMS), not started:
  // its queues must fetch before start().  Returns its id (/dev/ublkcID,
  // /dev/ublkbID).  Throws std::invalid_argument for what ublk cannot do.
  std::uint32_t add(const DeviceConfig& config);
  // START_DEV: waits until every queue has fetched, then adds the disk.
  void start(std::uint32_t id);
  // START_USER_RECOVERY: readies a device whose server died, under
  // Recovery::kWait (UBLK_F_USER_RECOVERY: its disk stayed, its I/O held),
  // for a new server: open /dev/ublkcID, fetch on every queue, then
  // end_recovery().  Waits (90 s at most) for the kernel to have quiesced
  // the device after its server's death: at once on 6.12, but on 6.12-rt
  // only once the requests in flight time out (30 s).
  void start_recovery(std::uint32_t id);
  // END_USER_RECOVERY: waits until every queue has fetched, then the held
  // I/O goes to this process.
  void end_recovery(std::uint32_t id);
  // STOP_DEV: removes the disk; the queues' fetches end (UBLK_IO_RES_ABORT).
  void stop(std::uint32_t id);
  // DEL_DEV: once its server has closed /dev/ublkcID.
  void remove(std::uint32_t id);
  // UPDATE_SIZE: the disk's new size, `bytes` (whole sectors), announced at
  // once; its server is not told.  Throws Error EOPNOTSUPP where the driver
  // cannot (can_resize()).
  void set_size(std::uint32_t id, std::uint64_t bytes);
  // The device as the kernel has it (GET_DEV_INFO, GET_PARAMS); its name is
  // the disk's, "ublkbID".  A device held for a new server (its server died
  // under Recovery::kWait) is kLive with server_pid 0, as dblock.ko's.
  DeviceInfo info(std::uint32_t id);

 private:
  struct Ring;
  int command(std::uint32_t op, std::uint32_t id, void* buffer, std::uint16_t length,
              std::uint64_t data);

  UniqueFd fd_;
  std::unique_ptr<Ring> ring_;
  std::uint64_t features_ = 0;
};

// The UBLK_F_* flags of ADD_DEV for `config` on a driver with `features`
// (GET_FEATURES): Recovery::kWait is UBLK_F_USER_RECOVERY_REISSUE.  Throws
// std::invalid_argument for a grace period (ublk holds I/O with no time
// limit), Error EOPNOTSUPP where the driver has no user recovery.
std::uint64_t ublk_add_flags(const DeviceConfig& config, std::uint64_t features);

// Online resize over ublk.  The kernel tells a ublk server nothing of a
// resize, so `dblockctl resize` asks the server (resize_ublk), which grows
// its backend before the disk (UblkResizeService), or shrinks the disk
// first: they talk over an abstract unix socket named by the device's id.
// Only root and the server's own user are heard.
class UblkResizeService final : public Running {
 public:
  // Throws for a refused size; the exception's what() reaches the asker.
  using Handler = std::function<void(std::uint64_t new_size)>;
  // Takes asks for device `id` on a thread of its own, until destroyed.
  // Throws Error: EADDRINUSE if another process takes them.
  UblkResizeService(std::uint32_t id, Handler handler);
  UblkResizeService(const UblkResizeService&) = delete;
  UblkResizeService& operator=(const UblkResizeService&) = delete;
  ~UblkResizeService() override;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Asks the server of ublk device `id`, which must be process `server_pid`,
// to resize it to `new_size` bytes; returns once it has.  Throws Error
// (ECONNREFUSED: no server takes asks for it; EPERM: another process
// answered) or std::system_error with the server's reason.
void ask_ublk_resize(std::uint32_t id, int server_pid, std::uint64_t new_size);

// Resizes ublk device `id` through its server: checks that the driver can
// and that the device has a live server, then ask_ublk_resize().
void resize_ublk(std::uint32_t id, std::uint64_t new_size);

// Whether /dev/ublk-control exists.
bool ublk_present();

// The ublk device /dev/`name` is (a link to /dev/ublkbN, as serve() makes,
// or ublkbN itself), if it is one.
std::optional<std::uint32_t> ublk_id_of(const std::string& name);

// Stops ublk device `id` (its server then deletes it and exits); unless
// `force`, only once no one holds its disk: Error EBUSY while a file system
// is mounted on it or it is open exclusively.  A device whose server died
// is deleted here: returns true then.
bool ublk_destroy(std::uint32_t id, bool force);

// Every ublk device, by increasing id, named by the /dev link to its disk
// (serve()'s /dev/NAME) where there is one, else "ublkbN".
std::vector<DeviceInfo> ublk_list();

}  // namespace dblock::internal

#endif  // DBLOCK_SRC_UBLK_H_
