// dblock_fuzz: drives /dev/dblockctl and the device channels with random and
// malformed commands from several threads for a bounded time, then checks
// that every device can still be destroyed.  Kernel-side damage (WARNING,
// BUG, KASAN, hung tasks, leaks) is caught by the guest suite's log check.
//
//   dblock_fuzz [--seconds N] [--threads N] [--seed N]
#include <linux/dblock.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kNames = 6;  // a small name space makes clashes and races likely

struct Counters {
    std::mutex mu;
    std::map<std::string, unsigned long> sent;
    std::map<int, unsigned long> errnos;
    void add(const std::string& what, int err) {
        std::lock_guard lock(mu);
        sent[what]++;
        errnos[err]++;
    }
};

Counters counters;

std::string Name(int i) { return "fuzz" + std::to_string(i); }

int Ioctl(int fd, unsigned long cmd, void* arg) { return ::ioctl(fd, cmd, arg) == 0 ? 0 : errno; }

class Fuzzer {
public:
    // Our own buffer memory for SERVE's buffer_ptr: kUserArea bytes usable,
    // then as much again that faults (PROT_NONE), so a server's buffer that
    // the kernel cannot use is tried too.
    static constexpr size_t kUserArea = 64u << 20;

    Fuzzer(unsigned seed, int ctl) : rng_(seed), ctl_(ctl) {
        area_ = mmap(nullptr, 2 * kUserArea, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (area_ == MAP_FAILED || mprotect(static_cast<char*>(area_) + kUserArea, kUserArea, PROT_NONE)) {
            std::perror("fuzz: buffer area");
            std::exit(2);
        }
    }
    ~Fuzzer() {
        munmap(area_, 2 * kUserArea);
        for (auto& [id, fd] : channels_) ::close(fd);
    }

    void Step() {
        switch (Pick(12)) {
        case 0: case 1: Create(); break;
        case 2: Destroy(); break;
        case 3: Info(); break;
        case 4: List(); break;
        case 5: SetParams(); break;
        case 6: RandomCtlIoctl(); break;
        case 7: OpenChannel(); break;
        case 8: case 9: Serve(); break;
        case 10: Map(); break;
        case 11: CloseChannel(); break;
        }
    }

private:
    unsigned Pick(unsigned n) { return std::uniform_int_distribution<unsigned>(0, n - 1)(rng_); }
    uint64_t Bits() { return std::uniform_int_distribution<uint64_t>()(rng_); }
    // Mostly sane values, sometimes anything.
    uint64_t Maybe(uint64_t sane) { return Pick(8) ? sane : Bits(); }

    void Fill(void* p, size_t n) {
        auto* b = static_cast<unsigned char*>(p);
        for (size_t i = 0; i < n; i++) b[i] = static_cast<unsigned char>(Bits());
    }

    void Create() {
        dblock_ctl_create c{};
        if (Pick(10) == 0) {
            Fill(&c, sizeof(c));
            c.config.timeout_ms = 50 + Pick(500);
        } else {
            std::string name = Name(Pick(kNames));
            std::memcpy(c.config.name, name.data(), name.size());
            const uint32_t bs = 512u << Pick(4);
            c.config.logical_block_size = uint32_t(Maybe(bs));
            c.config.size_bytes = Maybe(uint64_t(bs) * (1 + Pick(8192)));
            c.config.max_io_bytes = uint32_t(Maybe(4096u << Pick(6)));
            c.config.nr_queues = uint16_t(Maybe(1 + Pick(4)));
            c.config.queue_depth = uint16_t(Maybe(1 + Pick(64)));
            // Short timeouts keep whatever the fuzzer leaves pending bounded.
            // Always short: START waits for the partition scan, which only a
            // timeout ends when nobody serves, and a long one is a hang by design.
            c.config.timeout_ms = 50 + Pick(500);
            c.config.flags = Maybe(Bits() & DBLOCK_DEV_FLAGS_ALL);
            c.config.recovery = uint8_t(Maybe(Pick(2)));
            c.config.grace_ms = uint32_t(Maybe(Pick(300)));
            if (c.config.flags & DBLOCK_DEV_DISCARD) c.config.discard_granularity = uint32_t(Maybe(0));
            if (Pick(20) == 0) c.config.__reserved[Pick(4)] = Bits();
            if (Pick(20) == 0) c.config.__pad[Pick(7)] = 1;
        }
        counters.add("create", Ioctl(ctl_, DBLOCK_CTL_CREATE, &c));
    }

    void Target(dblock_ctl_target& t) {
        if (Pick(3)) {
            std::string name = Name(Pick(kNames));
            std::memcpy(t.name, name.data(), name.size());
        } else {
            t.id = uint32_t(Maybe(Pick(16)));
        }
        if (Pick(10) == 0) Fill(&t, sizeof(t));
    }

    void Destroy() {
        dblock_ctl_target t{};
        Target(t);
        if (Pick(4) == 0) t.flags = DBLOCK_DESTROY_FORCE;
        counters.add("destroy", Ioctl(ctl_, DBLOCK_CTL_DESTROY, &t));
    }

    void Info() {
        dblock_ctl_get_info gi{};
        Target(gi.target);
        counters.add("info", Ioctl(ctl_, DBLOCK_CTL_GET_INFO, &gi));
        dblock_ctl_get_backend gb{};
        Target(gb.target);
        counters.add("get_backend", Ioctl(ctl_, DBLOCK_CTL_GET_BACKEND, &gb));
    }

    void List() {
        std::vector<uint32_t> ids(8);
        dblock_ctl_list l{};
        l.ids_ptr = Pick(10) ? reinterpret_cast<uintptr_t>(ids.data()) : Bits();
        l.capacity = uint32_t(Maybe(ids.size()));
        if (Pick(10) == 0) l.count = 1;
        counters.add("list", Ioctl(ctl_, DBLOCK_CTL_LIST, &l));
    }

    void SetParams() {
        dblock_ctl_set_params p{};
        Target(p.target);
        p.target.flags = 0;
        p.mask = uint32_t(Maybe(Bits() & DBLOCK_SET_ALL));
        p.size_bytes = Maybe(4096ull * (1 + Pick(8192)));
        p.timeout_ms = 50 + Pick(500);
        p.recovery = uint8_t(Maybe(Pick(2)));
        p.grace_ms = uint32_t(Maybe(Pick(300)));
        counters.add("set_params", Ioctl(ctl_, DBLOCK_CTL_SET_PARAMS, &p));
    }

    void RandomCtlIoctl() {
        unsigned char buf[512];
        Fill(buf, sizeof(buf));
        const unsigned long cmds[] = {DBLOCK_CTL_GET_VERSION, DBLOCK_CTL_CREATE,
                                      DBLOCK_CTL_DESTROY,     DBLOCK_CTL_LIST,
                                      DBLOCK_CTL_GET_INFO,    DBLOCK_CTL_SET_PARAMS,
                                      DBLOCK_CTL_GET_BACKEND};
        unsigned long cmd = Pick(3) ? cmds[Pick(unsigned(std::size(cmds)))] : (unsigned long)(uint32_t)Bits();
        // Random bytes in a create could ask for a huge buffer: cap the shape.
        if (cmd == DBLOCK_CTL_CREATE) return Create();
        if (cmd == DBLOCK_IOC_START) return;  // would block: only on a channel
        counters.add("ctl_random", Ioctl(ctl_, cmd, Pick(10) ? buf : reinterpret_cast<void*>(Bits())));
    }

    void OpenChannel() {
        uint32_t id = Pick(16);
        if (channels_.count(id)) return;
        int fd = ::open(("/dev/dblock/" + std::to_string(id)).c_str(), O_RDWR | O_CLOEXEC);
        counters.add("chan_open", fd < 0 ? errno : 0);
        if (fd >= 0) channels_[id] = fd;
    }

    void CloseChannel() {
        if (channels_.empty()) return;
        auto it = channels_.begin();
        std::advance(it, Pick(channels_.size()));
        ::close(it->second);
        channels_.erase(it);
        counters.add("chan_close", 0);
    }

    int AnyChannel() {
        if (channels_.empty()) return -1;
        auto it = channels_.begin();
        std::advance(it, Pick(channels_.size()));
        return it->second;
    }

    void Serve() {
        int fd = AnyChannel();
        if (fd < 0) return;
        // Room for a whole queue of requests twice the struct's size: the
        // kernel caps max_requests only at the queue's depth.
        static thread_local std::vector<dblock_request> reqs(2 * DBLOCK_MAX_QUEUE_DEPTH);
        std::vector<dblock_completion> cpls(Pick(8));
        for (auto& c : cpls) {
            c.tag = uint16_t(Maybe(Pick(64)));
            c.seq = uint32_t(Maybe(Pick(4)));
            c.result = int32_t(Maybe(Pick(2) ? 0 : -EIO));
        }
        dblock_serve s{};
        s.queue = uint16_t(Maybe(Pick(4)));
        s.completions_ptr = Pick(20) ? reinterpret_cast<uintptr_t>(cpls.data()) : Bits();
        s.nr_completions = uint32_t(Maybe(cpls.size()));
        s.requests_ptr = Pick(20) ? reinterpret_cast<uintptr_t>(reqs.data()) : Bits();
        // Mostly our struct's size, sometimes twice that (as a server built
        // with a larger struct), sometimes one the kernel must refuse.
        static constexpr uint16_t kBadSizes[] = {0, 8, 24, 36, 33};
        const unsigned size_pick = Pick(10);
        s.request_size = size_pick > 1 ? uint16_t(sizeof(dblock_request))
                         : size_pick  ? uint16_t(2 * sizeof(dblock_request))
                                      : kBadSizes[Pick(std::size(kBadSizes))];
        s.max_requests = uint32_t(Pick(4) ? 64 : Maybe(0));
        s.flags = Pick(20) ? DBLOCK_SERVE_NOWAIT : uint32_t(Bits());
        s.buffer_ptr = BufferPtr(fd);
        int err = Ioctl(fd, DBLOCK_IOC_SERVE, &s);
        counters.add("serve", err);
        // Answer what was fetched, sometimes wrongly.
        if (!err && s.nr_requests && s.nr_requests <= DBLOCK_MAX_QUEUE_DEPTH) {
            const unsigned stride = s.request_size / sizeof(dblock_request);
            cpls.clear();
            for (unsigned i = 0; i < s.nr_requests; i++) {
                const dblock_request& r = reqs[i * stride];
                dblock_completion c{};
                c.tag = r.tag;
                c.seq = Pick(10) ? r.seq : r.seq + 1;
                c.result = Pick(10) ? 0 : -EIO;
                cpls.push_back(c);
            }
            dblock_serve a{};
            a.queue = s.queue;
            a.completions_ptr = reinterpret_cast<uintptr_t>(cpls.data());
            a.nr_completions = cpls.size();
            a.request_size = sizeof(dblock_request);
            a.flags = DBLOCK_SERVE_NOWAIT;
            a.buffer_ptr = s.buffer_ptr;
            counters.add("serve_answer", Ioctl(fd, DBLOCK_IOC_SERVE, &a));
        }
        if (Pick(30) == 0) {
            dblock_dev_info info{};
            counters.add("chan_info", Ioctl(fd, DBLOCK_IOC_GET_INFO, &info));
        }
        if (Pick(30) == 0) {
            // A description, or bytes the kernel must refuse (EINVAL).
            dblock_backend b{};
            if (Pick(4) == 0) {
                Fill(&b, sizeof(b));
            } else {
                const std::string text = "file:/fuzz/" + std::to_string(Bits());
                std::memcpy(b.text, text.data(), text.size());
            }
            counters.add("set_backend", Ioctl(fd, DBLOCK_IOC_SET_BACKEND, &b));
        }
        if (Pick(40) == 0) {
            // START blocks until every queue has a server; a watchdog signal
            // interrupts it if it waits too long.
            counters.add("start", ::ioctl(fd, DBLOCK_IOC_START) == 0 ? 0 : errno);
        }
    }

    // The kernel's area (0), ours, ours where it faults, or anything.  Ours
    // only when the device's area fits it: beyond lies memory we do not own.
    uint64_t BufferPtr(int fd) {
        const unsigned pick = Pick(10);
        if (pick == 0) return Bits();
        if (pick > 4) return 0;
        dblock_dev_info info{};
        if (Ioctl(fd, DBLOCK_IOC_GET_INFO, &info) || info.buffer_bytes > kUserArea) return 0;
        return reinterpret_cast<uintptr_t>(area_) + (pick == 1 ? kUserArea : 0);
    }

    void Map() {
        int fd = AnyChannel();
        if (fd < 0) return;
        size_t len = size_t(Maybe(4096u << Pick(8)));
        if (len == 0 || len > (1u << 30)) len = 4096;
        off_t off = off_t(Maybe(uint64_t(Pick(4)) << (12 + Pick(12)))) & ((1ll << 40) - 1);
        void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
        counters.add("mmap", p == MAP_FAILED ? errno : 0);
        if (p != MAP_FAILED) {
            std::memset(p, 0xab, std::min<size_t>(len, 4096));
            munmap(p, len);
        }
    }

    std::mt19937_64 rng_;
    int ctl_;
    void* area_;
    std::map<uint32_t, int> channels_;
};

}  // namespace

