// Tests of dblock.ko through its raw ABI (include/uapi/linux/dblock.h),
// without libdblock, so that the kernel's own checks are what is tested.
// Runs inside a guest, as root, with dblock.ko loaded.
#include <gtest/gtest.h>

#include <linux/dblock.h>

#include <algorithm>
#include <atomic>
#include <linux/capability.h>
#include <linux/fs.h>
#include <memory>
#include <mutex>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <iterator>
#include <new>
#include <random>
#include <limits>
#include <fcntl.h>
#include <string>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <pthread.h>
#include <signal.h>

namespace {

class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept { reset(std::exchange(o.fd_, -1)); return *this; }
    ~Fd() { reset(); }
    void reset(int fd = -1) { if (fd_ >= 0) ::close(fd_); fd_ = fd; }
    int get() const { return fd_; }
private:
    int fd_;
};

class Mapping {
public:
    Mapping(void* p, size_t len) : p_(p), len_(len) {}
    Mapping(Mapping&& o) noexcept : p_(std::exchange(o.p_, MAP_FAILED)), len_(o.len_) {}
    ~Mapping() { if (p_ != MAP_FAILED) munmap(p_, len_); }
    std::byte* data() const { return static_cast<std::byte*>(p_); }
private:
    void* p_;
    size_t len_;
};

// Returns 0 or the errno of the ioctl.
template <typename T>
int Ioctl(int fd, unsigned long cmd, T* arg) {
    return ::ioctl(fd, cmd, arg) == 0 ? 0 : errno;
}

Fd OpenCtl() {
    Fd fd(::open("/dev/dblockctl", O_RDWR | O_CLOEXEC));
    EXPECT_GE(fd.get(), 0) << "open /dev/dblockctl: " << strerror(errno);
    return fd;
}

dblock_dev_config Config(const std::string& name) {
    dblock_dev_config c{};
    std::strncpy(c.name, name.c_str(), sizeof(c.name) - 1);
    c.size_bytes = 64 << 20;
    c.logical_block_size = 4096;
    c.max_io_bytes = 128 << 10;
    c.nr_queues = 2;
    c.queue_depth = 16;
    c.flags = DBLOCK_DEV_FLUSH;
    return c;
}

std::string Sysfs(const std::string& path) {
    FILE* f = fopen(path.c_str(), "r");
    if (!f) return "(missing " + path + ")";
    char buf[256] = {};
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    std::string v(buf, n);
    while (!v.empty() && v.back() == '\n') v.pop_back();
    return v;
}

int Create(int ctl, const dblock_dev_config& c, dblock_dev_info* info = nullptr) {
    dblock_ctl_create cr{};
    cr.config = c;
    int err = Ioctl(ctl, DBLOCK_CTL_CREATE, &cr);
    if (!err && info) *info = cr.info;
    return err;
}

int DestroyByName(int ctl, const std::string& name) {
    dblock_ctl_target t{};
    std::strncpy(t.name, name.c_str(), sizeof(t.name) - 1);
    return Ioctl(ctl, DBLOCK_CTL_DESTROY, &t);
}

int InfoById(int ctl, __u32 id, dblock_dev_info* info) {
    dblock_ctl_get_info gi{};
    gi.target.id = id;
    int err = Ioctl(ctl, DBLOCK_CTL_GET_INFO, &gi);
    if (!err) *info = gi.info;
    return err;
}

std::vector<__u32> List(int ctl) {
    std::vector<__u32> ids(DBLOCK_MAX_QUEUES);
    dblock_ctl_list l{};
    l.ids_ptr = reinterpret_cast<uintptr_t>(ids.data());
    l.capacity = ids.size();
    EXPECT_EQ(Ioctl(ctl, DBLOCK_CTL_LIST, &l), 0);
    ids.resize(std::min<size_t>(l.count, ids.size()));
    return ids;
}

std::string ChanPath(__u32 id) { return "/dev/dblock/" + std::to_string(id); }

bool WaitForPath(const std::string& path, bool present) {
    for (int i = 0; i < 500; i++) {
        struct stat st;
        if ((::stat(path.c_str(), &st) == 0) == present) return true;
        usleep(10000);
    }
    return false;
}

// Waits for a condition polled every 10 ms, up to `limit`.
template <typename F>
bool Eventually(F cond, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (cond()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return cond();
}

// The state letter of /proc/PID/stat ('R', 'S', 'D', ...), or 0.
char ProcState(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t paren = stat.rfind(')');
    return paren == std::string::npos || paren + 2 >= stat.size() ? 0 : stat[paren + 2];
}

// Whether signal `sig` is pending for process `pid` (sent to the process, as kill() does).
bool ProcessSignalPending(pid_t pid, int sig) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("ShdPnd:", 0) == 0) return (std::stoull(line.substr(7), nullptr, 16) >> (sig - 1)) & 1;
    return false;
}

TEST(Control, VersionAndFeatures) {
    Fd ctl = OpenCtl();
    dblock_ctl_version v{};
    ASSERT_EQ(Ioctl(ctl.get(), DBLOCK_CTL_GET_VERSION, &v), 0);
    EXPECT_EQ(v.abi_version, DBLOCK_ABI_VERSION);
    EXPECT_EQ(v.features & DBLOCK_FEAT_FLUSH, DBLOCK_FEAT_FLUSH);
    EXPECT_EQ(v.features & DBLOCK_FEAT_USER_BUFFERS, DBLOCK_FEAT_USER_BUFFERS);
    EXPECT_EQ(v.features & DBLOCK_FEAT_KICK, DBLOCK_FEAT_KICK);
    EXPECT_EQ(v.features & DBLOCK_FEAT_COMMIT, DBLOCK_FEAT_COMMIT);
    EXPECT_EQ(v.__pad, 0u);
}

TEST(Control, UnknownCommandIsENOTTY) {
    Fd ctl = OpenCtl();
    int dummy = 0;
    EXPECT_EQ(Ioctl(ctl.get(), _IOW(DBLOCK_IOCTL_TYPE, 0x3f, int), &dummy), ENOTTY);
}

TEST(Control, CreateRejectsEachInvalidField) {
    Fd ctl = OpenCtl();
    struct Case {
        const char* what;
        void (*mutate)(dblock_dev_config&);
    };
    const Case cases[] = {
        {"empty name", [](dblock_dev_config& c) { c.name[0] = 0; }},
        {"slash in name", [](dblock_dev_config& c) { std::strcpy(c.name, "a/b"); }},
        {"space in name", [](dblock_dev_config& c) { std::strcpy(c.name, "a b"); }},
        {"reserved name", [](dblock_dev_config& c) { std::strcpy(c.name, "dblockctl"); }},
        {"unterminated name", [](dblock_dev_config& c) { std::memset(c.name, 'a', sizeof(c.name)); }},
        {"block size 0", [](dblock_dev_config& c) { c.logical_block_size = 0; }},
        {"block size 768", [](dblock_dev_config& c) { c.logical_block_size = 768; }},
        {"block size 8192", [](dblock_dev_config& c) { c.logical_block_size = 8192; }},
        {"size 0", [](dblock_dev_config& c) { c.size_bytes = 0; }},
        {"size not a block multiple", [](dblock_dev_config& c) { c.size_bytes = (64 << 20) + 512; }},
        {"size overflows", [](dblock_dev_config& c) { c.size_bytes = ~0ULL << 12; }},
        {"max io 0", [](dblock_dev_config& c) { c.max_io_bytes = 0; }},
        {"max io not 4k multiple", [](dblock_dev_config& c) { c.max_io_bytes = 6144; c.logical_block_size = 512; }},
        {"max io too large", [](dblock_dev_config& c) { c.max_io_bytes = DBLOCK_MAX_IO_BYTES * 2; }},
        {"0 queues", [](dblock_dev_config& c) { c.nr_queues = 0; }},
        {"too many queues", [](dblock_dev_config& c) { c.nr_queues = DBLOCK_MAX_QUEUES + 1; }},
        {"depth 0", [](dblock_dev_config& c) { c.queue_depth = 0; }},
        {"depth too large", [](dblock_dev_config& c) { c.queue_depth = DBLOCK_MAX_QUEUE_DEPTH + 1; }},
        {"buffer too large", [](dblock_dev_config& c) { c.queue_depth = 1024; c.max_io_bytes = 1 << 20; }},
        {"unknown flag", [](dblock_dev_config& c) { c.flags |= 1ULL << 40; }},
        {"nonzero pad", [](dblock_dev_config& c) { c.__pad[6] = 1; }},
        {"nonzero reserved", [](dblock_dev_config& c) { c.__reserved[3] = 1; }},
    };
    for (const Case& k : cases) {
        dblock_dev_config c = Config("abi-invalid");
        k.mutate(c);
        EXPECT_EQ(Create(ctl.get(), c), EINVAL) << k.what;
    }
    dblock_ctl_target t{};
    std::strcpy(t.name, "abi-invalid");
    EXPECT_EQ(Ioctl(ctl.get(), DBLOCK_CTL_DESTROY, &t), ENODEV) << "an invalid create left a device";
}

TEST(Control, CreateInfoListDestroy) {
    Fd ctl = OpenCtl();
    dblock_dev_config c = Config("abi-life");
    dblock_dev_info info{};
    ASSERT_EQ(Create(ctl.get(), c, &info), 0);
    EXPECT_STREQ(info.config.name, "abi-life");
    EXPECT_EQ(info.config.size_bytes, c.size_bytes);
    EXPECT_EQ(info.config.nr_queues, 2);
    EXPECT_EQ(info.state, DBLOCK_STATE_CREATED);
    EXPECT_EQ(info.server_pid, 0);
    EXPECT_GE(info.buffer_bytes, 16u * (128 << 10));
    EXPECT_EQ(info.buffer_bytes % sysconf(_SC_PAGESIZE), 0);
    EXPECT_TRUE(WaitForPath(ChanPath(info.id), true)) << ChanPath(info.id);

    EXPECT_EQ(Create(ctl.get(), c), EEXIST);

    dblock_dev_info byid{};
    ASSERT_EQ(InfoById(ctl.get(), info.id, &byid), 0);
    EXPECT_STREQ(byid.config.name, "abi-life");
    std::vector<__u32> ids = List(ctl.get());
    EXPECT_NE(std::find(ids.begin(), ids.end(), info.id), ids.end());

    dblock_ctl_list l{};
    ASSERT_EQ(Ioctl(ctl.get(), DBLOCK_CTL_LIST, &l), 0) << "capacity 0 must only count";
    EXPECT_GE(l.count, 1u);

    dblock_ctl_target bad{};
    bad.flags = 1u << 5;  // not a known flag
    EXPECT_EQ(Ioctl(ctl.get(), DBLOCK_CTL_DESTROY, &bad), EINVAL);

    ASSERT_EQ(DestroyByName(ctl.get(), "abi-life"), 0);
    EXPECT_EQ(InfoById(ctl.get(), info.id, &byid), ENODEV);
    EXPECT_EQ(DestroyByName(ctl.get(), "abi-life"), ENODEV);
    EXPECT_TRUE(WaitForPath(ChanPath(info.id), false));
}

