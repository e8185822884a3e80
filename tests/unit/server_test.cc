// Copyright (c) dblock authors.
// Runs Server against a fake kernel: open() of /dev/dblock/<id> and ioctl()
// on it are intercepted with the linker's --wrap (open is open64 under
// _FILE_OFFSET_BITS=64).  The fake blocks in poll() on an eventfd until a
// request, a kick (sticky, as DBLOCK_IOC_KICK), a resize or the device's end.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdarg>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "dblock/async_backend.h"
#include "dblock/error.h"
#include "dblock/file_backend.h"
#include "dblock/ram_backend.h"
#include "dblock/server.h"
#include "dblock/uring_file_backend.h"
#ifdef DBLOCK_HAVE_NBD
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "dblock/nbd_backend.h"
#endif

extern "C" int __real_open64(const char* path, int flags, ...);
extern "C" int __real_ioctl(int fd, unsigned long request, ...);

namespace dblock {
namespace {

constexpr std::uint16_t kQueues = 2;
constexpr std::uint16_t kDepth = 4;
constexpr std::uint32_t kMaxIo = 8192;
constexpr std::uint32_t kBufferBytes = kDepth * kMaxIo;

struct FakeKernel {
  std::mutex mu;
  int channel = -1;
  dblock_dev_info info{};
  std::deque<dblock_request> pending[kQueues];
  int wake[kQueues] = {-1, -1};
  bool entered[kQueues] = {};
  bool gone = false;
  bool started = false;
  int fail_queue = -1;         // SERVE on it fails with EBUSY
  int eintr_after_commit = 0;  // that many SERVE calls carrying completions fail with EINTR
  std::map<std::pair<int, std::uint32_t>, dblock_completion> done;  // by (tag, seq)
  int duplicates = 0;
  // Emulates DBLOCK_FEAT_USER_BUFFERS: data is copied between our area
  // (`mapping`) and the server's buffer_ptr within SERVE, as dblock.ko does.
  bool user_buffers = false;
  bool kicked[kQueues] = {};
  bool resized[kQueues] = {};
  int kicks = 0;
  int commits = 0;        // DBLOCK_IOC_COMMIT calls (with DBLOCK_FEAT_COMMIT)
  int empty_returns = 0;  // SERVE calls ended by a kick, with nothing fetched
  std::uint64_t last_buffer_ptr[kQueues] = {};
  int policy[kQueues] = {-1, -1};  // the scheduling policy of each queue's thread
  std::map<std::pair<int, int>, dblock_request> fetched;  // by (queue, tag)
  // DBLOCK_IOC_SET_FILE (with DBLOCK_FEAT_FILE_IO): what the server set, or
  // the errno to refuse it with.
  dblock_file file{-1, 0, 0, {}};
  int set_file_calls = 0;
  int refuse_file = 0;

  FakeKernel() {
    DeviceConfig c;
    c.name = "fake";
    c.size_bytes = 1 << 20;
    c.block_size = 512;
    c.max_io_bytes = kMaxIo;
    c.queues = kQueues;
    c.queue_depth = kDepth;
    c.flush = true;
    info.config = to_uapi(c);
    info.id = 5;
    info.buffer_bytes = kBufferBytes;
    info.features = DBLOCK_FEAT_KICK;
    channel = ::memfd_create("fake_channel", MFD_CLOEXEC);
    EXPECT_EQ(::ftruncate(channel, kQueues * kBufferBytes), 0);
    for (int& w : wake) w = ::eventfd(0, EFD_CLOEXEC);
  }
  ~FakeKernel() {
    ::close(channel);
    for (const int w : wake) ::close(w);
  }