int main(int argc, char** argv) {
    int seconds = 60, nthreads = 4;
    unsigned seed = unsigned(time(nullptr));
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--seconds") seconds = atoi(argv[i + 1]);
        else if (a == "--threads") nthreads = atoi(argv[i + 1]);
        else if (a == "--seed") seed = unsigned(strtoul(argv[i + 1], nullptr, 0));
        else { fprintf(stderr, "usage: dblock_fuzz [--seconds N] [--threads N] [--seed N]\n"); return 2; }
    }
    struct sigaction sa{};
    sa.sa_handler = [](int) {};
    sigaction(SIGUSR1, &sa, nullptr);

    int ctl = ::open("/dev/dblockctl", O_RDWR | O_CLOEXEC);
    if (ctl < 0) { perror("open /dev/dblockctl"); return 1; }
    printf("dblock_fuzz: %d threads, %d s, seed %u\n", nthreads, seconds, seed);

    const auto end = Clock::now() + std::chrono::seconds(seconds);
    std::vector<std::thread> threads;
    std::atomic<int> finished{0};
    for (int t = 0; t < nthreads; t++) {
        threads.emplace_back([&, t] {
            Fuzzer f(seed + t, ctl);
            while (Clock::now() < end) f.Step();
            finished++;
        });
    }
    // Watchdog: a thread stuck in a blocking call (START, SERVE without
    // NOWAIT) gets a signal; those calls are interruptible.  Past the end a
    // thread that still does not return is a hang.
    while (finished < nthreads && Clock::now() < end + std::chrono::seconds(60)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        for (auto& th : threads) pthread_kill(th.native_handle(), SIGUSR1);
    }
    if (finished < nthreads) {
        fprintf(stderr, "dblock_fuzz: %d threads still blocked a minute past the end\n",
                nthreads - finished.load());
        return 1;
    }
    int rc = 0;
    for (auto& th : threads) th.join();

    // Everything the fuzzer made must go away.
    for (int i = 0; i < kNames; i++) {
        dblock_ctl_target t{};
        std::string name = Name(i);
        std::memcpy(t.name, name.data(), name.size());
        t.flags = DBLOCK_DESTROY_FORCE;
        int err = Ioctl(ctl, DBLOCK_CTL_DESTROY, &t);
        if (err && err != ENODEV) {
            fprintf(stderr, "dblock_fuzz: cannot destroy %s: %s\n", name.c_str(), strerror(err));
            rc = 1;
        }
    }
    dblock_ctl_list l{};
    if (Ioctl(ctl, DBLOCK_CTL_LIST, &l) || l.count) {
        fprintf(stderr, "dblock_fuzz: %u devices left\n", l.count);
        rc = 1;
    }
    unsigned long total = 0;
    for (auto& [what, n] : counters.sent) total += n;
    printf("dblock_fuzz: %lu commands:", total);
    for (auto& [what, n] : counters.sent) printf(" %s=%lu", what.c_str(), n);
    printf("\ndblock_fuzz: answers:");
    for (auto& [err, n] : counters.errnos) printf(" %s=%lu", err ? strerrorname_np(err) : "OK", n);
    printf("\n");
    close(ctl);
    return rc;
}