// A server on the raw ABI, one thread per queue, data in a vector.  Its
// misbehaviours are switched on by the tests.
class RawServer {
public:
    std::atomic<int> stale_seq_once{0};   // answer once with a wrong seq first
    std::atomic<int> double_answer_once{0};
    std::atomic<int> fail_reads_with{0};  // negative errno for every read
    std::atomic<bool> swallow{false};     // take requests, never answer, exit
    std::atomic<bool> ignore{false};      // take requests, keep them unanswered
    std::atomic<bool> answer_ignored{false};  // then answer them late
    std::atomic<int> bad_tag_once{0};     // also send an answer for a tag out of range
    std::atomic<unsigned> ops[5]{};       // requests seen, by DBLOCK_OP_*
    std::atomic<unsigned> nounmap{0};     // write zeroes with DBLOCK_REQ_NOUNMAP
    std::atomic<unsigned> resized{0};     // DBLOCK_SERVE_RESIZED seen
    std::atomic<uint64_t> size{0};        // the device's size as the server knows it
    std::atomic<unsigned> rejected{0};
    std::atomic<unsigned> served{0};
    std::atomic<unsigned> empty_returns{0};  // SERVE came back with nothing at all
    std::atomic<unsigned> empty_returns_of[DBLOCK_MAX_QUEUES]{};  // the same, by queue
    // Requests at or past this offset are kept unanswered, as with `ignore`.
    std::atomic<uint64_t> hold_from{std::numeric_limits<uint64_t>::max()};
    std::atomic<unsigned> swallowed{0};
    std::atomic<int> gone_queues{0};
    // Answers go to other threads (start_committers()), which hand them
    // back with DBLOCK_IOC_COMMIT while the queue threads wait in SERVE.
    std::atomic<bool> commit_elsewhere{false};
    std::atomic<unsigned> committed{0};       // answers COMMIT took
    std::atomic<unsigned> commit_errors{0};   // COMMIT calls that failed
    // Reads and writes are answered DBLOCK_CPL_FILE: the kernel does them on
    // the file set with DBLOCK_IOC_SET_FILE, and the slots are not touched.
    std::atomic<bool> answer_with_file{false};
    std::atomic<bool> writes_answered_plainly{false};  // ... but writes with a bare 0
    std::atomic<int> file_with_result_once{0};  // also send DBLOCK_CPL_FILE with an error
    std::atomic<int> unknown_flag_once{0};      // also send an answer with an unknown flag
    std::atomic<unsigned> write_data_seen{0};   // write slots not left as fill_slots() left them

    // The data outlives a server when another takes over.
    using Data = std::shared_ptr<std::vector<std::byte>>;
    static Data NewData(size_t bytes) { return std::make_shared<std::vector<std::byte>>(bytes); }

    std::atomic<bool> skip_read_copy{false};  // answer reads without filling the slot
    // dblock_serve.request_size (set before start_threads()); past the
    // struct, elements must come back zeroed.
    unsigned request_size = sizeof(dblock_request);
    std::atomic<unsigned> dirty_requests{0};  // nonzero reserved bytes or tails

    // Where request data lives: the kernel's area mapped from the channel, or
    // the server's own memory passed in every SERVE (DBLOCK_FEAT_USER_BUFFERS).
    enum class Buffers { kMapped, kUser };

    explicit RawServer(const dblock_dev_info& info, Data data = nullptr,
                       Buffers buffers = Buffers::kMapped)
        : info_(info), data_(data ? data : NewData(info.config.size_bytes)),
          user_buffers_(buffers == Buffers::kUser) {
        size = info.config.size_bytes;
        chan_.reset(::open(ChanPath(info.id).c_str(), O_RDWR | O_CLOEXEC));
        if (chan_.get() < 0) throw std::runtime_error("open channel: " + std::string(strerror(errno)));
        for (unsigned q = 0; q < info.config.nr_queues; q++) {
            void* p = user_buffers_
                          ? mmap(nullptr, info.buffer_bytes, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
                          : mmap(nullptr, info.buffer_bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
                                 chan_.get(), off_t(q) * info.buffer_bytes);
            if (p == MAP_FAILED) throw std::runtime_error("mmap: " + std::string(strerror(errno)));
            maps_.emplace_back(p, info.buffer_bytes);
        }
    }

    // Changes the protection of every queue's buffer (user buffers only).
    void protect_buffers(int prot) {
        for (auto& m : maps_) ASSERT_EQ(mprotect(m.data(), info_.buffer_bytes, prot), 0) << strerror(errno);
    }

    ~RawServer() {
        if (!threads_.empty()) stop();
        join();  // the committers
    }

    int chan() const { return chan_.get(); }
    // Fills every slot with `byte`, to see what the kernel writes there.
    void fill_slots(unsigned char byte) {
        for (auto& m : maps_) std::memset(m.data(), byte, info_.buffer_bytes);
    }
    void close_channel() { maps_.clear(); chan_.reset(); }

    void start_threads() {
        for (unsigned q = 0; q < info_.config.nr_queues; q++)
            threads_.emplace_back([this, q] {
                serve(q);
                finished_++;
            });
    }
    void join() {
        for (auto& t : threads_) t.join();
        threads_.clear();
        {
            std::lock_guard lock(commit_mu_);
            committers_stop_ = true;
        }
        commit_cv_.notify_all();
        committers_.clear();  // joins
    }
    // `n` threads that hand back the queue threads' answers, a few at a time.
    void start_committers(unsigned n) {
        commit_elsewhere = true;
        for (unsigned i = 0; i < n; i++) committers_.emplace_back([this, i] { commit_loop(i); });
    }
    // Requests kept unanswered and not answered yet.
    size_t held() {
        std::lock_guard lock(ignored_mu_);
        return ignored_.size();
    }
    // Answers the requests kept unanswered so far, now.
    void answer_ignored_now() {
        answer_ignored = true;
        for (auto& t : threads_) pthread_kill(t.native_handle(), SIGUSR1);
    }

    // Threads blocked in SERVE wake up only for work, GONE or a signal.
    void stop() {
        stop_ = true;
        while (finished_ < int(threads_.size())) {
            for (auto& t : threads_) pthread_kill(t.native_handle(), SIGUSR1);
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        join();
    }

private:
    void serve(unsigned q) {
        const unsigned depth = info_.config.queue_depth;
        std::vector<std::byte> reqs(size_t(depth) * request_size);
        std::vector<dblock_completion> cpls;
        for (;;) {
            if (answer_ignored) {
                std::lock_guard lock(ignored_mu_);
                for (auto it = ignored_.begin(); it != ignored_.end();) {
                    if (it->__reserved == q) {
                        cpls.push_back(*it);
                        cpls.back().__reserved = 0;
                        it = ignored_.erase(it);
                    } else {
                        ++it;
                    }
                }
            }
            dblock_serve s{};
            s.queue = q;
            s.completions_ptr = reinterpret_cast<uintptr_t>(cpls.data());
            s.nr_completions = cpls.size();
            s.requests_ptr = reinterpret_cast<uintptr_t>(reqs.data());
            s.request_size = uint16_t(request_size);
            s.max_requests = depth;
            std::memset(reqs.data(), 0xa5, reqs.size());  // the kernel's zeroes must show
            if (user_buffers_) s.buffer_ptr = reinterpret_cast<uintptr_t>(maps_[q].data());
            int err = Ioctl(chan_.get(), DBLOCK_IOC_SERVE, &s);
            cpls.clear();
            if (err == EINTR) {
                if (stop_) return;
                continue;
            }
            if (err) { ADD_FAILURE() << "SERVE: " << strerror(err); return; }
            rejected += s.nr_rejected;
            if (s.status & DBLOCK_SERVE_RESIZED) {
                dblock_dev_info now{};
                EXPECT_EQ(Ioctl(chan_.get(), DBLOCK_IOC_GET_INFO, &now), 0);
                size = now.config.size_bytes;
                resized++;
            }
            if (s.status & DBLOCK_SERVE_GONE) { gone_queues++; return; }
            if (!s.nr_requests && !s.status && !s.nr_rejected) {
                empty_returns++;
                empty_returns_of[q]++;
            }

            if (swallow && s.nr_requests) {
                swallowed++;
                return;
            }
            for (unsigned i = 0; i < s.nr_requests; i++) {
                const std::byte* elem = reqs.data() + size_t(i) * request_size;
                dblock_request r;
                std::memcpy(&r, elem, sizeof(r));
                if (r.__pad || r.__reserved ||
                    std::any_of(elem + sizeof(r), elem + request_size, [](std::byte b) { return b != std::byte{0}; }))
                    dirty_requests++;
                std::byte* slot = maps_[q].data() + size_t(r.tag) * info_.config.max_io_bytes;
                int result = 0;
                if (r.op < 5) ops[r.op]++;
                if (r.op == DBLOCK_OP_WRITE_ZEROES && (r.flags & DBLOCK_REQ_NOUNMAP)) nounmap++;
                const bool has_data = r.op == DBLOCK_OP_READ || r.op == DBLOCK_OP_WRITE;
                uint16_t cpl_flags = 0;
                if (answer_with_file && has_data) {
                    if (r.op == DBLOCK_OP_WRITE &&
                        std::any_of(slot, slot + r.length, [](std::byte b) { return b != std::byte{0x5a}; }))
                        write_data_seen++;
                    if (r.op == DBLOCK_OP_READ || !writes_answered_plainly) cpl_flags = DBLOCK_CPL_FILE;
                } else if (r.op == DBLOCK_OP_FLUSH) {
                    if (r.offset || r.length) ADD_FAILURE() << "flush with a range";
                } else if (r.offset + r.length > std::min<uint64_t>(size, data_->size()) ||
                           (has_data && r.length > info_.config.max_io_bytes)) {
                    ADD_FAILURE() << "request out of range: " << r.offset << "+" << r.length;
                    result = -EIO;
                } else if (r.op == DBLOCK_OP_READ) {
                    if (fail_reads_with) result = fail_reads_with;
                    else if (!skip_read_copy) std::memcpy(slot, data_->data() + r.offset, r.length);
                } else if (r.op == DBLOCK_OP_WRITE) {
                    std::memcpy(data_->data() + r.offset, slot, r.length);
                } else if (r.op == DBLOCK_OP_DISCARD || r.op == DBLOCK_OP_WRITE_ZEROES) {
                    std::memset(data_->data() + r.offset, 0, r.length);
                } else {
                    ADD_FAILURE() << "unknown op " << int(r.op);
                    result = -EIO;
                }
                dblock_completion c{};
                c.tag = r.tag;
                c.seq = r.seq;
                c.result = result;
                c.flags = cpl_flags;
                if (file_with_result_once.exchange(0)) {
                    dblock_completion bad = c;
                    bad.flags = DBLOCK_CPL_FILE;
                    bad.result = -EIO;
                    cpls.push_back(bad);
                }
                if (unknown_flag_once.exchange(0)) {
                    dblock_completion bad = c;
                    bad.flags = 1U << 1;
                    cpls.push_back(bad);
                }
                if (ignore || (r.op != DBLOCK_OP_FLUSH && r.offset >= hold_from)) {
                    std::lock_guard lock(ignored_mu_);
                    ignored_.push_back(c);
                    ignored_.back().__reserved = q;  // which queue must answer it
                    continue;
                }
                if (bad_tag_once.exchange(0)) {
                    dblock_completion bad = c;
                    bad.tag = uint16_t(info_.config.queue_depth + 5);
                    cpls.push_back(bad);
                }
                if (stale_seq_once.exchange(0)) {
                    dblock_completion bad = c;
                    bad.seq = r.seq + 1;
                    cpls.push_back(bad);
                }
                served++;
                if (commit_elsewhere) {
                    std::lock_guard lock(commit_mu_);
                    to_commit_.push_back({q, c});
                    if (double_answer_once.exchange(0)) to_commit_.push_back({q, c});
                    commit_cv_.notify_one();
                    continue;
                }
                cpls.push_back(c);
                if (double_answer_once.exchange(0)) cpls.push_back(c);
            }
        }
    }

    // Takes up to 1, 2, 3... answers of one queue and commits them together.
    void commit_loop(unsigned index) {
        for (;;) {
            std::vector<dblock_completion> batch;
            unsigned q = 0;
            {
                std::unique_lock lock(commit_mu_);
                commit_cv_.wait(lock, [&] { return committers_stop_ || !to_commit_.empty(); });
                if (to_commit_.empty()) return;
                q = to_commit_.front().first;
                for (auto it = to_commit_.begin(); it != to_commit_.end() && batch.size() <= index;) {
                    if (it->first == q) {
                        batch.push_back(it->second);
                        it = to_commit_.erase(it);
                    } else {
                        ++it;
                    }
                }
            }
            dblock_commit c{};
            c.queue = uint16_t(q);
            c.completions_ptr = reinterpret_cast<uintptr_t>(batch.data());
            c.nr_completions = uint32_t(batch.size());
            if (user_buffers_) c.buffer_ptr = reinterpret_cast<uintptr_t>(maps_[q].data());
            c.nr_rejected = 77;  // the kernel's count replaces it
            if (Ioctl(chan_.get(), DBLOCK_IOC_COMMIT, &c) != 0) {
                commit_errors++;
                continue;
            }
            committed += uint32_t(batch.size()) - c.nr_rejected;
            rejected += c.nr_rejected;
        }
    }

    dblock_dev_info info_;
    Data data_;
    bool user_buffers_;
    std::mutex commit_mu_;
    std::condition_variable commit_cv_;
    std::deque<std::pair<unsigned, dblock_completion>> to_commit_;
    bool committers_stop_ = false;  // guarded by commit_mu_
    std::vector<std::jthread> committers_;
    std::mutex ignored_mu_;
    std::vector<dblock_completion> ignored_;
    Fd chan_;
    std::vector<Mapping> maps_;
    std::vector<std::thread> threads_;
    std::atomic<bool> stop_{false};
    std::atomic<int> finished_{0};
};

class Served : public ::testing::Test {
protected:
    virtual dblock_dev_config Shape() { return Config(name_); }
    virtual RawServer::Buffers BufferKind() { return RawServer::Buffers::kMapped; }
    virtual void StartServer() {
        server_ = std::make_unique<RawServer>(info_, nullptr, BufferKind());
        server_->start_threads();
    }

    void SetUp() override {
        ctl_ = OpenCtl();
        ASSERT_EQ(Create(ctl_.get(), Shape(), &info_), 0);
        ASSERT_TRUE(WaitForPath(ChanPath(info_.id), true));
        StartServer();
        ASSERT_EQ(::ioctl(server_->chan(), DBLOCK_IOC_START), 0) << strerror(errno);
        ASSERT_TRUE(WaitForPath("/dev/" + name_, true));
    }
    void TearDown() override {
        if (server_) {
            EXPECT_EQ(DestroyByName(ctl_.get(), name_), 0);
            server_->join();
        }
    }
    Fd OpenDisk() {
        Fd fd(::open(("/dev/" + name_).c_str(), O_RDWR | O_DIRECT | O_CLOEXEC));
        EXPECT_GE(fd.get(), 0) << strerror(errno);
        return fd;
    }
    static void* Aligned(std::vector<std::byte>& v) {
        return reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(v.data()) + 4095) & ~uintptr_t(4095));
    }