  void kick(int q) {
    const std::uint64_t one = 1;
    EXPECT_EQ(::write(wake[q], &one, sizeof one), 8);
  }
  void submit(int q, dblock_request r) {
    std::lock_guard lock(mu);
    pending[q].push_back(r);
    kick(q);
  }
  // As `dblockctl resize`: every queue is told, with its next fetch.
  void resize(std::uint64_t size_bytes) {
    std::lock_guard lock(mu);
    info.config.size_bytes = size_bytes;
    for (int q = 0; q < kQueues; ++q) {
      resized[q] = true;
      kick(q);
    }
  }
  // A new device in the same place, for a second server.
  void revive() {
    std::lock_guard lock(mu);
    gone = false;
    done.clear();
    for (bool& e : entered) e = false;
  }
  void destroy() {
    std::lock_guard lock(mu);
    gone = true;
    for (int q = 0; q < kQueues; ++q) kick(q);
  }
  static std::byte* user_slot(std::uint64_t buffer_ptr, int tag) {
    return reinterpret_cast<std::byte*>(static_cast<std::uintptr_t>(buffer_ptr)) + tag * kMaxIo;
  }
  std::byte* buffer(int q, int tag) {
    return static_cast<std::byte*>(mapping) + q * kBufferBytes + tag * kMaxIo;
  }
  // Until DBLOCK_IOC_START returned: the thread that calls it may run after
  // the queue threads have answered everything (SCHED_IDLE, a loaded host).
  bool wait_started() {
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard lock(mu);
        if (started) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  bool wait_done(std::size_t n) {
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard lock(mu);
        if (done.size() >= n) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  // Takes answers, as SERVE's first half does; under mu.
  void take_answers(int q, const dblock_completion* c, std::uint32_t n, std::uint64_t buffer_ptr) {
    for (std::uint32_t i = 0; i < n; ++i) {
      if (!done.emplace(std::pair{int(c[i].tag), c[i].seq}, c[i]).second) ++duplicates;
      const auto it = fetched.find({q, int(c[i].tag)});
      if (user_buffers && it != fetched.end() && it->second.op == DBLOCK_OP_READ && buffer_ptr) {
        std::memcpy(buffer(q, c[i].tag), user_slot(buffer_ptr, c[i].tag), it->second.length);
      }
      if (it != fetched.end()) fetched.erase(it);
    }
  }

  int commit(const dblock_commit* c) {
    std::lock_guard lock(mu);
    if ((info.features & DBLOCK_FEAT_COMMIT) == 0) {
      errno = ENOTTY;
      return -1;
    }
    if (c->queue >= kQueues || c->nr_completions == 0 || c->nr_completions > kDepth) {
      errno = EINVAL;
      return -1;
    }
    ++commits;
    take_answers(c->queue, reinterpret_cast<const dblock_completion*>(c->completions_ptr),
                 c->nr_completions, c->buffer_ptr);
    return 0;
  }

  int set_file(const dblock_file* f) {
    std::lock_guard lock(mu);
    if ((info.features & DBLOCK_FEAT_FILE_IO) == 0) {
      errno = ENOTTY;
      return -1;
    }
    ++set_file_calls;
    if (refuse_file != 0) {
      errno = refuse_file;
      return -1;
    }
    file = *f;
    return 0;
  }

  int serve(dblock_serve* s) {
    const int q = s->queue;
    // As dblock.ko: the element size must hold ABI 2's struct.
    if (s->request_size < DBLOCK_REQUEST_SIZE_MIN || s->request_size % 8) {
      errno = EINVAL;
      return -1;
    }
    {
      std::lock_guard lock(mu);
      const auto* c = reinterpret_cast<const dblock_completion*>(s->completions_ptr);
      if (user_buffers) last_buffer_ptr[q] = s->buffer_ptr;
      policy[q] = ::sched_getscheduler(0);
      entered[q] = true;  // as dblock.ko's "ready": any call, waiting or not
      take_answers(q, c, s->nr_completions, s->buffer_ptr);
      if (eintr_after_commit > 0 && s->nr_completions > 0) {
        --eintr_after_commit;
        errno = EINTR;
        return -1;
      }
    }
    for (;;) {
      {
        std::lock_guard lock(mu);
        s->nr_requests = 0;
        if (q == fail_queue) {
          errno = EBUSY;
          return -1;
        }
        if (gone) {
          s->status = DBLOCK_SERVE_GONE;
          return 0;
        }
        const bool was_kicked = kicked[q];
        kicked[q] = false;
        if (resized[q] && s->max_requests > 0) {
          resized[q] = false;
          s->status |= DBLOCK_SERVE_RESIZED;
        }
        auto* out = reinterpret_cast<std::byte*>(static_cast<std::uintptr_t>(s->requests_ptr));
        while (!pending[q].empty() && s->nr_requests < s->max_requests) {
          const dblock_request r = pending[q].front();
          // Elements request_size apart: the struct, then zeroes.
          std::byte* at = out + std::size_t{s->nr_requests++} * s->request_size;
          std::memcpy(at, &r, sizeof r);
          std::memset(at + sizeof r, 0, s->request_size - sizeof r);
          pending[q].pop_front();
          fetched[{q, int(r.tag)}] = r;
          if (user_buffers && r.op == DBLOCK_OP_WRITE && s->buffer_ptr) {
            std::memcpy(user_slot(s->buffer_ptr, r.tag), buffer(q, r.tag), r.length);
          }
        }
        if (s->nr_requests > 0 || s->status != 0 || (s->flags & DBLOCK_SERVE_NOWAIT)) return 0;
        if (was_kicked) {
          ++empty_returns;
          return 0;
        }
      }
      pollfd p{wake[q], POLLIN, 0};
      if (::poll(&p, 1, -1) < 0) return -1;
      std::uint64_t v;
      if (::read(wake[q], &v, sizeof v) < 0) return -1;
    }
  }

  int ioctl_kick(unsigned long q) {
    std::lock_guard lock(mu);
    if (q >= kQueues) {
      errno = EINVAL;
      return -1;
    }
    kicked[q] = true;
    ++kicks;
    kick(static_cast<int>(q));
    return 0;
  }

  int start() {
    for (;;) {
      {
        std::lock_guard lock(mu);
        if (gone) {
          errno = ENODEV;
          return -1;
        }
        if (entered[0] && entered[1]) {
          started = true;
          info.state = DBLOCK_STATE_LIVE;
          return 0;
        }
      }
      if (::usleep(1000) < 0) return -1;  // EINTR on a signal
    }
  }

  void* mapping = nullptr;
};

FakeKernel* g_kernel = nullptr;

}  // namespace
}  // namespace dblock

extern "C" int __wrap_open64(const char* path, int flags, ...) {
  if (dblock::g_kernel && std::string_view(path) == "/dev/dblock/5") {
    return ::fcntl(dblock::g_kernel->channel, F_DUPFD_CLOEXEC, 0);
  }
  va_list ap;
  va_start(ap, flags);
  const int mode = va_arg(ap, int);
  va_end(ap);
  return __real_open64(path, flags, mode);
}

extern "C" int __wrap_ioctl(int fd, unsigned long request, ...) {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  auto* k = dblock::g_kernel;
  struct stat a {}, b {};
  if (k && ::fstat(fd, &a) == 0 && ::fstat(k->channel, &b) == 0 && a.st_ino == b.st_ino) {
    switch (request) {
      case DBLOCK_IOC_GET_INFO: {
        std::lock_guard lock(k->mu);
        std::memcpy(arg, &k->info, sizeof k->info);
        return 0;
      }
      case DBLOCK_IOC_START: return k->start();
      case DBLOCK_IOC_SERVE: return k->serve(static_cast<dblock_serve*>(arg));
      case DBLOCK_IOC_KICK: return k->ioctl_kick(reinterpret_cast<unsigned long>(arg));
      case DBLOCK_IOC_COMMIT: return k->commit(static_cast<const dblock_commit*>(arg));
      case DBLOCK_IOC_SET_FILE: return k->set_file(static_cast<const dblock_file*>(arg));
    }
    errno = ENOTTY;
    return -1;
  }
  return __real_ioctl(fd, request, arg);
}

namespace dblock {
namespace {

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_kernel = &kernel_;
    kernel_.mapping = ::mmap(nullptr, kQueues * kBufferBytes, PROT_READ | PROT_WRITE, MAP_SHARED,
                             kernel_.channel, 0);
    ASSERT_NE(kernel_.mapping, MAP_FAILED);
  }
  void TearDown() override {
    ::munmap(kernel_.mapping, kQueues * kBufferBytes);
    g_kernel = nullptr;
  }

  void serve_until_gone();
  void serve_async_reads();

