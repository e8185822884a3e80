// Copyright (c) dblock authors.
#ifndef DBLOCK_SRC_QUEUE_THREAD_H_
#define DBLOCK_SRC_QUEUE_THREAD_H_

#include <linux/dblock.h>
#include <pthread.h>
#include <sched.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace dblock::internal {

// Readies the calling thread to serve a hardware queue or run a backend's
// requests:
//  - PR_SET_IO_FLUSHER where allowed: our allocations may happen while the
//    kernel waits on I/O to this very device to reclaim memory;
//  - SCHED_BATCH if the thread runs under the default policy, see
//    kQueueThreadPolicy.
void prepare_server_thread();

// The scheduling policy queue threads take.  A queue thread is woken by the
// task that submits I/O, often on that task's CPU.  Under SCHED_OTHER the
// wakeup preempts the submitter after its first request, the thread serves
// that one request and sleeps again: two context switches per request.
// A SCHED_BATCH thread does not preempt on wakeup, so the submitter queues
// until it waits for completions, and the thread takes the whole batch.
// Measured with 2 queues and 2 fio jobs on 2 CPUs (6.12 guest): 4k random
// reads went from 29k to 97k IOPS on the null backend.  A server started
// under another policy (chrt) keeps it.
inline constexpr int kQueueThreadPolicy = SCHED_BATCH;

// A thread with a stack of its own size, joined on destruction.  Worker
// threads take a small one: a server that locks its memory (mlockall with
// MCL_FUTURE, ServeOptions::lock_memory) pins every thread's whole stack,
// and the default 8 MiB times dozens of workers would pin hundreds of MiB.
class SmallThread {
 public:
  static constexpr std::size_t kStackBytes = 512 * 1024;

  explicit SmallThread(std::function<void()> body, std::size_t stack_bytes = kStackBytes);
  SmallThread(const SmallThread&) = delete;
  SmallThread& operator=(const SmallThread&) = delete;
  ~SmallThread();

 private:
  pthread_t thread_{};
};

// DBLOCK_IOC_GET_INFO on the channel `fd` (opened from `path`); errors name
// `context`.
dblock_dev_info read_channel_info(int fd, const std::string& context, const std::string& path);

}  // namespace dblock::internal

#endif  // DBLOCK_SRC_QUEUE_THREAD_H_