    std::string name_ = "abi-served";
    Fd ctl_;
    dblock_dev_info info_{};
    std::unique_ptr<RawServer> server_;

    void RoundTripRandomData();
};

TEST_F(Served, ChannelIsExclusiveAndReportsServer) {
    Fd second(::open(ChanPath(info_.id).c_str(), O_RDWR));
    EXPECT_LT(second.get(), 0);
    EXPECT_EQ(errno, EBUSY);
    dblock_dev_info now{};
    ASSERT_EQ(InfoById(ctl_.get(), info_.id, &now), 0);
    EXPECT_EQ(now.server_pid, getpid());
    EXPECT_EQ(now.state, DBLOCK_STATE_LIVE);
    EXPECT_NE(now.disk_major, 0u);
    EXPECT_EQ(::ioctl(server_->chan(), DBLOCK_IOC_START), -1);
    EXPECT_EQ(errno, EALREADY);
}

TEST_F(Served, BadMmapAndServeArgumentsAreRefused) {
    void* p = mmap(nullptr, 4096, PROT_READ, MAP_SHARED, server_->chan(), 4096);
    EXPECT_EQ(p, MAP_FAILED) << "an offset inside a queue's area";
    p = mmap(nullptr, info_.buffer_bytes, PROT_READ, MAP_SHARED, server_->chan(),
             off_t(info_.config.nr_queues) * info_.buffer_bytes);
    EXPECT_EQ(p, MAP_FAILED) << "a queue that does not exist";
    p = mmap(nullptr, info_.buffer_bytes * 2, PROT_READ, MAP_SHARED, server_->chan(), 0);
    EXPECT_EQ(p, MAP_FAILED) << "longer than one area";

    dblock_serve valid{};
    valid.request_size = sizeof(dblock_request);
    dblock_serve s = valid;
    s.queue = info_.config.nr_queues;
    EXPECT_EQ(Ioctl(server_->chan(), DBLOCK_IOC_SERVE, &s), EINVAL) << "queue out of range";
    s = valid;
    s.flags = 1u << 7;
    EXPECT_EQ(Ioctl(server_->chan(), DBLOCK_IOC_SERVE, &s), EINVAL) << "unknown flag";
    s = valid;
    s.__reserved = 1;
    EXPECT_EQ(Ioctl(server_->chan(), DBLOCK_IOC_SERVE, &s), EINVAL) << "reserved";
    s = valid;
    s.__pad2 = 1;
    EXPECT_EQ(Ioctl(server_->chan(), DBLOCK_IOC_SERVE, &s), EINVAL) << "padding";
    for (unsigned size : {0u, 8u, 24u, DBLOCK_REQUEST_SIZE_MIN + 4u}) {
        s = valid;
        s.request_size = uint16_t(size);
        s.max_requests = 1;
        EXPECT_EQ(Ioctl(server_->chan(), DBLOCK_IOC_SERVE, &s), EINVAL)
            << "request_size " << size << " (0: a server of ABI 1; 24: ABI 1's struct)";
    }
    s = valid;
    s.buffer_ptr = ~0ULL & ~4095ULL;
    EXPECT_EQ(Ioctl(server_->chan(), DBLOCK_IOC_SERVE, &s), EFAULT) << "a buffer past user memory";
    s = valid;
    s.buffer_ptr = uint64_t(1) << 63;
    EXPECT_EQ(Ioctl(server_->chan(), DBLOCK_IOC_SERVE, &s), EFAULT) << "a kernel address";
    // Queue 0 is being served by its thread: a second server thread is refused
    // unless it happens to catch the queue between two calls.
    s = valid;
    s.flags = DBLOCK_SERVE_NOWAIT;
    int err = Ioctl(server_->chan(), DBLOCK_IOC_SERVE, &s);
    EXPECT_TRUE(err == EBUSY || err == 0) << strerror(err);
}

void Served::RoundTripRandomData() {
    Fd disk = OpenDisk();
    const size_t max_io = info_.config.max_io_bytes;
    std::vector<std::byte> wbuf(max_io * 2 + 4096), rbuf(max_io * 2 + 4096);
    auto* w = static_cast<unsigned char*>(Aligned(wbuf));
    auto* r = static_cast<unsigned char*>(Aligned(rbuf));
    unsigned seed = 12345;
    for (int i = 0; i < 200; i++) {
        // Sizes up to twice the largest I/O: the block layer splits those.
        size_t len = 4096 * (1 + rand_r(&seed) % (2 * max_io / 4096));
        off_t off = off_t(4096) * (rand_r(&seed) % ((info_.config.size_bytes - len) / 4096));
        for (size_t k = 0; k < len; k++) w[k] = static_cast<unsigned char>(rand_r(&seed));
        ASSERT_EQ(pwrite(disk.get(), w, len, off), ssize_t(len)) << strerror(errno);
        std::memset(r, 0, len);
        ASSERT_EQ(pread(disk.get(), r, len, off), ssize_t(len)) << strerror(errno);
        ASSERT_EQ(std::memcmp(w, r, len), 0) << "at " << off << " len " << len;
    }
    ASSERT_EQ(fdatasync(disk.get()), 0);
    EXPECT_EQ(server_->rejected, 0u);
    EXPECT_EQ(server_->dirty_requests, 0u) << "nonzero reserved bytes in requests";
}

TEST_F(Served, DataRoundTripsAtRandomOffsetsAndSizes) { RoundTripRandomData(); }

TEST_F(Served, AKickEndsTheWaitOfThatQueueOnly) {
    EXPECT_EQ(Ioctl(server_->chan(), DBLOCK_IOC_KICK, reinterpret_cast<void*>(uintptr_t(info_.config.nr_queues))),
              EINVAL);
    for (unsigned kick = 1; kick <= 3; kick++) {
        ASSERT_EQ(::ioctl(server_->chan(), DBLOCK_IOC_KICK, 1UL), 0) << strerror(errno);
        EXPECT_TRUE(Eventually([&] { return server_->empty_returns_of[1] >= kick; })) << "kick " << kick;
        EXPECT_EQ(server_->empty_returns_of[1], kick) << "kick " << kick;
        EXPECT_EQ(server_->empty_returns_of[0], 0u) << "kick " << kick << " of queue 1 woke queue 0";
    }
    // The wait goes on after a kick: I/O is still served.
    Fd disk = OpenDisk();
    std::vector<std::byte> buf(8192);
    EXPECT_EQ(pread(disk.get(), Aligned(buf), 4096, 0), 4096) << strerror(errno);
}

class ServedOneQueue : public Served {
protected:
    dblock_dev_config Shape() override {
        dblock_dev_config c = Config(name_);
        c.nr_queues = 1;
        return c;
    }
};

// A single hardware queue would get mq-deadline by default; dblock asks for none.
TEST_F(ServedOneQueue, HasNoIoSchedulerByDefault) {
    const std::string sched = Sysfs("/sys/block/" + name_ + "/queue/scheduler");
    EXPECT_NE(sched.find("[none]"), std::string::npos) << sched;
    RoundTripRandomData();
}

class ServedUserBuffers : public Served {
protected:
    RawServer::Buffers BufferKind() override { return RawServer::Buffers::kUser; }
};

TEST_F(ServedUserBuffers, DataRoundTripsAtRandomOffsetsAndSizes) { RoundTripRandomData(); }

// A server whose struct dblock_request is larger than the kernel's (built
// with a later header) gets every request request_size bytes from the last,
// the bytes past the kernel's struct zeroed.
class ServedWideRequests : public Served {
protected:
    void StartServer() override {
        server_ = std::make_unique<RawServer>(info_);
        server_->request_size = sizeof(dblock_request) + 24;
        server_->start_threads();
    }
};

TEST_F(ServedWideRequests, GetRequestsAtThatStrideWithZeroedTails) {
    RoundTripRandomData();
    EXPECT_GE(server_->served, 400u);
    EXPECT_EQ(server_->dirty_requests, 0u);
}

TEST_F(ServedUserBuffers, AnUnreachableBufferFailsItsRequestsAndServingGoesOn) {
    Fd disk = OpenDisk();
    std::vector<std::byte> wbuf(8192), rbuf(8192);
    std::memset(Aligned(wbuf), 0x5a, 4096);
    const unsigned writes_before = server_->ops[DBLOCK_OP_WRITE];
    server_->skip_read_copy = true;
    server_->protect_buffers(PROT_NONE);
    EXPECT_EQ(pwrite(disk.get(), Aligned(wbuf), 4096, 0), -1);
    EXPECT_EQ(errno, EIO);
    EXPECT_EQ(server_->ops[DBLOCK_OP_WRITE], writes_before) << "a write whose data could not be copied reached the server";
    EXPECT_EQ(pread(disk.get(), Aligned(rbuf), 4096, 0), -1);
    EXPECT_EQ(errno, EIO);
    dblock_dev_info now{};
    ASSERT_EQ(InfoById(ctl_.get(), info_.id, &now), 0);
    EXPECT_GE(now.stats.errors, 2u);

    server_->protect_buffers(PROT_READ | PROT_WRITE);
    server_->skip_read_copy = false;
    ASSERT_EQ(pwrite(disk.get(), Aligned(wbuf), 4096, 0), 4096) << strerror(errno);
    ASSERT_EQ(pread(disk.get(), Aligned(rbuf), 4096, 0), 4096) << strerror(errno);
    EXPECT_EQ(std::memcmp(Aligned(wbuf), Aligned(rbuf), 4096), 0);
}