  FakeKernel kernel_;
  RamBackend backend_{1 << 20};
};

void ServerTest::serve_until_gone() {
  Server server(5, backend_);
  EXPECT_EQ(server.info().config.name, "fake");
  int started = 0;
  std::thread runner([&] {
    server.run([&](const DeviceInfo& live) {
      EXPECT_EQ(live.state, DeviceState::kLive);
      ++started;
    });
  });
  std::memset(kernel_.buffer(1, 3), 0x6b, 4096);
  kernel_.submit(1, {3, DBLOCK_OP_WRITE, 0, DBLOCK_REQ_FUA, 65536, 4096, 77, 0});
  ASSERT_TRUE(kernel_.wait_done(1));
  kernel_.submit(0, {0, DBLOCK_OP_READ, 0, 0, 65536 + 2048, 2048, 78, 0});
  kernel_.submit(0, {1, DBLOCK_OP_FLUSH, 0, 0, 0, 0, 79, 0});
  kernel_.submit(0, {2, DBLOCK_OP_READ, 0, 0, 1 << 20, 512, 80, 0});  // past the end
  ASSERT_TRUE(kernel_.wait_done(4));
  ASSERT_TRUE(kernel_.wait_started());
  kernel_.destroy();
  runner.join();

  EXPECT_EQ(started, 1);
  EXPECT_EQ(kernel_.duplicates, 0);
  EXPECT_EQ(kernel_.done.at({3, 77}).result, 0);
  EXPECT_EQ(kernel_.done.at({0, 78}).result, 0);
  EXPECT_EQ(kernel_.done.at({1, 79}).result, 0);
  EXPECT_EQ(kernel_.done.at({2, 80}).result, -EIO);
  EXPECT_EQ(kernel_.buffer(0, 0)[0], std::byte{0x6b});
  EXPECT_EQ(kernel_.buffer(0, 0)[2047], std::byte{0x6b});
}

TEST_F(ServerTest, ServesUntilGone) {
  serve_until_gone();
  EXPECT_EQ(kernel_.last_buffer_ptr[0], 0u);
}

TEST_F(ServerTest, QueueThreadsDoNotPreemptTheSubmitterOnWakeup) {
  serve_until_gone();
  EXPECT_EQ(kernel_.policy[0], SCHED_BATCH);
  EXPECT_EQ(kernel_.policy[1], SCHED_BATCH);
}

TEST_F(ServerTest, QueueThreadsKeepAPolicyTheServerWasStartedWith) {
  // SCHED_IDLE needs no privilege.  The queue threads inherit it from the
  // thread that runs the server, which never goes back to SCHED_OTHER.
  std::thread idle([&] {
    const sched_param param{};
    ASSERT_EQ(::sched_setscheduler(0, SCHED_IDLE, &param), 0) << std::strerror(errno);
    serve_until_gone();
  });
  idle.join();
  EXPECT_EQ(kernel_.policy[0], SCHED_IDLE);
  EXPECT_EQ(kernel_.policy[1], SCHED_IDLE);
}

TEST_F(ServerTest, ServesFromItsOwnBuffersWhenTheModuleTakesThem) {
  kernel_.user_buffers = true;
  kernel_.info.features |= DBLOCK_FEAT_USER_BUFFERS;
  serve_until_gone();
  // Each queue passes its own area, not the channel's.
  EXPECT_NE(kernel_.last_buffer_ptr[0], 0u);
  EXPECT_NE(kernel_.last_buffer_ptr[1], 0u);
  EXPECT_NE(kernel_.last_buffer_ptr[0], kernel_.last_buffer_ptr[1]);
  EXPECT_NE(kernel_.last_buffer_ptr[0], reinterpret_cast<std::uintptr_t>(kernel_.mapping));
}

TEST_F(ServerTest, CompletionsConsumedByAnInterruptedCallAreNotResent) {
  Server server(5, backend_);
  {
    std::lock_guard lock(kernel_.mu);
    kernel_.eintr_after_commit = 2;
  }
  std::thread runner([&] { server.run(); });
  kernel_.submit(0, {0, DBLOCK_OP_READ, 0, 0, 0, 512, 1, 0});
  kernel_.submit(0, {1, DBLOCK_OP_READ, 0, 0, 512, 512, 2, 0});
  kernel_.submit(1, {0, DBLOCK_OP_READ, 0, 0, 0, 512, 3, 0});
  ASSERT_TRUE(kernel_.wait_done(3));
  kernel_.submit(0, {2, DBLOCK_OP_READ, 0, 0, 0, 512, 4, 0});
  ASSERT_TRUE(kernel_.wait_done(4));
  kernel_.destroy();
  runner.join();
  EXPECT_EQ(kernel_.eintr_after_commit, 0);  // both interruptions happened
  EXPECT_EQ(kernel_.duplicates, 0);
  EXPECT_EQ(kernel_.done.size(), 4u);
}

TEST_F(ServerTest, AnErrorInOneQueueStopsAllAndIsRethrown) {
  Server server(5, backend_);
  {
    std::lock_guard lock(kernel_.mu);
    kernel_.fail_queue = 1;
  }
  // Queue 0 blocks in the fake kernel and START cannot succeed: run() must
  // wake queue 0 (a kick) and never call START.
  try {
    server.run();
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(e.code().value(), EBUSY);
    EXPECT_NE(std::string(e.what()).find("DBLOCK_IOC_SERVE (queue 1) on /dev/dblock/5"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(kernel_.started);
}

TEST_F(ServerTest, RequestStopAnswersWhatWasFetched) {
  Server server(5, backend_);
  std::thread runner([&] { server.run(); });
  kernel_.submit(0, {0, DBLOCK_OP_READ, 0, 0, 0, 512, 1, 0});
  ASSERT_TRUE(kernel_.wait_done(1));
  server.request_stop();
  runner.join();  // returns although the device still exists
  EXPECT_FALSE(kernel_.gone);
  EXPECT_EQ(kernel_.done.size(), 1u);
}

// Answers every request from a thread of its own, a little later, as a
// storage library's callback thread does: the queue thread is asleep in
// SERVE by then and must be woken to hand the answer back.
class LaterBackend : public AsyncBackend {
 public:
  LaterBackend() : worker_([this] { work(); }) {}
  ~LaterBackend() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    worker_.join();
  }
  std::uint64_t size() const override { return size_; }
  bool supports_flush() const override { return true; }
  void resize(std::uint64_t new_size) override { size_ = new_size; }
  void submit(const AsyncRequest& request, AsyncCompletion completion) override {
    std::lock_guard lock(mu_);
    pending_.emplace_back(request, completion);
    cv_.notify_one();
  }

 private:
  void work() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || !pending_.empty(); });
      if (stop_) return;
      auto [request, completion] = pending_.front();
      pending_.pop_front();
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (request.op == DBLOCK_OP_READ) std::memset(request.data.data(), 0x5a, request.data.size());
      completion.done(0);
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<AsyncRequest, AsyncCompletion>> pending_;
  bool stop_ = false;
  std::atomic<std::uint64_t> size_{1 << 20};
  std::thread worker_;
};

void ServerTest::serve_async_reads() {
  LaterBackend backend;
  Server server(5, backend);
  std::thread runner([&] { server.run(); });
  kernel_.submit(0, {0, DBLOCK_OP_READ, 0, 0, 0, 4096, 1, 0});
  ASSERT_TRUE(kernel_.wait_done(1));
  kernel_.submit(1, {2, DBLOCK_OP_READ, 0, 0, 8192, 512, 2, 0});
  ASSERT_TRUE(kernel_.wait_done(2));
  kernel_.destroy();
  runner.join();
  EXPECT_EQ(kernel_.duplicates, 0);
  EXPECT_EQ(kernel_.done.at({0, 1}).result, 0);
  EXPECT_EQ(kernel_.done.at({2, 2}).result, 0);
  EXPECT_EQ(kernel_.buffer(0, 0)[4095], std::byte{0x5a});
  EXPECT_EQ(kernel_.buffer(1, 2)[511], std::byte{0x5a});
}

TEST_F(ServerTest, AsyncAnswersWakeTheQueueThreadWithAKick) {
  serve_async_reads();
  EXPECT_GE(kernel_.kicks, 2);
  EXPECT_GE(kernel_.empty_returns, 2);
}

// With DBLOCK_IOC_COMMIT the thread that finishes a queue's only request in
// flight answers the kernel itself: the queue thread sleeping in SERVE is not
// woken for it.
TEST_F(ServerTest, AsyncAnswersAreCommittedWhereTheyFinish) {
  kernel_.info.features |= DBLOCK_FEAT_COMMIT;
  kernel_.user_buffers = true;  // read data must reach the kernel with the answer
  kernel_.info.features |= DBLOCK_FEAT_USER_BUFFERS;
  serve_async_reads();
  EXPECT_EQ(kernel_.kicks, 0);
  EXPECT_EQ(kernel_.empty_returns, 0);
  EXPECT_GE(kernel_.commits, 1);
}

// Stopping with answers still owed, some handed back by the queue thread,
// the last possibly committed by the backend's: the server returns once
// every one is in, each answered once.
TEST_F(ServerTest, AStopWaitsForAnswersCommittedElsewhere) {
  kernel_.info.features |= DBLOCK_FEAT_COMMIT;
  LaterBackend backend;
  Server server(5, backend);
  std::thread runner([&] { server.run(); });
  ASSERT_TRUE(kernel_.wait_started());
  for (std::uint16_t tag = 0; tag < kDepth; ++tag) {
    kernel_.submit(0, {tag, DBLOCK_OP_READ, 0, 0, std::uint64_t{tag} * 4096, 4096, 7, 0});
  }
  ASSERT_TRUE(kernel_.wait_done(1));
  server.request_stop();
  runner.join();
  std::lock_guard lock(kernel_.mu);
  EXPECT_EQ(kernel_.done.size(), std::size_t{kDepth});
  EXPECT_EQ(kernel_.duplicates, 0);
}

TEST_F(ServerTest, ModuleWithoutKickIsRefused) {
  kernel_.info.features = 0;
  try {
    Server server(5, backend_);
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(e.code().value(), EPROTO);
    EXPECT_NE(std::string(e.what()).find("same release"), std::string::npos) << e.what();
  }
}

int g_app_signals = 0;
void app_signal(int) { ++g_app_signals; }

// The library takes no signal: an application's handlers for the real-time
// signals the old servers used stay in place and are never called.
TEST_F(ServerTest, LeavesEverySignalToTheApplication) {
  struct sigaction mine {};
  mine.sa_handler = app_signal;
  sigemptyset(&mine.sa_mask);
  ASSERT_EQ(::sigaction(SIGRTMIN, &mine, nullptr), 0);
  ASSERT_EQ(::sigaction(SIGRTMIN + 1, &mine, nullptr), 0);
  serve_until_gone();
  kernel_.revive();
  {
    LaterBackend async;
    Server server(5, async);
    std::thread runner([&] { server.run(); });
    kernel_.submit(0, {0, DBLOCK_OP_READ, 0, 0, 0, 512, 90, 0});
    ASSERT_TRUE(kernel_.wait_done(1));
    server.request_stop();
    runner.join();
  }
  for (const int sig : {SIGRTMIN, SIGRTMIN + 1}) {
    struct sigaction now {};
    ASSERT_EQ(::sigaction(sig, nullptr, &now), 0);
    EXPECT_EQ(now.sa_handler, &app_signal);
  }
  EXPECT_EQ(g_app_signals, 0);
  std::signal(SIGRTMIN, SIG_DFL);
  std::signal(SIGRTMIN + 1, SIG_DFL);
}

// Online resize, for every kind of server: a read past the old end fails
// before the grow and succeeds after it, then fails again after a shrink.
template <typename MakeServer>
void check_resize(FakeKernel& kernel, const MakeServer& make_server) {
  auto server = make_server();
  std::thread runner([&] { server->run(); });
  kernel.submit(0, {0, DBLOCK_OP_READ, 0, 0, 1 << 20, 4096, 1, 0});
  ASSERT_TRUE(kernel.wait_done(1));
  kernel.resize(2 << 20);
  kernel.submit(0, {1, DBLOCK_OP_READ, 0, 0, 1 << 20, 4096, 2, 0});
  kernel.submit(1, {1, DBLOCK_OP_WRITE, 0, 0, (2 << 20) - 4096, 4096, 3, 0});
  ASSERT_TRUE(kernel.wait_done(3));
  kernel.resize(1 << 20);
  kernel.submit(1, {2, DBLOCK_OP_READ, 0, 0, 1 << 20, 4096, 4, 0});
  ASSERT_TRUE(kernel.wait_done(4));
  kernel.destroy();
  runner.join();
  EXPECT_EQ(kernel.done.at({0, 1}).result, -EIO);
  EXPECT_EQ(kernel.done.at({1, 2}).result, 0);
  EXPECT_EQ(kernel.done.at({1, 3}).result, 0);
  EXPECT_EQ(kernel.done.at({2, 4}).result, -EIO);
  EXPECT_EQ(kernel.duplicates, 0);
}

TEST_F(ServerTest, ResizeOnTheQueueThreads) {
  ServerOptions inline_options;
  inline_options.workers = 0;
  check_resize(kernel_, [&] { return std::make_unique<Server>(5, backend_, inline_options); });
  EXPECT_EQ(backend_.size(), 1u << 20);
}

TEST_F(ServerTest, ResizeWithWorkers) {
  ServerOptions pool;
  pool.workers = 3;
  check_resize(kernel_, [&] {
    auto server = std::make_unique<Server>(5, backend_, pool);
    EXPECT_EQ(server->workers(), 3u);
    return server;
  });
}

TEST_F(ServerTest, ResizeAsync) {
  LaterBackend async;
  check_resize(kernel_, [&] { return std::make_unique<Server>(5, async); });
  EXPECT_EQ(async.size(), 1u << 20);
}

// 1 MiB that read as anything and take any write.
class SinkBackend : public Backend {
 public:
  std::uint64_t size() const override { return 1 << 20; }
  void read(std::uint64_t, std::span<std::byte>) override {}
  void write(std::uint64_t, std::span<const std::byte>, bool) override {}
  void flush() override {}
  bool supports_flush() const override { return true; }
};

// A backend that cannot grow: the server says so and goes on at the old size.
class FixedBackend : public SinkBackend {
 public:
  void resize(std::uint64_t new_size) override {
    if (new_size > size()) throw Error(ENOSPC, "fixed size");
  }
};

TEST_F(ServerTest, AGrowTheBackendRefusesIsReportedAndServingGoesOn) {
  FixedBackend fixed;
  std::vector<std::string> warnings;
  ServerOptions options;
  options.on_warning = [&](const std::string& w) { warnings.push_back(w); };
  Server server(5, fixed, options);
  std::thread runner([&] { server.run(); });
  kernel_.resize(2 << 20);
  kernel_.submit(0, {0, DBLOCK_OP_READ, 0, 0, 1 << 20, 4096, 1, 0});
  kernel_.submit(0, {1, DBLOCK_OP_READ, 0, 0, 0, 4096, 2, 0});
  ASSERT_TRUE(kernel_.wait_done(2));
  kernel_.destroy();
  runner.join();
  EXPECT_EQ(kernel_.done.at({0, 1}).result, -EIO);
  EXPECT_EQ(kernel_.done.at({1, 2}).result, 0);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("fixed size"), std::string::npos) << warnings[0];
}

// A blocking backend: each read waits until `want` reads are inside at
// once (or gives up after 10 s), so that the answers show how many requests
// the server had in flight.
class GatheringBackend : public SinkBackend {
 public:
  explicit GatheringBackend(int want) : want_(want) {}
  void read(std::uint64_t, std::span<std::byte>) override {
    std::unique_lock lock(mu_);
    ++inside_;
    max_inside_ = std::max(max_inside_, inside_);
    cv_.notify_all();
    const bool met =
        cv_.wait_for(lock, std::chrono::seconds(10), [&] { return max_inside_ >= want_; });
    --inside_;
    if (!met) throw Error(ETIMEDOUT, "gather");
  }
  bool may_block() const override { return true; }
  int max_inside() {
    std::lock_guard lock(mu_);
    return max_inside_;
  }

