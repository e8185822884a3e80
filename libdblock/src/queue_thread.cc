// Copyright (c) dblock authors.
#include "queue_thread.h"

#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>

#include <cerrno>

#include <fmt/format.h>

#include "dblock/error.h"

namespace dblock::internal {

void prepare_queue_thread(int wake_signal) {
  sigset_t wake;
  sigemptyset(&wake);
  sigaddset(&wake, wake_signal);
  ::pthread_sigmask(SIG_UNBLOCK, &wake, nullptr);
#ifdef PR_SET_IO_FLUSHER
  // Needs CAP_SYS_RESOURCE and Linux 5.6: without, carry on.
  (void)::prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0);
#endif
  // A hint: where it is refused (a seccomp filter), serving works the same.
  if (::sched_getscheduler(0) == SCHED_OTHER) {
    const sched_param param{};
    (void)::pthread_setschedparam(::pthread_self(), kQueueThreadPolicy, &param);
  }
}

dblock_dev_info read_channel_info(int fd, const std::string& context, const std::string& path) {
  dblock_dev_info info{};
  if (::ioctl(fd, DBLOCK_IOC_GET_INFO, &info) < 0) {
    const int err = errno;
    throw Error(err, fmt::format("{}: ioctl DBLOCK_IOC_GET_INFO on {}", context, path));
  }
  return info;
}

}  // namespace dblock::internal
