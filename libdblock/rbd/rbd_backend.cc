// Copyright (c) dblock authors.
#include "dblock/rbd_backend.h"

#include <rados/librados.h>
#include <rbd/librbd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "dblock/error.h"

namespace dblock {

struct RbdBackend::Op {
  RbdBackend* backend;
  AsyncCompletion completion;
  bool fua;
};

namespace {

rados_t as_cluster(void* p) { return static_cast<rados_t>(p); }
rados_ioctx_t as_ioctx(void* p) { return static_cast<rados_ioctx_t>(p); }
rbd_image_t as_image(void* p) { return static_cast<rbd_image_t>(p); }

void on_complete(rbd_completion_t c, void* arg) {
  auto* op = static_cast<RbdBackend::Op*>(arg);
  const ssize_t r = rbd_aio_get_return_value(c);
  rbd_aio_release(c);
  if (r >= 0 && op->fua) {
    op->fua = false;
    op->backend->defer_flush(op);  // short: a list push and a notify
    return;
  }
  op->completion.done(r < 0 ? static_cast<int>(r) : 0);
  delete op;
}

std::string lock_owners(rbd_image_t image) {
  rbd_lock_mode_t mode;
  std::vector<char*> owners(8);
  size_t n = owners.size();
  if (rbd_lock_get_owners(image, &mode, owners.data(), &n) < 0 || n == 0) return "unknown";
  std::string out;
  for (size_t i = 0; i < n; ++i) out += (i ? ", " : "") + std::string(owners[i]);
  rbd_lock_get_owners_cleanup(owners.data(), n);
  return out;
}

void set_conf(rados_t cluster, const char* key, const std::string& value) {
  const int rc = rados_conf_set(cluster, key, value.c_str());
  if (rc < 0) throw Error(-rc, fmt::format("rados_conf_set {}={}", key, value));
}

}  // namespace

RbdBackend::RbdBackend(const Options& o) : spec_(o.pool + "/" + o.image) {
  const std::string what = "rbd " + spec_;
  // Undo what was set up if a later step throws.
  struct Cleanup {
    RbdBackend* self;
    bool armed = true;
    ~Cleanup() {
      if (!armed) return;
      if (self->image_) rbd_close(as_image(self->image_));
      if (self->ioctx_) rados_ioctx_destroy(as_ioctx(self->ioctx_));
      if (self->cluster_) rados_shutdown(as_cluster(self->cluster_));
    }
  } cleanup{this};

  rados_t cluster = nullptr;
  int rc = rados_create(&cluster, o.client_id.empty() ? nullptr : o.client_id.c_str());
  if (rc < 0) throw Error(-rc, what + ": rados_create (client." + o.client_id + ")");
  cluster_ = cluster;
  rc = rados_conf_read_file(cluster, o.conf_file.empty() ? nullptr : o.conf_file.c_str());
  if (rc < 0) {
    throw Error(-rc, fmt::format("{}: read Ceph configuration {}", what,
                                 o.conf_file.empty() ? "(default search path)" : o.conf_file));
  }
  (void)rados_conf_parse_env(cluster, nullptr);  // CEPH_ARGS
  const std::string timeout = std::to_string(o.connect_timeout.count());
  set_conf(cluster, "client_mount_timeout", timeout);
  set_conf(cluster, "rados_mon_op_timeout", timeout);
  if (o.cache) set_conf(cluster, "rbd_cache", *o.cache ? "true" : "false");

  rc = rados_connect(cluster);
  if (rc < 0) {
    char hosts[512] = "?";
    (void)rados_conf_get(cluster, "mon_host", hosts, sizeof hosts);
    std::string hint;
    if (rc == -ETIMEDOUT || rc == -EINTR) {
      hint = fmt::format("no monitor answered within {} s (mon host = {}): is the cluster up "
                         "and reachable?", o.connect_timeout.count(), hosts);
    } else if (rc == -ENOENT) {
      hint = "no keyring for client." + o.client_id + " (keyring = ... in the configuration?)";
    } else if (rc == -EACCES || rc == -EPERM) {
      hint = "the cluster refused client." + o.client_id + "'s key";
    }
    throw Error(-rc, what + ": connect to the cluster", hint);
  }

  rados_ioctx_t ioctx = nullptr;
  rc = rados_ioctx_create(cluster, o.pool.c_str(), &ioctx);
  if (rc < 0) {
    throw Error(-rc, fmt::format("{}: open pool '{}'", what, o.pool),
                rc == -ENOENT ? "no such pool" : "");
  }
  ioctx_ = ioctx;

  rbd_image_t image = nullptr;
  rc = rbd_open(ioctx, o.image.c_str(), &image, nullptr);
  if (rc == -ENOENT && o.create_size) {
    rbd_image_options_t opts;
    rbd_image_options_create(&opts);
    rc = rbd_create4(ioctx, o.image.c_str(), *o.create_size, opts);
    rbd_image_options_destroy(opts);
    if (rc < 0 && rc != -EEXIST) throw Error(-rc, fmt::format("{}: create image", what));
    created_ = rc == 0;
    rc = rbd_open(ioctx, o.image.c_str(), &image, nullptr);
  }
  if (rc < 0) {
    throw Error(-rc, what + ": open image",
                rc == -ENOENT ? "create it with --create-size SIZE or `rbd create`"
                              : "");
  }
  image_ = image;

  std::uint64_t size = 0;
  rc = rbd_get_size(image, &size);
  size_ = size;
  if (rc < 0) throw Error(-rc, what + ": get size");

  if (o.exclusive) {
    uint64_t features = 0;
    rc = rbd_get_features(image, &features);
    if (rc < 0) throw Error(-rc, what + ": get features");
    if (!(features & RBD_FEATURE_EXCLUSIVE_LOCK)) {
      throw Error(EINVAL, what + ": take the exclusive lock",
                  "the image lacks the exclusive-lock feature "
                  "(rbd feature enable POOL/IMAGE exclusive-lock)");
    }
    // A live owner that took the lock explicitly refuses to hand it over
    // (EROFS); a dead one is broken once its watch expired.  Retry until
    // lock_timeout, then say who holds it.
    const auto t0 = std::chrono::steady_clock::now();
    const auto deadline = t0 + o.lock_timeout;
    for (;;) {
      rc = rbd_lock_acquire(image, RBD_LOCK_MODE_EXCLUSIVE);
      if (rc == 0) break;
      if ((rc != -EROFS && rc != -EBUSY && rc != -ETIMEDOUT && rc != -EAGAIN) ||
          std::chrono::steady_clock::now() >= deadline) {
        throw Error(-rc, what + ": take the exclusive lock",
                    fmt::format("locked by another client: {} (see `rbd status {}`, "
                                "`rbd lock ls {}`)",
                                lock_owners(image), spec_, spec_));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    lock_wait_ = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - t0);
  }

  flusher_ = std::thread([this] { flusher_loop(); });
  cleanup.armed = false;
}

RbdBackend::~RbdBackend() {
  {
    std::lock_guard lock(flush_mu_);
    flush_stop_ = true;
  }
  flush_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  // Drain, close, destroy, shut down: librbd's required order.
  (void)rbd_flush(as_image(image_));
  rbd_close(as_image(image_));
  rados_ioctx_destroy(as_ioctx(ioctx_));
  rados_shutdown(as_cluster(cluster_));
}

void RbdBackend::defer_flush(Op* op) {
  {
    std::lock_guard lock(flush_mu_);
    flush_queue_.push_back(op);
  }
  flush_cv_.notify_one();
}

void RbdBackend::flusher_loop() {
  std::unique_lock lock(flush_mu_);
  for (;;) {
    flush_cv_.wait(lock, [&] { return flush_stop_ || !flush_queue_.empty(); });
    if (flush_queue_.empty()) return;  // stopping, and nothing owed
    Op* op = flush_queue_.front();
    flush_queue_.pop_front();
    lock.unlock();
    start_flush(op);
    lock.lock();
  }
}

void RbdBackend::start_flush(Op* op) {
  rbd_completion_t c;
  int rc = rbd_aio_create_completion(op, on_complete, &c);
  if (rc == 0) {
    rc = rbd_aio_flush(as_image(image_), c);
    if (rc == 0) return;
    rbd_aio_release(c);
  }
  op->completion.done(rc);
  delete op;
}

void RbdBackend::resize(std::uint64_t new_size) {
  if (new_size <= size_.load()) return;
  const int rc = rbd_resize(static_cast<rbd_image_t>(image_), new_size);
  if (rc < 0) {
    throw Error(-rc, fmt::format("rbd {}: grow the image to {} bytes", spec_, new_size));
  }
  size_ = new_size;
}

void RbdBackend::submit(const AsyncRequest& r, AsyncCompletion completion) {
  auto op = std::make_unique<Op>(Op{this, completion, false});
  rbd_image_t image = as_image(image_);
  rbd_completion_t c;
  int rc = rbd_aio_create_completion(op.get(), on_complete, &c);
  if (rc < 0) throw Error(-rc, "rbd_aio_create_completion");
  const auto data = reinterpret_cast<char*>(r.data.data());
  const char* name = "";
  switch (r.op) {
    case DBLOCK_OP_READ:
      name = "rbd_aio_read";
      rc = rbd_aio_read(image, r.offset, r.length, data, c);
      break;
    case DBLOCK_OP_WRITE:
      name = "rbd_aio_write";
      op->fua = (r.flags & DBLOCK_REQ_FUA) != 0;
      rc = rbd_aio_write(image, r.offset, r.length, data, c);
      break;
    case DBLOCK_OP_FLUSH:
      name = "rbd_aio_flush";
      rc = rbd_aio_flush(image, c);
      break;
    case DBLOCK_OP_DISCARD:
      name = "rbd_aio_discard";
      rc = rbd_aio_discard(image, r.offset, r.length, c);
      break;
    case DBLOCK_OP_WRITE_ZEROES:
      name = "rbd_aio_write_zeroes";
      rc = rbd_aio_write_zeroes(image, r.offset, r.length, c,
                                (r.flags & DBLOCK_REQ_NOUNMAP) ? RBD_WRITE_ZEROES_FLAG_THICK_PROVISION
                                                               : 0,
                                0);
      break;
    default:
      rbd_aio_release(c);
      throw Error(EOPNOTSUPP, fmt::format("rbd: operation {}", r.op));
  }
  if (rc < 0) {
    rbd_aio_release(c);  // never started: the callback will not run
    throw Error(-rc, fmt::format("{} {}", name, spec_));
  }
  op.release();  // on_complete deletes it
}

}  // namespace dblock