 private:
  const int want_;
  std::mutex mu_;
  std::condition_variable cv_;
  int inside_ = 0;
  int max_inside_ = 0;
};

TEST_F(ServerTest, ABlockingBackendHasTheQueueDepthInFlight) {
  GatheringBackend gathering(kQueues * kDepth);
  Server server(5, gathering);  // default workers: queues x depth
  EXPECT_EQ(server.workers(), unsigned{kQueues * kDepth});
  std::thread runner([&] { server.run(); });
  for (int q = 0; q < kQueues; ++q) {
    for (std::uint16_t tag = 0; tag < kDepth; ++tag) {
      kernel_.submit(q, {tag, DBLOCK_OP_READ, 0, 0, 4096u * tag, 4096, 100u + 10u * q + tag, 0});
    }
  }
  ASSERT_TRUE(kernel_.wait_done(kQueues * kDepth));
  kernel_.destroy();
  runner.join();
  EXPECT_EQ(gathering.max_inside(), kQueues * kDepth);
  for (const auto& [key, c] : kernel_.done) EXPECT_EQ(c.result, 0) << "tag " << key.first;
}

TEST_F(ServerTest, MemoryBackendsRunOnTheQueueThreads) {
  Server server(5, backend_);
  EXPECT_EQ(server.workers(), 0u);
}

TEST_F(ServerTest, BackendSmallerThanTheDeviceIsRefused) {
  RamBackend small(4096);
  EXPECT_THROW(Server(5, small), std::invalid_argument);
}

TEST_F(ServerTest, MissingChannelNamesIt) {
  try {
    Server server(6, backend_);
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("serve device 6: open /dev/dblock/6"), std::string::npos)
        << e.what();
  }
}