long VmallocUsedKiB() {
    std::ifstream in("/proc/meminfo");
    std::string key;
    long kib = -1;
    while (in >> key) {
        if (key == "VmallocUsed:") { in >> kib; break; }
        in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
    }
    return kib;
}

// Two queues of 16 x 1 MiB: 32 MiB of buffer areas, if the kernel held them
// (a 32-bit kernel has about 128 MiB of vmalloc space in all).
TEST(Control, KernelBufferAreasExistOnlyForServersThatMapThem) {
    Fd ctl = OpenCtl();
    dblock_dev_config c = Config("abi-areas");
    c.max_io_bytes = 1 << 20;
    c.queue_depth = 16;
    const long area_kib = long(c.queue_depth) * (c.max_io_bytes >> 10);
    const long before = VmallocUsedKiB();
    ASSERT_GT(before, 0) << "no VmallocUsed in /proc/meminfo";
    dblock_dev_info info{};
    ASSERT_EQ(Create(ctl.get(), c, &info), 0);
    ASSERT_TRUE(WaitForPath(ChanPath(info.id), true));
    EXPECT_LT(VmallocUsedKiB() - before, area_kib / 4) << "an unserved device holds its buffer areas";
    {
        RawServer server(info, nullptr, RawServer::Buffers::kUser);
        server.start_threads();
        ASSERT_EQ(::ioctl(server.chan(), DBLOCK_IOC_START), 0) << strerror(errno);
        ASSERT_TRUE(WaitForPath("/dev/abi-areas", true));
        Fd disk(::open("/dev/abi-areas", O_RDWR | O_DIRECT | O_CLOEXEC));
        ASSERT_GE(disk.get(), 0) << strerror(errno);
        std::vector<std::byte> buf((1 << 20) + 4096);
        void* p = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(buf.data()) + 4095) & ~uintptr_t(4095));
        for (int i = 0; i < 16; i++) {
            ASSERT_EQ(pwrite(disk.get(), p, 1 << 20, off_t(i) << 20), 1 << 20) << strerror(errno);
            ASSERT_EQ(pread(disk.get(), p, 1 << 20, off_t(i) << 20), 1 << 20) << strerror(errno);
        }
        EXPECT_LT(VmallocUsedKiB() - before, area_kib / 4) << "a server with its own buffers made the kernel allocate";
        EXPECT_GE(server.served, 32u);
        server.stop();
    }
    {
        RawServer server(info, nullptr, RawServer::Buffers::kMapped);
        EXPECT_GE(VmallocUsedKiB() - before, 2 * area_kib - area_kib / 4) << "mapping the areas must allocate them";
    }
    ASSERT_EQ(DestroyByName(ctl.get(), "abi-areas"), 0);
    EXPECT_LT(VmallocUsedKiB() - before, area_kib / 4) << "destroy must free the areas";
}

TEST_F(Served, StaleSeqAndDoubleAnswersAreRejectedAndIoSucceeds) {
    Fd disk = OpenDisk();
    std::vector<std::byte> buf(8192);
    void* p = Aligned(buf);
    server_->stale_seq_once = 1;
    ASSERT_EQ(pread(disk.get(), p, 4096, 0), 4096);
    server_->double_answer_once = 1;
    ASSERT_EQ(pread(disk.get(), p, 4096, 4096), 4096);
    // The rejections are reported on the next SERVE call of that queue.
    ASSERT_EQ(pread(disk.get(), p, 4096, 8192), 4096);
    ASSERT_EQ(pread(disk.get(), p, 4096, 12288), 4096);
    EXPECT_GE(server_->rejected, 1u);
}

// Answers handed back by other threads (DBLOCK_IOC_COMMIT) while the queue
// threads wait in SERVE.
class ServedCommitElsewhere : public Served {
protected:
    void StartServer() override {
        server_ = std::make_unique<RawServer>(info_, nullptr, BufferKind());
        server_->start_committers(3);
        server_->start_threads();
    }
    // Every answer the queue threads gave went through COMMIT, and none of
    // those threads was woken for it.
    void ExpectAllCommitted() {
        EXPECT_TRUE(Eventually([&] { return server_->committed + server_->rejected >= server_->served; }));
        EXPECT_EQ(server_->committed, server_->served);
        EXPECT_EQ(server_->commit_errors, 0u);
        EXPECT_EQ(server_->empty_returns, 0u) << "a queue thread woke with nothing to fetch";
    }
};

class ServedCommitElsewhereUserBuffers : public ServedCommitElsewhere {
protected:
    RawServer::Buffers BufferKind() override { return RawServer::Buffers::kUser; }
};

TEST_F(ServedCommitElsewhere, DataRoundTrips) {
    RoundTripRandomData();
    EXPECT_GE(server_->served, 400u);
    ExpectAllCommitted();
}

TEST_F(ServedCommitElsewhereUserBuffers, DataRoundTrips) {
    RoundTripRandomData();
    EXPECT_GE(server_->served, 400u);
    ExpectAllCommitted();
}

