// Copyright (c) dblock authors.
#include "queue_thread.h"

#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>

#include <cerrno>

#include <fmt/format.h>

#include "dblock/error.h"

namespace dblock::internal {

void prepare_server_thread() {
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

namespace {

void* run_body(void* arg) {
  const std::unique_ptr<std::function<void()>> body(static_cast<std::function<void()>*>(arg));
  (*body)();
  return nullptr;
}

}  // namespace

SmallThread::SmallThread(std::function<void()> body, std::size_t stack_bytes) {
  pthread_attr_t attr;
  int rc = ::pthread_attr_init(&attr);
  if (rc != 0) throw Error(rc, "start a server thread: pthread_attr_init");
  rc = ::pthread_attr_setstacksize(&attr, stack_bytes);
  auto owned = std::make_unique<std::function<void()>>(std::move(body));
  if (rc == 0) rc = ::pthread_create(&thread_, &attr, run_body, owned.get());
  ::pthread_attr_destroy(&attr);
  if (rc != 0) throw Error(rc, "start a server thread: pthread_create");
  (void)owned.release();  // the thread owns it now
}

SmallThread::~SmallThread() { ::pthread_join(thread_, nullptr); }

dblock_dev_info read_channel_info(int fd, const std::string& context, const std::string& path) {
  dblock_dev_info info{};
  if (::ioctl(fd, DBLOCK_IOC_GET_INFO, &info) < 0) {
    const int err = errno;
    throw Error(err, fmt::format("{}: ioctl DBLOCK_IOC_GET_INFO on {}", context, path));
  }
  return info;
}

}  // namespace dblock::internal