// A file on io_uring: data both ways, FUA and flush reach fdatasync, a
// discard runs through the FileBackend, and a read past the end of the
// file (it shrank) reads zeros.
// A backend whose reads and writes are a file's (Backend::kernel_file()),
// counting the calls that still reach it.
class KernelFileBackend final : public Backend {
 public:
  explicit KernelFileBackend(int fd) : fd_(fd) {}
  std::uint64_t size() const override { return 1 << 20; }
  void read(std::uint64_t, std::span<std::byte>) override { ++reads; }
  void write(std::uint64_t, std::span<const std::byte>, bool) override { ++writes; }
  void flush() override { ++flushes; }
  bool supports_flush() const override { return true; }
  bool may_block() const override { return false; }
  std::optional<KernelFile> kernel_file() const override { return KernelFile{fd_, 8192}; }
  std::atomic<int> reads{0}, writes{0}, flushes{0};

 private:
  int fd_;
};

// Serves a read, a write and a flush; true if it all ended.
bool serve_read_write_flush(FakeKernel& kernel, Server& server) {
  std::thread runner([&] { server.run(); });
  kernel.submit(0, {0, DBLOCK_OP_READ, 0, 0, 4096, 4096, 1, 0});
  kernel.submit(1, {1, DBLOCK_OP_WRITE, 0, DBLOCK_REQ_FUA, 8192, 8192, 2, 0});
  kernel.submit(0, {2, DBLOCK_OP_FLUSH, 0, 0, 0, 0, 3, 0});
  const bool ok = kernel.wait_done(3);
  kernel.destroy();
  runner.join();
  return ok;
}