// Many requests in flight on every queue, answered by three threads in
// batches that mix queues' answers and race each queue's SERVE.
TEST_F(ServedCommitElsewhereUserBuffers, ConcurrentIoKeepsEveryByte) {
    constexpr int kThreads = 8;
    const size_t region = info_.config.size_bytes / kThreads;
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < kThreads; t++) {
        threads.emplace_back([&, t] {
            Fd disk = OpenDisk();
            std::vector<std::byte> wbuf(256 << 10), rbuf(256 << 10);
            auto* w = static_cast<unsigned char*>(Aligned(wbuf));
            auto* r = static_cast<unsigned char*>(Aligned(rbuf));
            unsigned seed = 777 + t;
            for (int i = 0; i < 60; i++) {
                size_t len = 4096 * (1 + rand_r(&seed) % 48);
                off_t off = off_t(t * region) + off_t(4096) * (rand_r(&seed) % ((region - len) / 4096));
                for (size_t k = 0; k < len; k++) w[k] = static_cast<unsigned char>(rand_r(&seed));
                if (pwrite(disk.get(), w, len, off) != ssize_t(len) ||
                    pread(disk.get(), r, len, off) != ssize_t(len) || std::memcmp(w, r, len) != 0) {
                    failures++;
                    return;
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(failures, 0);
    EXPECT_GE(server_->served, 8u * 120u);
    EXPECT_EQ(server_->rejected, 0u);
    ExpectAllCommitted();
}

TEST_F(ServedCommitElsewhere, ASecondAnswerIsRefusedAndCounted) {
    Fd disk = OpenDisk();
    std::vector<std::byte> buf(8192);
    server_->double_answer_once = 1;
    ASSERT_EQ(pread(disk.get(), Aligned(buf), 4096, 4096), 4096) << strerror(errno);
    EXPECT_TRUE(Eventually([&] { return server_->rejected >= 1; }));
    EXPECT_EQ(server_->rejected, 1u);
    dblock_dev_info now{};
    ASSERT_EQ(InfoById(ctl_.get(), info_.id, &now), 0);
    EXPECT_EQ(now.stats.rejected, 1u);
    EXPECT_EQ(server_->commit_errors, 0u);
}

TEST_F(Served, CommitRefusesBadArgumentsAndAnswersForNothing) {
    dblock_completion cpl[2]{};
    cpl[0].tag = uint16_t(info_.config.queue_depth + 3);  // never a request
    dblock_commit valid{};
    valid.completions_ptr = reinterpret_cast<uintptr_t>(cpl);
    valid.nr_completions = 1;
    dblock_commit c = valid;
    c.queue = uint16_t(info_.config.nr_queues);
    EXPECT_EQ(Ioctl(server_->chan(), DBLOCK_IOC_COMMIT, &c), EINVAL) << "no such queue";
    c = valid;
    c.nr_completions = 0;
    EXPECT_EQ(Ioctl(server_->chan(), DBLOCK_IOC_COMMIT, &c), EINVAL) << "no answers";
    c = valid;
    c.nr_completions = info_.config.queue_depth + 1u;
    EXPECT_EQ(Ioctl(server_->chan(), DBLOCK_IOC_COMMIT, &c), EINVAL) << "more answers than the depth";
    c = valid;
    c.__pad[2] = 1;
    EXPECT_EQ(Ioctl(server_->chan(), DBLOCK_IOC_COMMIT, &c), EINVAL) << "padding";
    c = valid;
    c.__reserved[1] = 1;
    EXPECT_EQ(Ioctl(server_->chan(), DBLOCK_IOC_COMMIT, &c), EINVAL) << "reserved";
    c = valid;
    c.buffer_ptr = uint64_t(1) << 63;
    EXPECT_EQ(Ioctl(server_->chan(), DBLOCK_IOC_COMMIT, &c), EFAULT) << "a kernel address";
    c = valid;
    c.completions_ptr = 8;
    EXPECT_EQ(Ioctl(server_->chan(), DBLOCK_IOC_COMMIT, &c), EFAULT) << "an unmapped array";
    dblock_dev_info before{};
    ASSERT_EQ(InfoById(ctl_.get(), info_.id, &before), 0);
    c = valid;
    c.nr_completions = 2;  // and tag 0, seq 0: no request is in flight
    ASSERT_EQ(Ioctl(server_->chan(), DBLOCK_IOC_COMMIT, &c), 0) << strerror(errno);
    EXPECT_EQ(c.nr_rejected, 2u);
    dblock_dev_info after{};
    ASSERT_EQ(InfoById(ctl_.get(), info_.id, &after), 0);
    EXPECT_EQ(after.stats.rejected, before.stats.rejected + 2);
    EXPECT_EQ(server_->empty_returns, 0u) << "COMMIT woke a queue thread";
}

int SetFile(int chan, int fd, uint64_t offset, uint32_t flags = DBLOCK_FILE_NO_WRITE_DATA) {
    dblock_file f{};
    f.fd = fd;
    f.offset = offset;
    f.flags = flags;
    return Ioctl(chan, DBLOCK_IOC_SET_FILE, &f);
}

// An unlinked file of `bytes` in /tmp (buffered: the answering call does
// the kernel's I/O; guest case 28 serves O_DIRECT on brd, asynchronous).
Fd TempFile(size_t bytes) {
    char path[] = "/tmp/dblock-abi-XXXXXX";
    Fd fd(mkstemp(path));
    EXPECT_GE(fd.get(), 0) << strerror(errno);
    unlink(path);
    EXPECT_EQ(ftruncate(fd.get(), off_t(bytes)), 0) << strerror(errno);
    return fd;
}

std::vector<unsigned char> Pattern(size_t bytes, unsigned seed) {
    std::vector<unsigned char> v(bytes);
    for (auto& b : v) b = static_cast<unsigned char>(rand_r(&seed));
    return v;
}

TEST_F(Served, TheKernelReadsAndWritesTheServersFile) {
    ASSERT_TRUE(info_.features & DBLOCK_FEAT_FILE_IO);
    constexpr uint64_t kBase = 3 * 4096;  // the file's byte where the device begins
    const uint64_t size = info_.config.size_bytes;
    // The file ends 64 KiB before the device does: reads there get zeroes.
    Fd file = TempFile(kBase + size - (64 << 10));
    const auto head = Pattern(256 << 10, 1);
    const auto tail = Pattern(64 << 10, 2);
    ASSERT_EQ(pwrite(file.get(), head.data(), head.size(), kBase + (1 << 20)), ssize_t(head.size()));
    ASSERT_EQ(pwrite(file.get(), tail.data(), tail.size(), kBase + size - (128 << 10)), ssize_t(tail.size()));
    ASSERT_EQ(SetFile(server_->chan(), file.get(), kBase), 0) << strerror(errno);
    server_->fill_slots(0x5a);
    server_->answer_with_file = true;

    Fd disk = OpenDisk();
    std::vector<std::byte> buf((512 << 10) + 4096);
    auto* p = static_cast<unsigned char*>(Aligned(buf));
    ASSERT_EQ(pread(disk.get(), p, head.size(), 1 << 20), ssize_t(head.size())) << strerror(errno);
    EXPECT_EQ(std::memcmp(p, head.data(), head.size()), 0) << "the device's reads are the file's";
    // Across the file's end: its last 64 KiB, then zeroes.
    std::memset(p, 0xee, 128 << 10);
    ASSERT_EQ(pread(disk.get(), p, 128 << 10, off_t(size - (128 << 10))), 128 << 10) << strerror(errno);
    EXPECT_EQ(std::memcmp(p, tail.data(), tail.size()), 0);
    EXPECT_TRUE(std::all_of(p + (64 << 10), p + (128 << 10), [](unsigned char c) { return c == 0; }))
        << "a read past the file's end is not zero-filled";
    // A write of 192 KiB (two requests at max_io 128 KiB) lands at base + offset.
    const auto data = Pattern(192 << 10, 3);
    std::memcpy(p, data.data(), data.size());
    ASSERT_EQ(pwrite(disk.get(), p, data.size(), 4 << 20), ssize_t(data.size())) << strerror(errno);
    std::vector<unsigned char> back(data.size());
    ASSERT_EQ(pread(file.get(), back.data(), back.size(), kBase + (4 << 20)), ssize_t(back.size()));
    EXPECT_EQ(back, data) << "the write is not in the file at base + offset";
    RoundTripRandomData();
    // The kernel keeps its own reference: the server may close its descriptor.
    file.reset();
    std::memcpy(p, head.data(), 64 << 10);
    ASSERT_EQ(pwrite(disk.get(), p, 64 << 10, 8 << 20), 64 << 10) << strerror(errno);
    std::memset(p, 0, 64 << 10);
    ASSERT_EQ(pread(disk.get(), p, 64 << 10, 8 << 20), 64 << 10) << strerror(errno);
    EXPECT_EQ(std::memcmp(p, head.data(), 64 << 10), 0);

    EXPECT_GE(server_->ops[DBLOCK_OP_WRITE], 200u);
    EXPECT_EQ(server_->write_data_seen, 0u) << "DBLOCK_FILE_NO_WRITE_DATA: writes' data reached the slots";
    dblock_dev_info now{};
    ASSERT_EQ(InfoById(ctl_.get(), info_.id, &now), 0);
    EXPECT_EQ(now.stats.errors, 0u);
    EXPECT_EQ(now.stats.rejected, 0u);
    EXPECT_GE(now.stats.file_ios, 400u + 4u);
    EXPECT_EQ(Sysfs("/sys/block/" + name_ + "/dblock/file_ios"), std::to_string(now.stats.file_ios));
    // As loop/backing_file: the path, here of a file already unlinked.
    EXPECT_EQ(Sysfs("/sys/block/" + name_ + "/dblock/file").rfind("/tmp/dblock-abi-", 0), 0u)
        << Sysfs("/sys/block/" + name_ + "/dblock/file");
}

TEST_F(Served, SetFileRefusesWhatItCannotUse) {
    const int chan = server_->chan();
    Fd file = TempFile(1 << 20);
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", file.get());
    Fd read_only(::open(path, O_RDONLY | O_CLOEXEC));
    Fd append(::open(path, O_RDWR | O_APPEND | O_CLOEXEC));
    Fd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    Fd own(::open(("/dev/" + name_).c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(read_only.get() >= 0 && append.get() >= 0 && null.get() >= 0 && own.get() >= 0);
    EXPECT_EQ(SetFile(chan, 100000, 0), EBADF) << "not open";
    EXPECT_EQ(SetFile(chan, -2, 0), EBADF) << "negative";
    EXPECT_EQ(SetFile(chan, read_only.get(), 0), EBADF) << "read-only, for a writable device";
    EXPECT_EQ(SetFile(chan, append.get(), 0), EINVAL) << "O_APPEND";
    EXPECT_EQ(SetFile(chan, null.get(), 0), EINVAL) << "a character device";
    EXPECT_EQ(SetFile(chan, own.get(), 0), EINVAL) << "the device itself";
    EXPECT_EQ(SetFile(chan, file.get(), 512), EINVAL) << "offset not a multiple of the block size";
    EXPECT_EQ(SetFile(chan, file.get(), 0, 1U << 1), EINVAL) << "unknown flag";
    EXPECT_EQ(SetFile(chan, -1, 4096, 0), EINVAL) << "forgetting with an offset";
    dblock_file f{};
    f.fd = file.get();
    f.__reserved[1] = 1;
    EXPECT_EQ(Ioctl(chan, DBLOCK_IOC_SET_FILE, &f), EINVAL) << "reserved";
    EXPECT_EQ(SetFile(chan, file.get(), 4096), 0) << strerror(errno);
    EXPECT_EQ(SetFile(chan, file.get(), 0, 0), 0) << "replaced";
    EXPECT_NE(Sysfs("/sys/block/" + name_ + "/dblock/file"), "");
    EXPECT_EQ(SetFile(chan, -1, 0, 0), 0) << "forgotten";
    EXPECT_EQ(Sysfs("/sys/block/" + name_ + "/dblock/file"), "");
}

TEST_F(Served, FileAnswersThatCannotBeUsedFailOrAreRefused) {
    Fd disk = OpenDisk();
    std::vector<std::byte> buf(8192);
    void* p = Aligned(buf);
    dblock_dev_info before{};
    ASSERT_EQ(InfoById(ctl_.get(), info_.id, &before), 0);
    server_->answer_with_file = true;
    EXPECT_EQ(pread(disk.get(), p, 4096, 0), -1) << "answered with the file, but none is set";
    EXPECT_EQ(errno, EIO);
    Fd file = TempFile(info_.config.size_bytes);
    ASSERT_EQ(SetFile(server_->chan(), file.get(), 0), 0) << strerror(errno);
    server_->writes_answered_plainly = true;
    EXPECT_EQ(pwrite(disk.get(), p, 4096, 0), -1) << "a write without its data answered without the file";
    EXPECT_EQ(errno, EIO);
    server_->writes_answered_plainly = false;
    dblock_dev_info mid{};
    ASSERT_EQ(InfoById(ctl_.get(), info_.id, &mid), 0);
    EXPECT_EQ(mid.stats.errors, before.stats.errors + 2);
    // Malformed answers are refused; the good one after each ends the request.
    server_->file_with_result_once = 1;
    EXPECT_EQ(pread(disk.get(), p, 4096, 4096), 4096) << strerror(errno);
    server_->unknown_flag_once = 1;
    EXPECT_EQ(pwrite(disk.get(), p, 4096, 4096), 4096) << strerror(errno);
    // Counted once the batch that carried them is done, after the requests
    // it answered ended (the server hears of them when its queue's SERVE
    // returns, with that queue's next request).
    dblock_dev_info after{};
    EXPECT_TRUE(Eventually([&] {
        return InfoById(ctl_.get(), info_.id, &after) == 0 &&
               after.stats.rejected == before.stats.rejected + 2;
    })) << after.stats.rejected;
    EXPECT_EQ(after.stats.errors, mid.stats.errors);
}

TEST_F(ServedCommitElsewhere, FileAnswersFromOtherThreads) {
    Fd file = TempFile(info_.config.size_bytes);
    ASSERT_EQ(SetFile(server_->chan(), file.get(), 0), 0) << strerror(errno);
    server_->fill_slots(0x5a);
    server_->answer_with_file = true;
    RoundTripRandomData();
    EXPECT_GE(server_->served, 400u);
    ExpectAllCommitted();
    EXPECT_EQ(server_->write_data_seen, 0u);
}

TEST_F(Served, ServerErrorsReachTheCaller) {
    Fd disk = OpenDisk();
    std::vector<std::byte> buf(8192);
    server_->fail_reads_with = -ENOSPC;
    EXPECT_EQ(pread(disk.get(), Aligned(buf), 4096, 0), -1);
    EXPECT_TRUE(errno == ENOSPC || errno == EIO) << strerror(errno);
    server_->fail_reads_with = 0;
    EXPECT_EQ(pread(disk.get(), Aligned(buf), 4096, 0), 4096);
}

TEST_F(Served, DestroyIsRefusedWhileTheDiskIsOpen) {
    {
        Fd disk = OpenDisk();
        EXPECT_EQ(DestroyByName(ctl_.get(), name_), EBUSY);
    }
    EXPECT_EQ(DestroyByName(ctl_.get(), name_), 0);
    server_->join();
    EXPECT_EQ(server_->gone_queues, int(info_.config.nr_queues));
    server_.reset();
}

TEST_F(Served, ServerDeathFailsItsRequestsAtOnceAndANewServerTakesOver) {
    Fd disk = OpenDisk();
    std::vector<std::byte> buf(8192);
    server_->swallow = true;
    auto start = std::chrono::steady_clock::now();
    std::thread reader([&] {
        EXPECT_EQ(pread(disk.get(), Aligned(buf), 4096, 0), -1);
        EXPECT_EQ(errno, EIO);
    });
    while (server_->swallowed == 0 && std::chrono::steady_clock::now() - start < std::chrono::seconds(5))
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(server_->swallowed, 1u) << "the read never reached the server";
    server_->stop();
    server_->close_channel();  // as when the server process dies
    reader.join();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10))
        << "requests of a dead server must fail at once, not at the timeout";

    // A new server on the same device serves again.
    server_ = std::make_unique<RawServer>(info_);
    server_->start_threads();
    EXPECT_EQ(pread(disk.get(), Aligned(buf), 4096, 0), 4096) << strerror(errno);
}

int GetBackend(int ctl, const std::string& name, std::string* text) {
    dblock_ctl_get_backend g{};
    std::strncpy(g.target.name, name.c_str(), sizeof(g.target.name) - 1);
    int err = Ioctl(ctl, DBLOCK_CTL_GET_BACKEND, &g);
    if (err == 0) {
        text->assign(g.backend.text, strnlen(g.backend.text, sizeof(g.backend.text)));
        EXPECT_EQ(std::count(std::begin(g.backend.text), std::end(g.backend.text), '\0'),
                  long(sizeof(g.backend.text) - text->size()))
            << "the description must be NUL-padded";
    }
    return err;
}

int SetBackend(int chan, const std::string& text) {
    dblock_backend b{};
    std::memcpy(b.text, text.data(), std::min(text.size(), sizeof(b.text)));
    return Ioctl(chan, DBLOCK_IOC_SET_BACKEND, &b);
}

// With its newline, which Sysfs() takes off.
std::string SysfsBackend(const std::string& name) {
    std::ifstream in("/sys/block/" + name + "/dblock/backend");
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST_F(Served, TheServerSetsItsBackendDescriptionAndBadOnesAreRefused) {
    Fd ctl = OpenCtl();
    dblock_ctl_version v{};
    ASSERT_EQ(Ioctl(ctl.get(), DBLOCK_CTL_GET_VERSION, &v), 0);
    EXPECT_EQ(v.features & DBLOCK_FEAT_BACKEND_DESC, DBLOCK_FEAT_BACKEND_DESC);
    std::string text = "x";
    ASSERT_EQ(GetBackend(ctl.get(), name_, &text), 0);
    EXPECT_EQ(text, "") << "none until the server sets one";
    EXPECT_EQ(SysfsBackend(name_), "\n");

    ASSERT_EQ(SetBackend(server_->chan(), "file:/srv/vol1.img"), 0);
    ASSERT_EQ(GetBackend(ctl.get(), name_, &text), 0);
    EXPECT_EQ(text, "file:/srv/vol1.img");
    EXPECT_EQ(SysfsBackend(name_), "file:/srv/vol1.img\n");
    const std::string longest(DBLOCK_BACKEND_MAX - 1, 'a');
    ASSERT_EQ(SetBackend(server_->chan(), longest), 0);
    ASSERT_EQ(GetBackend(ctl.get(), name_, &text), 0);
    EXPECT_EQ(text, longest);
    ASSERT_EQ(SetBackend(server_->chan(), "rbd:pool/\xc3\xa9t\xc3\xa9"), 0) << "UTF-8 passes";

    // Refused, and the description stays as it was.
    EXPECT_EQ(SetBackend(server_->chan(), std::string(DBLOCK_BACKEND_MAX, 'a')), EINVAL)
        << "no NUL within the array";
    EXPECT_EQ(SetBackend(server_->chan(), "two\nlines"), EINVAL) << "newline";
    EXPECT_EQ(SetBackend(server_->chan(), "tab\there"), EINVAL) << "control character";
    EXPECT_EQ(SetBackend(server_->chan(), "del\x7f"), EINVAL) << "DEL";
    dblock_backend b{};
    std::strcpy(b.text, "ok");
    b.text[10] = 'x';
    EXPECT_EQ(Ioctl(server_->chan(), DBLOCK_IOC_SET_BACKEND, &b), EINVAL) << "bytes after the NUL";
    b.text[10] = 0;
    b.__reserved[1] = 1;
    EXPECT_EQ(Ioctl(server_->chan(), DBLOCK_IOC_SET_BACKEND, &b), EINVAL) << "reserved";
    ASSERT_EQ(GetBackend(ctl.get(), name_, &text), 0);
    EXPECT_EQ(text, "rbd:pool/\xc3\xa9t\xc3\xa9");

    dblock_ctl_get_backend g{};
    g.target.flags = 1;
    EXPECT_EQ(Ioctl(ctl.get(), DBLOCK_CTL_GET_BACKEND, &g), EINVAL) << "target flags";
    g = {};
    std::strcpy(g.target.name, "abi-no-such-device");
    EXPECT_EQ(Ioctl(ctl.get(), DBLOCK_CTL_GET_BACKEND, &g), ENODEV);

    ASSERT_EQ(SetBackend(server_->chan(), ""), 0) << "empty clears it";
    ASSERT_EQ(GetBackend(ctl.get(), name_, &text), 0);
    EXPECT_EQ(text, "");
}

int SetParams(int ctl, const std::string& name, dblock_ctl_set_params p) {
    std::strncpy(p.target.name, name.c_str(), sizeof(p.target.name) - 1);
    return Ioctl(ctl, DBLOCK_CTL_SET_PARAMS, &p);
}

TEST(Control, CreateFillsInDefaultsAndChecksTheNewFields) {
    Fd ctl = OpenCtl();
    dblock_dev_config c = Config("abi-defaults");
    c.flags |= DBLOCK_DEV_DISCARD | DBLOCK_DEV_WRITE_ZEROES;
    dblock_dev_info info{};
    ASSERT_EQ(Create(ctl.get(), c, &info), 0);
    EXPECT_EQ(info.config.timeout_ms, 30000u);
    EXPECT_EQ(info.config.physical_block_size, 4096u);
    EXPECT_EQ(info.config.discard_granularity, 4096u);
    EXPECT_EQ(info.config.max_discard_bytes, 1u << 30);
    EXPECT_EQ(info.config.max_write_zeroes_bytes, 1u << 30);
    EXPECT_EQ(DestroyByName(ctl.get(), "abi-defaults"), 0);

    struct Case {
        const char* what;
        void (*mutate)(dblock_dev_config&);
    };
    const Case cases[] = {
        {"physical below logical", [](dblock_dev_config& c) { c.physical_block_size = 2048; }},
        {"physical not a power of 2", [](dblock_dev_config& c) { c.physical_block_size = 12288; }},
        {"physical too large", [](dblock_dev_config& c) { c.physical_block_size = 1 << 17; }},
        {"io_opt not a physical multiple", [](dblock_dev_config& c) { c.io_opt_bytes = 6000; }},
        {"granularity without discard", [](dblock_dev_config& c) { c.discard_granularity = 4096; }},
        {"max discard without discard", [](dblock_dev_config& c) { c.max_discard_bytes = 4096; }},
        {"write zeroes size without support", [](dblock_dev_config& c) { c.max_write_zeroes_bytes = 4096; }},
        {"granularity not a power of 2", [](dblock_dev_config& c) {
             c.flags |= DBLOCK_DEV_DISCARD;
             c.discard_granularity = 12288;
         }},
        {"max discard not a granule multiple", [](dblock_dev_config& c) {
             c.flags |= DBLOCK_DEV_DISCARD;
             c.discard_granularity = 65536;
             c.max_discard_bytes = 65536 + 4096;
         }},
        {"unknown recovery", [](dblock_dev_config& c) { c.recovery = 7; }},
    };
    for (const Case& k : cases) {
        dblock_dev_config bad = Config("abi-invalid2");
        k.mutate(bad);
        EXPECT_EQ(Create(ctl.get(), bad), EINVAL) << k.what;
    }
}

TEST(Control, SetParamsRejectsBadInput) {
    Fd ctl = OpenCtl();
    ASSERT_EQ(Create(ctl.get(), Config("abi-set")), 0);
    dblock_ctl_set_params p{};
    p.mask = 1u << 9;
    EXPECT_EQ(SetParams(ctl.get(), "abi-set", p), EINVAL) << "unknown mask bit";
    p = {};
    p.mask = DBLOCK_SET_SIZE;
    p.size_bytes = (64 << 20) + 512;
    EXPECT_EQ(SetParams(ctl.get(), "abi-set", p), EINVAL) << "size not a block multiple";
    p.size_bytes = 0;
    EXPECT_EQ(SetParams(ctl.get(), "abi-set", p), EINVAL) << "size 0";
    p = {};
    p.mask = DBLOCK_SET_RECOVERY;
    p.recovery = 9;
    EXPECT_EQ(SetParams(ctl.get(), "abi-set", p), EINVAL) << "unknown recovery";
    p = {};
    p.mask = DBLOCK_SET_TIMEOUT;
    p.__reserved[0] = 1;
    EXPECT_EQ(SetParams(ctl.get(), "abi-set", p), EINVAL) << "reserved";
    p = {};
    p.mask = DBLOCK_SET_TIMEOUT;
    p.timeout_ms = 1234;
    EXPECT_EQ(SetParams(ctl.get(), "abi-set", p), 0);
    EXPECT_EQ(SetParams(ctl.get(), "abi-nosuch", p), ENODEV);
    dblock_ctl_get_info gi{};
    std::strcpy(gi.target.name, "abi-set");
    ASSERT_EQ(Ioctl(ctl.get(), DBLOCK_CTL_GET_INFO, &gi), 0);
    EXPECT_EQ(gi.info.config.timeout_ms, 1234u);
    dblock_ctl_target t{};
    std::strcpy(t.name, "abi-set");
    t.flags = 1u << 5;
    EXPECT_EQ(Ioctl(ctl.get(), DBLOCK_CTL_DESTROY, &t), EINVAL) << "unknown destroy flag";
    EXPECT_EQ(DestroyByName(ctl.get(), "abi-set"), 0);
}

TEST(Control, NeedsCapSysAdmin) {
    Fd ctl = OpenCtl();
    ASSERT_EQ(Create(ctl.get(), Config("abi-cap")), 0);
    dblock_dev_info info{};
    dblock_ctl_get_info gi{};
    std::strcpy(gi.target.name, "abi-cap");
    ASSERT_EQ(Ioctl(ctl.get(), DBLOCK_CTL_GET_INFO, &gi), 0);
    info = gi.info;
    pid_t child = fork();
    if (child == 0) {
        // Drop CAP_SYS_ADMIN from the effective set, keeping the open fd.
        __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct data[2]{};
        if (syscall(SYS_capget, &hdr, data) != 0) _exit(10);
        data[CAP_SYS_ADMIN / 32].effective &= ~(1u << (CAP_SYS_ADMIN % 32));
        if (syscall(SYS_capset, &hdr, data) != 0) _exit(11);
        dblock_ctl_version v{};
        if (::ioctl(ctl.get(), DBLOCK_CTL_GET_VERSION, &v) == 0 || errno != EPERM) _exit(12);
        int fd = ::open(ChanPath(info.id).c_str(), O_RDWR);
        if (fd >= 0 || errno != EPERM) _exit(13);
        _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "10/11: capget/capset, 12: control ioctl allowed, "
                                         "13: channel open allowed";
    EXPECT_EQ(DestroyByName(ctl.get(), "abi-cap"), 0);
}

TEST_F(Served, BadTagsAreRejectedAndTheDeviceKeepsServing) {
    Fd disk = OpenDisk();
    std::vector<std::byte> buf(8192);
    server_->bad_tag_once = 1;
    ASSERT_EQ(pread(disk.get(), Aligned(buf), 4096, 0), 4096);
    for (int i = 0; i < 4; i++) ASSERT_EQ(pread(disk.get(), Aligned(buf), 4096, 4096 * i), 4096);
    dblock_dev_info now{};
    ASSERT_EQ(InfoById(ctl_.get(), info_.id, &now), 0);
    EXPECT_GE(now.stats.rejected, 1u);
    EXPECT_GE(now.stats.reads, 5u);
    // The server hears of the refusal when its SERVE returns; the later reads
    // may all have gone to another queue, so every queue is woken.
    for (unsigned q = 0; q < info_.config.nr_queues; q++)
        ASSERT_EQ(::ioctl(server_->chan(), DBLOCK_IOC_KICK, static_cast<unsigned long>(q)), 0) << strerror(errno);
    EXPECT_TRUE(Eventually([&] { return server_->rejected >= 1; }));
}

// A signal sent to a process whose read the server holds: the read is
// neither failed nor lost, the signal is not swallowed (the process dies of
// it once its read is answered), and another process's reads go on all the
// while.  Two reader processes, a and b, each on its own region; b's read is
// held by the server from the moment it is seen until the test answers it.
TEST_F(Served, OtherProcessesSignalsAreNotConsumed) {
    struct Shared {
        std::atomic<uint32_t> reads[2];  // reads completed, by reader
        std::atomic<bool> stop;          // tells a to exit 0
    };
    static_assert(std::atomic<uint32_t>::is_always_lock_free && std::atomic<bool>::is_always_lock_free,
                  "shared between processes");
    void* mem = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(mem, MAP_FAILED) << strerror(errno);
    Mapping shared_mapping(mem, sizeof(Shared));
    Shared* shared = new (mem) Shared{};
    const off_t region[2] = {0, off_t(32) << 20};
    const std::string path = "/dev/" + name_;
    std::vector<std::byte> buf(8192);  // before fork: the children only read and exit
    void* p = Aligned(buf);
    auto reader = [&](int k) {
        int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
        if (fd < 0) _exit(2);
        for (uint32_t i = 0; !shared->stop; i++) {
            if (pread(fd, p, 4096, region[k] + off_t(4096) * off_t(i % 1024)) != 4096) _exit(1);
            shared->reads[k]++;
        }
        _exit(0);
    };
    pid_t pids[2] = {-1, -1};
    // However the test ends: b's read answered, then no reader left behind.
    struct Cleanup {
        RawServer* server;
        pid_t* pids;
        ~Cleanup() {
            server->hold_from = std::numeric_limits<uint64_t>::max();
            if (server->held()) server->answer_ignored_now();
            for (int k = 0; k < 2; k++)
                if (pids[k] > 0) {
                    kill(pids[k], SIGKILL);
                    waitpid(pids[k], nullptr, 0);
                }
        }
    } cleanup{server_.get(), pids};
    for (int k = 0; k < 2; k++) {
        pids[k] = fork();
        ASSERT_GE(pids[k], 0) << strerror(errno);
        if (pids[k] == 0) reader(k);
    }
    const pid_t b = pids[1];
    dblock_dev_info before{};
    ASSERT_EQ(InfoById(ctl_.get(), info_.id, &before), 0);

    ASSERT_TRUE(Eventually([&] { return shared->reads[0] >= 20 && shared->reads[1] >= 20; }))
        << "the readers did not get going: " << shared->reads[0] << " and " << shared->reads[1] << " reads";
    server_->hold_from = uint64_t(region[1]);
    ASSERT_TRUE(Eventually([&] { return server_->held() >= 1; })) << "b's next read never reached the server";
    EXPECT_EQ(server_->held(), 1u);
    const uint32_t b_reads = shared->reads[1];
    ASSERT_TRUE(Eventually([&] { return ProcState(b) == 'D'; }))
        << "b is not waiting for its read (state " << ProcState(b) << ")";

    ASSERT_EQ(kill(b, SIGINT), 0) << strerror(errno);
    EXPECT_TRUE(ProcessSignalPending(b, SIGINT)) << "b's SIGINT is not pending while b waits for its read";
    // While b waits with its signal pending, a's reads are served.
    const uint32_t a_reads = shared->reads[0];
    EXPECT_TRUE(Eventually([&] { return shared->reads[0] >= a_reads + 20; })) << "a's reads stopped";
    int status = 0;
    EXPECT_EQ(waitpid(b, &status, WNOHANG), 0) << "b left a read that was not answered";
    EXPECT_EQ(server_->held(), 1u) << "b's read was taken from the server";
    EXPECT_EQ(shared->reads[1], b_reads);

    // Answered, b's read completes and b dies of the SIGINT on its way back.
    server_->hold_from = std::numeric_limits<uint64_t>::max();
    server_->answer_ignored_now();
    ASSERT_EQ(waitpid(b, &status, 0), b);
    pids[1] = -1;
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT)
        << "b: " << (WIFEXITED(status) ? "exit code " + std::to_string(WEXITSTATUS(status))
                                       : "signal " + std::to_string(WTERMSIG(status)));
    EXPECT_EQ(shared->reads[1], b_reads) << "b went on reading after its SIGINT";
    EXPECT_EQ(server_->held(), 0u);

    // a goes on after b is gone, then stops when told, with every read served.
    const uint32_t a_after = shared->reads[0];
    EXPECT_TRUE(Eventually([&] { return shared->reads[0] >= a_after + 20; })) << "a's reads stopped";
    shared->stop = true;
    ASSERT_EQ(waitpid(pids[0], &status, 0), pids[0]);
    pids[0] = -1;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "a: " << (WIFEXITED(status) ? "exit code " + std::to_string(WEXITSTATUS(status)) + " (1: a read failed)"
                                       : "signal " + std::to_string(WTERMSIG(status)));
    dblock_dev_info now{};
    ASSERT_EQ(InfoById(ctl_.get(), info_.id, &now), 0);
    EXPECT_EQ(now.stats.errors, before.stats.errors);
    EXPECT_EQ(now.stats.timeouts, before.stats.timeouts);
    EXPECT_EQ(now.stats.rejected, before.stats.rejected) << "the answer to b's read was refused";
    EXPECT_EQ(server_->rejected, 0u);
}

TEST_F(Served, ResizeGrowsAndShrinksWhileOpen) {
    Fd disk = OpenDisk();
    uint64_t bytes = 0;
    ASSERT_EQ(::ioctl(disk.get(), BLKGETSIZE64, &bytes), 0);
    EXPECT_EQ(bytes, 64u << 20);
    dblock_ctl_set_params p{};
    p.mask = DBLOCK_SET_SIZE;
    p.size_bytes = 96u << 20;
    // The fixture's server data is only as large as the device was.
    server_->stop();
    server_->close_channel();
    server_ = std::make_unique<RawServer>(info_, RawServer::NewData(96u << 20));
    server_->start_threads();
    ASSERT_EQ(SetParams(ctl_.get(), name_, p), 0);
    EXPECT_TRUE(Eventually([&] { return server_->size == (96u << 20); }))
        << "the server was not told of the new size";
    ASSERT_EQ(::ioctl(disk.get(), BLKGETSIZE64, &bytes), 0);
    EXPECT_EQ(bytes, 96u << 20);
    EXPECT_EQ(Sysfs("/sys/block/" + name_ + "/size"), std::to_string((96u << 20) / 512));
    std::vector<std::byte> w(8192), r(8192);
    std::memset(Aligned(w), 0x5a, 4096);
    ASSERT_EQ(pwrite(disk.get(), Aligned(w), 4096, 80u << 20), 4096) << strerror(errno);
    ASSERT_EQ(pread(disk.get(), Aligned(r), 4096, 80u << 20), 4096);
    EXPECT_EQ(std::memcmp(Aligned(w), Aligned(r), 4096), 0);
    p.size_bytes = 32u << 20;
    ASSERT_EQ(SetParams(ctl_.get(), name_, p), 0);
    ASSERT_EQ(::ioctl(disk.get(), BLKGETSIZE64, &bytes), 0);
    EXPECT_EQ(bytes, 32u << 20);
    EXPECT_LE(pread(disk.get(), Aligned(r), 4096, 40u << 20), 0) << "read past the new end";
}

TEST_F(Served, ForcedDestroyFailsTheIoOfAnOpenDisk) {
    Fd disk = OpenDisk();
    std::vector<std::byte> buf(8192);
    ASSERT_EQ(pread(disk.get(), Aligned(buf), 4096, 0), 4096);
    EXPECT_EQ(DestroyByName(ctl_.get(), name_), EBUSY);
    dblock_ctl_target t{};
    std::strncpy(t.name, name_.c_str(), sizeof(t.name) - 1);
    t.flags = DBLOCK_DESTROY_FORCE;
    ASSERT_EQ(Ioctl(ctl_.get(), DBLOCK_CTL_DESTROY, &t), 0);
    server_->join();
    EXPECT_EQ(server_->gone_queues, int(info_.config.nr_queues));
    EXPECT_LT(pread(disk.get(), Aligned(buf), 4096, 0), 4096) << "I/O on a destroyed disk";
    server_.reset();
}

class ServedWithDiscard : public Served {
protected:
    dblock_dev_config Shape() override {
        dblock_dev_config c = Config(name_);
        c.flags |= DBLOCK_DEV_DISCARD | DBLOCK_DEV_WRITE_ZEROES;
        c.discard_granularity = 65536;
        c.physical_block_size = 4096;
        c.io_opt_bytes = 128 << 10;
        return c;
    }
};

TEST_F(ServedWithDiscard, QueueLimitsAreThoseAsked) {
    const std::string q = "/sys/block/" + name_ + "/queue/";
    EXPECT_EQ(Sysfs(q + "logical_block_size"), "4096");
    EXPECT_EQ(Sysfs(q + "physical_block_size"), "4096");
    EXPECT_EQ(Sysfs(q + "optimal_io_size"), std::to_string(128 << 10));
    EXPECT_EQ(Sysfs(q + "max_hw_sectors_kb"), std::to_string(128));
    EXPECT_EQ(Sysfs(q + "discard_granularity"), "65536");
    EXPECT_EQ(Sysfs(q + "discard_max_hw_bytes"), std::to_string(1u << 30));
    EXPECT_EQ(Sysfs(q + "write_zeroes_max_bytes"), std::to_string(1u << 30));
    EXPECT_EQ(Sysfs(q + "write_cache"), "write back");
    EXPECT_EQ(Sysfs("/sys/block/" + name_ + "/dblock/queues"), "2");
    EXPECT_EQ(Sysfs("/sys/block/" + name_ + "/dblock/state"), "live");
    EXPECT_EQ(Sysfs("/sys/block/" + name_ + "/dblock/server_pid"), std::to_string(getpid()));
}

TEST_F(ServedWithDiscard, DiscardAndWriteZeroesReachTheServer) {
    Fd disk = OpenDisk();
    std::vector<std::byte> w(1 << 20 | 4096), r(1 << 20 | 4096);
    std::memset(Aligned(w), 0xa5, 1 << 20);
    ASSERT_EQ(pwrite(disk.get(), Aligned(w), 1 << 20, 0), 1 << 20);
    uint64_t range[2] = {0, 256 << 10};
    ASSERT_EQ(::ioctl(disk.get(), BLKDISCARD, range), 0) << strerror(errno);
    EXPECT_GE(server_->ops[DBLOCK_OP_DISCARD], 1u);
    uint64_t zrange[2] = {512 << 10, 256 << 10};
    ASSERT_EQ(::ioctl(disk.get(), BLKZEROOUT, zrange), 0) << strerror(errno);
    EXPECT_GE(server_->ops[DBLOCK_OP_WRITE_ZEROES], 1u);
    EXPECT_GE(server_->nounmap, 1u) << "BLKZEROOUT asks not to unmap";
    ASSERT_EQ(pread(disk.get(), Aligned(r), 1 << 20, 0), 1 << 20);
    auto* p = static_cast<unsigned char*>(Aligned(r));
    for (size_t i = 0; i < (1u << 20); i += 4096) {
        bool zero = i < (256u << 10) || (i >= (512u << 10) && i < (768u << 10));
        ASSERT_EQ(p[i], zero ? 0 : 0xa5) << "at " << i;
    }
    dblock_dev_info now{};
    ASSERT_EQ(InfoById(ctl_.get(), info_.id, &now), 0);
    EXPECT_GE(now.stats.discards, 1u);
    EXPECT_GE(now.stats.write_zeroes, 1u);
    EXPECT_EQ(Sysfs("/sys/block/" + name_ + "/dblock/discards"), std::to_string(now.stats.discards));
}

class ServedReadOnly : public Served {
protected:
    dblock_dev_config Shape() override {
        dblock_dev_config c = Config(name_);
        c.flags |= DBLOCK_DEV_READ_ONLY;
        return c;
    }
};

TEST_F(ServedReadOnly, WritesFail) {
    Fd disk(::open(("/dev/" + name_).c_str(), O_RDONLY | O_DIRECT));
    int ro = 0;
    ASSERT_EQ(::ioctl(disk.get(), BLKROGET, &ro), 0);
    EXPECT_EQ(ro, 1);
    std::vector<std::byte> buf(8192);
    EXPECT_EQ(pread(disk.get(), Aligned(buf), 4096, 0), 4096);
    // The kernel lets a read-only disk be opened for writing; writes fail.
    Fd rw(::open(("/dev/" + name_).c_str(), O_RDWR | O_DIRECT));
    if (rw.get() >= 0) {
        EXPECT_EQ(pwrite(rw.get(), Aligned(buf), 4096, 0), -1);
    }
    EXPECT_EQ(server_->ops[DBLOCK_OP_WRITE], 0u) << "a write reached the server";
}

class ServedShortTimeout : public Served {
protected:
    dblock_dev_config Shape() override {
        dblock_dev_config c = Config(name_);
        c.timeout_ms = 1000;
        return c;
    }
};

TEST_F(ServedShortTimeout, UnansweredRequestsFailAndLateAnswersAreRefused) {
    Fd disk = OpenDisk();
    std::vector<std::byte> buf(8192);
    EXPECT_EQ(Sysfs("/sys/block/" + name_ + "/dblock/timeout_ms"), "1000");
    server_->ignore = true;
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(pread(disk.get(), Aligned(buf), 4096, 0), -1);
    EXPECT_EQ(errno, EIO);
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_GE(took, std::chrono::milliseconds(900));
    EXPECT_LT(took, std::chrono::seconds(10));
    server_->ignore = false;
    server_->answer_ignored_now();
    // Counted when refused; the server hears of it when its call returns.
    EXPECT_TRUE(Eventually([&] {
        dblock_dev_info i{};
        return InfoById(ctl_.get(), info_.id, &i) == 0 && i.stats.rejected >= 1;
    }));
    server_->answer_ignored = false;
    ASSERT_EQ(pread(disk.get(), Aligned(buf), 4096, 4096), 4096) << "the device stopped serving";
    dblock_dev_info now{};
    ASSERT_EQ(InfoById(ctl_.get(), info_.id, &now), 0);
    EXPECT_GE(now.stats.timeouts, 1u);

    // "never" keeps waiting past the old timeout.
    dblock_ctl_set_params p{};
    p.mask = DBLOCK_SET_TIMEOUT;
    p.timeout_ms = DBLOCK_TIMEOUT_NEVER;
    ASSERT_EQ(SetParams(ctl_.get(), name_, p), 0);
    const uint64_t timeouts_before = now.stats.timeouts;
    server_->ignore = true;
    std::atomic<bool> done{false};
    std::thread late([&] {
        EXPECT_EQ(pread(disk.get(), Aligned(buf), 4096, 0), 4096);
        done = true;
    });
    // Not a wait for an event: nothing must happen for 2.5 times the old
    // timeout from the moment the server holds the request.
    EXPECT_TRUE(Eventually([&] { return server_->held() >= 1; })) << "the read never reached the server";
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    EXPECT_FALSE(done) << "a request failed although the timeout is never";
    EXPECT_EQ(InfoById(ctl_.get(), info_.id, &now), 0);  // not ASSERT: `late` must be joined
    EXPECT_EQ(now.stats.timeouts, timeouts_before) << "a request timed out although the timeout is never";
    server_->ignore = false;
    server_->answer_ignored_now();
    late.join();
    EXPECT_TRUE(done);
}

class ServedWait : public Served {
protected:
    dblock_dev_config Shape() override {
        dblock_dev_config c = Config(name_);
        c.recovery = DBLOCK_RECOVERY_WAIT;
        c.grace_ms = grace_ms_;
        return c;
    }
    uint32_t grace_ms_ = 0;
};

TEST_F(ServedWait, ANewServerGetsTheRequestsTheDeadOneTook) {
    Fd disk = OpenDisk();
    auto data = RawServer::NewData(info_.config.size_bytes);
    server_->stop();
    server_->close_channel();
    server_ = std::make_unique<RawServer>(info_, data);
    std::memset(data->data() + 8192, 0x77, 4096);
    server_->start_threads();
    server_->swallow = true;
    std::vector<std::byte> buf(8192);
    std::atomic<bool> done{false};
    std::thread reader([&] {
        EXPECT_EQ(pread(disk.get(), Aligned(buf), 4096, 8192), 4096) << strerror(errno);
        done = true;
    });
    ASSERT_TRUE(Eventually([&] { return server_->swallowed >= 1; }));
    server_->stop();
    server_->close_channel();  // the server dies with the read unanswered
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    EXPECT_FALSE(done) << "the held read completed with no server";
    EXPECT_EQ(Sysfs("/sys/block/" + name_ + "/dblock/state"), "live (waiting for a server)");
    server_ = std::make_unique<RawServer>(info_, data);
    server_->start_threads();
    reader.join();
    EXPECT_TRUE(done);
    EXPECT_EQ(static_cast<unsigned char*>(Aligned(buf))[0], 0x77);
    dblock_dev_info now{};
    ASSERT_EQ(InfoById(ctl_.get(), info_.id, &now), 0);
    EXPECT_GE(now.stats.requeued, 1u);
    EXPECT_EQ(Sysfs("/sys/block/" + name_ + "/dblock/state"), "live");
}

TEST_F(ServedWait, TheDescriptionOutlivesItsServerAndANewServerStartsWithout) {
    Fd ctl = OpenCtl();
    ASSERT_EQ(SetBackend(server_->chan(), "file:/old.img"), 0);
    server_->stop();
    server_->close_channel();
    std::string text;
    ASSERT_EQ(GetBackend(ctl.get(), name_, &text), 0);
    EXPECT_EQ(text, "file:/old.img") << "kept while the device waits for a server";
    server_ = std::make_unique<RawServer>(info_);
    ASSERT_EQ(GetBackend(ctl.get(), name_, &text), 0);
    EXPECT_EQ(text, "") << "a new server starts with none";
    ASSERT_EQ(SetBackend(server_->chan(), "file:/new.img"), 0);
    ASSERT_EQ(GetBackend(ctl.get(), name_, &text), 0);
    EXPECT_EQ(text, "file:/new.img");
    server_->start_threads();
}

class ServedWaitWithGrace : public ServedWait {
protected:
    void SetUp() override {
        grace_ms_ = 1500;
        ServedWait::SetUp();
    }
};

TEST_F(ServedWaitWithGrace, HeldRequestsFailWhenTheGracePeriodEnds) {
    Fd disk = OpenDisk();
    server_->swallow = true;
    std::vector<std::byte> buf(8192);
    auto start = std::chrono::steady_clock::now();
    std::thread reader([&] {
        EXPECT_EQ(pread(disk.get(), Aligned(buf), 4096, 0), -1);
        EXPECT_EQ(errno, EIO);
    });
    ASSERT_TRUE(Eventually([&] { return server_->swallowed >= 1; }));
    server_->stop();
    server_->close_channel();
    reader.join();
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_GE(took, std::chrono::milliseconds(1400));
    EXPECT_LT(took, std::chrono::seconds(10));
    // A server that comes back later serves new requests again.
    server_ = std::make_unique<RawServer>(info_);
    server_->start_threads();
    EXPECT_EQ(pread(disk.get(), Aligned(buf), 4096, 0), 4096);
}

int EnvInt(const char* name, int dflt) {
    const char* v = std::getenv(name);
    return v && *v ? std::atoi(v) : dflt;
}

// DBLOCK_CTL_DESTROY without force, raced by an open of the disk: either
// destroy sees the opener and says EBUSY, or the open fails; never both
// succeed.  An opener thread tries from around the time destroy is called
// and keeps the first disk it opens until destroy has returned.  So a destroy
// that succeeded while the opener held the disk was wrong whenever the open
// happened: before destroy counted the openers (it had to see it) or after
// (the open had to fail).  DBLOCK_RACE_ITERATIONS (default 200) and
// DBLOCK_RACE_SECONDS (default 120) bound the run; DBLOCK_RACE_DEBUG=1
// prints every iteration.
TEST(DestroyOpenRace, DestroyAndOpenNeverBothSucceed) {
    using Clock = std::chrono::steady_clock;
    const int max_iterations = EnvInt("DBLOCK_RACE_ITERATIONS", 200);
    const auto end = Clock::now() + std::chrono::seconds(EnvInt("DBLOCK_RACE_SECONDS", 45));
    const std::string name = "abi-race", disk = "/dev/" + name;
    Fd ctl = OpenCtl();
    dblock_dev_config c = Config(name);
    c.nr_queues = 1;
    c.queue_depth = 4;
    c.size_bytes = 16 << 20;
    std::mt19937 rng(12345);
    // The opener starts at an offset from the call of destroy (negative:
    // before it) drawn from center_us +- kSpreadUs, and center_us tracks the
    // offset at which half of the opens come before destroy counts the
    // openers (EBUSY) and half after it.  The window that matters follows
    // that point: destroy has counted the openers, the disk is not gone yet.
    constexpr long kSpreadUs = 100, kStepUs = 10;
    long center_us = 0;
    const auto spin_until = [](Clock::time_point t) {
        while (Clock::now() < t) {
        }
    };
    int iterations = 0, busy = 0, destroyed = 0, refused = 0, both = 0;
    std::string violations;
    for (; iterations < max_iterations && Clock::now() < end; iterations++) {
        dblock_dev_info info{};
        ASSERT_EQ(Create(ctl.get(), c, &info), 0);
        ASSERT_TRUE(WaitForPath(ChanPath(info.id), true));
        auto server = std::make_unique<RawServer>(info, nullptr, RawServer::Buffers::kUser);
        server->start_threads();
        ASSERT_EQ(::ioctl(server->chan(), DBLOCK_IOC_START), 0) << strerror(errno);
        ASSERT_TRUE(WaitForPath(disk, true));

        const long offset_us = center_us - kSpreadUs + long(rng() % (2 * kSpreadUs + 1));
        std::atomic<bool> go{false}, destroy_done{false};
        Clock::time_point destroy_at;
        int held = -1, failed_opens = 0, open_errno = 0;
        std::thread opener([&] {
            while (!go) {
            }
            spin_until(destroy_at + std::chrono::microseconds(offset_us));
            while (!destroy_done) {
                int fd = ::open(disk.c_str(), O_RDONLY | O_CLOEXEC);
                if (fd >= 0) {
                    held = fd;
                    return;
                }
                failed_opens++;
                open_errno = errno;
            }
        });
        destroy_at = Clock::now() + std::chrono::microseconds(500 + std::max(0L, -offset_us));
        go = true;
        spin_until(destroy_at);
        const int err = DestroyByName(ctl.get(), name);
        const long took = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - destroy_at).count();
        destroy_done = true;
        opener.join();
        Fd fd(held);
        if (std::getenv("DBLOCK_RACE_DEBUG"))
            std::printf("%d: opener at %+ld us, destroy: %s after %ld us; %d opens failed (%s), held: %s\n",
                        iterations, offset_us, strerror(err), took, failed_opens, strerror(open_errno),
                        held >= 0 ? "yes" : "no");
        center_us += err == EBUSY ? kStepUs : -kStepUs;
        if (err == 0) {
            destroyed++;
            if (failed_opens) refused++;
            if (fd.get() >= 0) {
                uint64_t bytes = 0;
                int size_err = Ioctl(fd.get(), BLKGETSIZE64, &bytes);
                if (both++ < 5)
                    violations += "\n  iteration " + std::to_string(iterations) + ": opener started " +
                                  std::to_string(offset_us) + " us after destroy was called, which took " +
                                  std::to_string(took) + " us; the open disk then has " +
                                  (size_err ? std::string("no size: ") + strerror(size_err)
                                            : std::to_string(bytes) + " bytes");
            }
        } else {
            ASSERT_EQ(err, EBUSY) << strerror(err);
            busy++;
            fd.reset();
            // Nothing holds the disk now but a passing prober (udev).
            int again = EBUSY;
            for (int i = 0; i < 500 && again == EBUSY; i++) {
                again = DestroyByName(ctl.get(), name);
                if (again == EBUSY) usleep(10000);
            }
            ASSERT_EQ(again, 0) << strerror(again);
        }
        fd.reset();
        server->join();
        server.reset();
        ASSERT_TRUE(WaitForPath(ChanPath(info.id), false));
        ASSERT_TRUE(WaitForPath(disk, false));
    }
    std::printf("destroy/open race: %d iterations: %d destroys refused (EBUSY), %d succeeded, "
                "%d of these with opens failing meanwhile, %d with a disk opened and held\n",
                iterations, busy, destroyed, refused, both);
    EXPECT_EQ(both, 0) << "destroy succeeded while the disk was held open:" << violations;
    EXPECT_GE(iterations, 20) << "too few iterations to mean anything";
}

}  // namespace

int main(int argc, char** argv) {
    // A handler without SA_RESTART, so that SIGUSR1 interrupts a SERVE call.
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sigaction(SIGUSR1, &sa, nullptr);
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