TEST_F(ServerTest, TheModuleReadsAndWritesTheBackendsFile) {
  kernel_.info.features |= DBLOCK_FEAT_FILE_IO;
  KernelFileBackend backend(42);
  Server server(5, backend);
  ASSERT_TRUE(serve_read_write_flush(kernel_, server));
  EXPECT_TRUE(server.kernel_file_io());
  EXPECT_EQ(kernel_.file.fd, 42);
  EXPECT_EQ(kernel_.file.offset, 8192u);
  EXPECT_EQ(kernel_.file.flags, DBLOCK_FILE_NO_WRITE_DATA);
  // Reads and writes are answered "on the file"; the flush is the backend's.
  EXPECT_EQ(kernel_.done.at({0, 1}).flags, DBLOCK_CPL_FILE);
  EXPECT_EQ(kernel_.done.at({0, 1}).result, 0);
  EXPECT_EQ(kernel_.done.at({1, 2}).flags, DBLOCK_CPL_FILE);
  EXPECT_EQ(kernel_.done.at({2, 3}).flags, 0);
  EXPECT_EQ(kernel_.done.at({2, 3}).result, 0);
  EXPECT_EQ(backend.reads + backend.writes, 0);
  EXPECT_EQ(backend.flushes, 1);
  EXPECT_EQ(server.requests_served(), 3u);
}

TEST_F(ServerTest, TheBackendDoesItsFileIoWhenAskedOrWhenTheModuleCannot) {
  for (const int how : {0, 1, 2}) {  // asked; a module without it; the module refuses
    SCOPED_TRACE(how);
    kernel_.revive();
    kernel_.info.features = DBLOCK_FEAT_KICK | (how == 1 ? 0 : DBLOCK_FEAT_FILE_IO);
    kernel_.refuse_file = how == 2 ? EBADF : 0;
    kernel_.set_file_calls = 0;
    KernelFileBackend backend(42);
    ServerOptions options;
    options.kernel_file_io = how != 0;
    std::vector<std::string> warnings;
    options.on_warning = [&](const std::string& w) { warnings.push_back(w); };
    Server server(5, backend, options);
    ASSERT_TRUE(serve_read_write_flush(kernel_, server));
    EXPECT_FALSE(server.kernel_file_io());
    EXPECT_EQ(kernel_.set_file_calls, how == 2 ? 1 : 0);
    EXPECT_EQ(kernel_.done.at({0, 1}).flags, 0);
    EXPECT_EQ(kernel_.done.at({1, 2}).flags, 0);
    EXPECT_EQ(backend.reads, 1);
    EXPECT_EQ(backend.writes, 1);
    ASSERT_EQ(warnings.size(), how == 2 ? 1u : 0u);
    if (how == 2) {
      EXPECT_NE(warnings[0].find("DBLOCK_IOC_SET_FILE (fd 42, offset 8192)"), std::string::npos)
          << warnings[0];
      EXPECT_NE(warnings[0].find("the backend does its reads and writes"), std::string::npos)
          << warnings[0];
    }
  }
}

TEST_F(ServerTest, AFileOnIoUring) {
  if (!UringFileBackend::available()) GTEST_SKIP() << "libdblock built without liburing";
  char path[] = "/tmp/dblock-uring-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(::ftruncate(fd, 1 << 20), 0);
  FileBackend file(path);
  ::unlink(path);
  std::unique_ptr<UringFileBackend> uring;
  try {
    uring = std::make_unique<UringFileBackend>(file);
  } catch (const Error& e) {
    GTEST_SKIP() << "io_uring refused here: " << e.what();
  }
  kernel_.info.config.flags |= DBLOCK_DEV_DISCARD;
  Server server(5, *uring);
  EXPECT_EQ(server.workers(), 0u);
  std::thread runner([&] { server.run(); });
  std::memset(kernel_.buffer(1, 3), 0x6b, 8192);
  kernel_.submit(1, {3, DBLOCK_OP_WRITE, 0, DBLOCK_REQ_FUA, 65536, 8192, 1, 0});
  ASSERT_TRUE(kernel_.wait_done(1));
  std::memset(kernel_.buffer(0, 2), 0x3c, 4096);
  kernel_.submit(0, {2, DBLOCK_OP_WRITE, 0, 0, 4096, 4096, 2, 0});
  kernel_.submit(0, {1, DBLOCK_OP_FLUSH, 0, 0, 0, 0, 3, 0});
  ASSERT_TRUE(kernel_.wait_done(3));
  kernel_.submit(0, {0, DBLOCK_OP_READ, 0, 0, 65536 + 4096, 4096, 4, 0});
  kernel_.submit(1, {0, DBLOCK_OP_DISCARD, 0, 0, 4096, 4096, 5, 0});
  ASSERT_TRUE(kernel_.wait_done(5));
  EXPECT_EQ(uring->syncs_issued(), 2u);  // the FUA write's and the flush's
  ASSERT_EQ(::ftruncate(fd, 65536 + 4096), 0);
  std::memset(kernel_.buffer(1, 1), 0x77, 8192);
  kernel_.submit(1, {1, DBLOCK_OP_READ, 0, 0, 65536, 8192, 6, 0});
  ASSERT_TRUE(kernel_.wait_done(6));
  kernel_.destroy();
  runner.join();
  std::vector<std::byte> file_bytes(8192);
  ASSERT_EQ(::pread(fd, file_bytes.data(), 8192, 0), 8192);
  EXPECT_EQ(file_bytes[4096], std::byte{0}) << "the discard did not reach the file";
  ASSERT_EQ(::pread(fd, file_bytes.data(), 4096, 65536), 4096);
  EXPECT_EQ(file_bytes[0], std::byte{0x6b}) << "the write did not reach the file";
  ::close(fd);

  for (const auto& [key, c] : kernel_.done) EXPECT_EQ(c.result, 0) << "seq " << key.second;
  EXPECT_EQ(kernel_.duplicates, 0);
  EXPECT_EQ(kernel_.buffer(0, 0)[0], std::byte{0x6b});
  EXPECT_EQ(kernel_.buffer(0, 0)[4095], std::byte{0x6b});
  // 4 KiB left in the file, then zeros.
  EXPECT_EQ(kernel_.buffer(1, 1)[4095], std::byte{0x6b});
  EXPECT_EQ(kernel_.buffer(1, 1)[4096], std::byte{0});
  EXPECT_EQ(kernel_.buffer(1, 1)[8191], std::byte{0});
}


#ifdef DBLOCK_HAVE_NBD
// nbdkit serving PLUGIN ARGS... on a unix socket in a directory of its own,
// until killed or destroyed (--exit-with-parent if the test dies).
class Nbdkit {
 public:
  explicit Nbdkit(std::vector<std::string> args) : args_(std::move(args)) {
    char dir[] = "/tmp/dblock-nbd-XXXXXX";
    EXPECT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    start();
  }
  ~Nbdkit() {
    kill();
    std::filesystem::remove_all(dir_);
  }
  std::string socket() const { return dir_ + "/sock"; }
  std::string uri() const { return "nbd+unix:///?socket=" + socket(); }
  std::string file(const char* name) const { return dir_ + "/" + name; }

  // Starts it and waits until it accepts connections (it writes its pid
  // file then).
  void start() {
    const std::string pidfile = dir_ + "/pid";
    std::filesystem::remove(pidfile);
    std::filesystem::remove(socket());
    std::vector<std::string> argv = {"nbdkit", "-f", "--exit-with-parent", "-U", socket(),
                                     "-P", pidfile};
    argv.insert(argv.end(), args_.begin(), args_.end());
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      std::vector<char*> c;
      for (auto& a : argv) c.push_back(a.data());
      c.push_back(nullptr);
      ::execvp("nbdkit", c.data());
      ::_exit(127);
    }
    for (int i = 0; i < 1000 && !std::filesystem::exists(pidfile); ++i) {
      int status;
      ASSERT_EQ(::waitpid(pid_, &status, WNOHANG), 0)
          << "nbdkit exited (is it installed? scripts/install-deps.sh)";
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(std::filesystem::exists(pidfile)) << "nbdkit did not start in 10 s";
  }
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  std::vector<std::string> args_;
  std::string dir_;
  pid_t pid_ = -1;
};

// Every operation through an NBD export: data both ways, FUA, flush,
// trim and write zeroes reach nbdkit's memory plugin.
TEST_F(ServerTest, AnNbdExport) {
  Nbdkit nbdkit({"memory", "1M"});
  NbdBackend::Options options;
  options.uri = nbdkit.uri();
  options.connections = 2;
  NbdBackend nbd(options);
  EXPECT_EQ(nbd.size(), 1u << 20);
  EXPECT_EQ(nbd.connections(), 2u);  // nbdkit's memory plugin has multi-conn
  EXPECT_TRUE(nbd.supports_flush());
  EXPECT_TRUE(nbd.supports_discard());
  EXPECT_TRUE(nbd.supports_write_zeroes());
  EXPECT_FALSE(nbd.read_only());
  kernel_.info.config.flags |= DBLOCK_DEV_DISCARD | DBLOCK_DEV_WRITE_ZEROES;
  Server server(5, nbd);
  std::thread runner([&] { server.run(); });
  std::memset(kernel_.buffer(1, 3), 0x6b, 8192);
  kernel_.submit(1, {3, DBLOCK_OP_WRITE, 0, DBLOCK_REQ_FUA, 65536, 8192, 1, 0});
  std::memset(kernel_.buffer(0, 2), 0x3c, 4096);
  kernel_.submit(0, {2, DBLOCK_OP_WRITE, 0, 0, 4096, 4096, 2, 0});
  ASSERT_TRUE(kernel_.wait_done(2));
  kernel_.submit(0, {1, DBLOCK_OP_FLUSH, 0, 0, 0, 0, 3, 0});
  kernel_.submit(1, {0, DBLOCK_OP_DISCARD, 0, 0, 65536, 4096, 4, 0});
  kernel_.submit(1, {1, DBLOCK_OP_WRITE_ZEROES, 0, DBLOCK_REQ_NOUNMAP, 65536 + 4096, 512, 5, 0});
  ASSERT_TRUE(kernel_.wait_done(5));
  std::memset(kernel_.buffer(0, 0), 0x77, 8192);
  kernel_.submit(0, {0, DBLOCK_OP_READ, 0, 0, 65536, 8192, 6, 0});
  kernel_.submit(0, {3, DBLOCK_OP_READ, 0, 0, 4096, 4096, 7, 0});
  ASSERT_TRUE(kernel_.wait_done(7));
  kernel_.destroy();
  runner.join();
  for (const auto& [key, c] : kernel_.done) EXPECT_EQ(c.result, 0) << "seq " << key.second;
  EXPECT_EQ(kernel_.buffer(0, 0)[0], std::byte{0}) << "trimmed: zeros";
  EXPECT_EQ(kernel_.buffer(0, 0)[4095], std::byte{0});
  EXPECT_EQ(kernel_.buffer(0, 0)[4096], std::byte{0}) << "zeroed";
  EXPECT_EQ(kernel_.buffer(0, 0)[4096 + 511], std::byte{0});
  EXPECT_EQ(kernel_.buffer(0, 0)[4096 + 512], std::byte{0x6b}) << "written";
  EXPECT_EQ(kernel_.buffer(0, 0)[8191], std::byte{0x6b});
  EXPECT_EQ(kernel_.buffer(0, 3)[0], std::byte{0x3c});
  EXPECT_EQ(kernel_.buffer(0, 3)[4095], std::byte{0x3c});
  EXPECT_EQ(nbd.reconnections(), 0u);
}

// A FUA write to an export without FUA is the write, then a flush: nbdkit's
// eval plugin (a file, written with dd) says can_fua none and counts flushes.
TEST_F(ServerTest, AnNbdExportWithoutFua) {
  char dir[] = "/tmp/dblock-nbd-eval-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string image = std::string(dir) + "/disk";
  const std::string flushes = std::string(dir) + "/flushes";
  { std::ofstream create(image); }
  std::filesystem::resize_file(image, 1 << 20);
  Nbdkit nbdkit({"eval", "get_size=echo 1048576",
                 "pread=dd if=" + image + " skip=$4 count=$3 iflag=skip_bytes,count_bytes "
                     "status=none",
                 "pwrite=dd of=" + image + " seek=$4 conv=notrunc oflag=seek_bytes status=none",
                 "flush=echo >> " + flushes, "can_fua=echo none"});
  NbdBackend nbd({.uri = nbdkit.uri()});
  EXPECT_TRUE(nbd.supports_flush());
  Server server(5, nbd);
  std::thread runner([&] { server.run(); });
  std::memset(kernel_.buffer(1, 0), 0x5a, 4096);
  kernel_.submit(1, {0, DBLOCK_OP_WRITE, 0, DBLOCK_REQ_FUA, 0, 4096, 1, 0});
  ASSERT_TRUE(kernel_.wait_done(1));
  EXPECT_EQ(std::filesystem::file_size(flushes), 1u) << "no flush after the FUA write";
  std::memset(kernel_.buffer(0, 1), 0, 4096);
  kernel_.submit(0, {1, DBLOCK_OP_READ, 0, 0, 0, 4096, 2, 0});
  ASSERT_TRUE(kernel_.wait_done(2));
  kernel_.destroy();
  runner.join();
  for (const auto& [key, c] : kernel_.done) EXPECT_EQ(c.result, 0) << "seq " << key.second;
  EXPECT_EQ(kernel_.buffer(0, 1)[4095], std::byte{0x5a});
  std::filesystem::remove_all(dir);
}

// The server goes away and comes back: held requests are sent again and
// succeed.
TEST_F(ServerTest, AnNbdServerThatRestartsWhileRequestsAreHeld) {
  char dir[] = "/tmp/dblock-nbd-file-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string image = std::string(dir) + "/disk";
  { std::ofstream create(image); }
  std::filesystem::resize_file(image, 1 << 20);
  Nbdkit nbdkit({"file", image});
  std::vector<std::string> events;
  std::mutex events_mu;
  NbdBackend::Options options;
  options.uri = nbdkit.uri();
  options.hold_while_disconnected = true;
  options.max_backoff = std::chrono::milliseconds(100);
  options.on_event = [&](const std::string& e) {
    std::lock_guard lock(events_mu);
    events.push_back(e);
  };
  NbdBackend nbd(options);
  Server server(5, nbd);
  std::thread runner([&] { server.run(); });
  std::memset(kernel_.buffer(0, 0), 0x42, 8192);
  kernel_.submit(0, {0, DBLOCK_OP_WRITE, 0, 0, 0, 8192, 1, 0});
  ASSERT_TRUE(kernel_.wait_done(1));
  nbdkit.kill();
  std::memset(kernel_.buffer(1, 1), 0x24, 4096);
  kernel_.submit(1, {1, DBLOCK_OP_WRITE, 0, 0, 8192, 4096, 2, 0});
  kernel_.submit(0, {2, DBLOCK_OP_READ, 0, 0, 0, 8192, 3, 0});
  {
    // Held, not failed, while nothing listens.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::lock_guard lock(kernel_.mu);
    EXPECT_EQ(kernel_.done.size(), 1u) << "a request was answered with no server";
  }
  nbdkit.start();
  ASSERT_TRUE(kernel_.wait_done(3));
  kernel_.destroy();
  runner.join();
  for (const auto& [key, c] : kernel_.done) EXPECT_EQ(c.result, 0) << "seq " << key.second;
  EXPECT_EQ(kernel_.buffer(0, 2)[0], std::byte{0x42});
  EXPECT_EQ(kernel_.buffer(0, 2)[8191], std::byte{0x42});
  EXPECT_GE(nbd.reconnections(), 1u);
  std::filesystem::remove_all(dir);
  std::lock_guard lock(events_mu);
  ASSERT_FALSE(events.empty());
  EXPECT_NE(events.front().find("connection lost"), std::string::npos) << events.front();
}

TEST_F(ServerTest, AnNbdServerGoneFailsRequestsAtOnceWithoutHolding) {
  Nbdkit nbdkit({"memory", "1M"});
  NbdBackend nbd({.uri = nbdkit.uri(), .on_event = [](const std::string&) {}});
  Server server(5, nbd);
  std::thread runner([&] { server.run(); });
  nbdkit.kill();
  kernel_.submit(0, {0, DBLOCK_OP_READ, 0, 0, 0, 4096, 1, 0});
  ASSERT_TRUE(kernel_.wait_done(1));
  kernel_.destroy();
  runner.join();
  EXPECT_EQ(kernel_.done.at({0, 1}).result, -EIO);
}

TEST(NbdBackendTest, NoServerSaysSoWithTheFix) {
  try {
    NbdBackend nbd({.uri = "nbd+unix:///?socket=/nonexistent/dblock.sock"});
    FAIL() << "connected to nothing";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no NBD server listens there"), std::string::npos)
        << e.what();
  }
}

TEST(NbdBackendTest, AnUnknownExportSaysSo) {
  Nbdkit nbdkit({"--filter=exportname", "memory", "1M", "exportname=disk1",
                 "exportname-strict=true"});
  try {
    NbdBackend nbd({.uri = "nbd+unix:///disk2?socket=" + nbdkit.socket()});
    FAIL() << "connected to an export the server does not have";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("list the exports: nbdinfo --list URI"), std::string::npos) << e.what();
  }
}

TEST(NbdBackendTest, MoreConnectionsThanTheExportAllows) {
  Nbdkit nbdkit({"--filter=multi-conn", "memory", "1M", "multi-conn-mode=disable"});
  EXPECT_THROW(NbdBackend({.uri = nbdkit.uri(), .connections = 2}), Error);
  NbdBackend fewer({.uri = nbdkit.uri(), .connections = 2, .fewer_connections_ok = true});
  EXPECT_EQ(fewer.connections(), 1u);
}
#endif
}  // namespace
}  // namespace dblock
