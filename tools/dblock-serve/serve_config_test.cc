// Copyright (c) dblock authors.
#include "serve_config.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "dblock/error.h"
#include "dblock/file_backend.h"

namespace serve_tool {
namespace {

// make_plan(settings) fails, and its message contains `part`.
void expect_refused(const Settings& settings, const std::string& part) {
  try {
    make_plan(settings);
    ADD_FAILURE() << "no exception; expected '" << part << "'";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(ParseConfig, KeysCommentsBlanksAndQuotes) {
  const Settings s = parse_config(
      "# a comment\n\nname = disk0\r\nbackend=\"file:/var/lib/x img\"\n  read_only=yes\n", "f");
  EXPECT_EQ(s.at("name"), "disk0");
  EXPECT_EQ(s.at("backend"), "file:/var/lib/x img");
  EXPECT_EQ(s.at("read_only"), "yes");
  EXPECT_EQ(s.size(), 3u);
}

TEST(ParseConfig, RejectsUnknownKeysAndJunkWithTheLine) {
  try {
    parse_config("name=a\nsizee=1G\n", "my.conf");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("my.conf:2: unknown key 'sizee'"), std::string::npos);
  }
  EXPECT_THROW(parse_config("just words\n", "f"), std::invalid_argument);
}

TEST(MakePlan, DefaultsAndConversions) {
  const Plan p = make_plan({{"name", "d"}, {"backend", "null"}, {"size", "1G"}});
  EXPECT_EQ(p.backend, BackendKind::kNull);
  EXPECT_EQ(p.device.size_bytes, 1ull << 30);
  EXPECT_EQ(p.device.block_size, 4096u);
  EXPECT_EQ(p.device.queues, 2);
  EXPECT_EQ(p.device.queue_depth, 64);
  EXPECT_EQ(p.device.max_io_bytes, 256u * 1024);
  EXPECT_FALSE(p.device.read_only);

  const Plan f = make_plan({{"name", "d"},
                            {"backend", "file:/x"},
                            {"queues", "4"},
                            {"depth", "128"},
                            {"max_io", "1M"},
                            {"block_size", "512"},
                            {"read_only", "true"}});
  EXPECT_EQ(f.backend, BackendKind::kFile);
  EXPECT_EQ(f.file, "/x");
  EXPECT_FALSE(f.size_given);
  EXPECT_EQ(f.device.queues, 4);
  EXPECT_EQ(f.device.queue_depth, 128);
  EXPECT_EQ(f.device.max_io_bytes, 1u << 20);
  EXPECT_EQ(f.device.block_size, 512u);
  EXPECT_TRUE(f.device.read_only);
}

TEST(MakePlan, SaysWhatIsWrong) {
  EXPECT_THROW(make_plan({{"backend", "ram"}, {"size", "1G"}}), std::invalid_argument);
  EXPECT_THROW(make_plan({{"name", "d"}, {"size", "1G"}}), std::invalid_argument);
  EXPECT_THROW(make_plan({{"name", "d"}, {"backend", "ram"}}), std::invalid_argument);
  EXPECT_THROW(make_plan({{"name", "d"}, {"backend", "disk"}, {"size", "1G"}}),
               std::invalid_argument);
  EXPECT_THROW(make_plan({{"name", "d"}, {"backend", "ram"}, {"size", "1G"}, {"queues", "x"}}),
               std::invalid_argument);
  EXPECT_THROW(make_plan({{"name", "d"}, {"backend", "ram"}, {"size", "1G"}, {"queues", "-1"}}),
               std::invalid_argument);
  EXPECT_THROW(make_plan({{"name", "d"}, {"backend", "ram"}, {"size", "1G"}, {"queues", "70000"}}),
               std::invalid_argument);
  EXPECT_THROW(
      make_plan({{"name", "d"}, {"backend", "ram"}, {"size", "1G"}, {"read_only", "maybe"}}),
      std::invalid_argument);
  EXPECT_THROW(make_plan({{"name", "bad/name"}, {"backend", "ram"}, {"size", "1G"}}),
               std::invalid_argument);
}

TEST(MakePlan, RecoveryGraceTimeoutAndMlock) {
  const Plan d = make_plan({{"name", "d"}, {"backend", "null"}, {"size", "1G"}});
  EXPECT_EQ(d.device.recovery, dblock::Recovery::kFail);
  EXPECT_EQ(d.device.grace_ms, 0u);
  EXPECT_EQ(d.device.timeout_ms, 0u);
  EXPECT_FALSE(d.lock_memory);

  const Plan p = make_plan({{"name", "d"},
                            {"backend", "file:/x"},
                            {"recovery", "wait"},
                            {"grace", "90s"},
                            {"timeout", "never"},
                            {"mlock", "yes"}});
  EXPECT_EQ(p.device.recovery, dblock::Recovery::kWait);
  EXPECT_EQ(p.device.grace_ms, 90'000u);
  EXPECT_EQ(p.device.timeout_ms, dblock::kTimeoutNever);
  EXPECT_TRUE(p.lock_memory);

  // "never" for the grace period is the kernel's 0: hold I/O forever.
  const Plan forever =
      make_plan({{"name", "d"}, {"backend", "file:/x"}, {"recovery", "wait"}, {"grace", "never"}});
  EXPECT_EQ(forever.device.grace_ms, 0u);
}

TEST(MakePlan, Transport) {
  EXPECT_EQ(make_plan({{"name", "d"}, {"backend", "null"}, {"size", "1G"}}).transport,
            dblock::Transport::kAuto);
  EXPECT_EQ(make_plan({{"name", "d"}, {"backend", "null"}, {"size", "1G"}, {"transport", "ublk"}})
                .transport,
            dblock::Transport::kUblk);
  EXPECT_THROW(
      make_plan({{"name", "d"}, {"backend", "null"}, {"size", "1G"}, {"transport", "loop"}}),
      std::invalid_argument);
  // ublk holds a dead server's I/O (the wait policy) with no time limit: a
  // grace period is dblock.ko's.
  const Plan ublk_wait =
      make_plan({{"name", "d"}, {"backend", "file:/x"}, {"recovery", "wait"}, {"transport", "ublk"}});
  EXPECT_EQ(ublk_wait.device.recovery, dblock::Recovery::kWait);
  EXPECT_EQ(ublk_wait.transport, dblock::Transport::kUblk);
  EXPECT_EQ(make_plan({{"name", "d"}, {"backend", "file:/x"}, {"recovery", "wait"},
                       {"grace", "never"}, {"transport", "ublk"}})
                .device.grace_ms,
            0u);
  try {
    make_plan({{"name", "d"}, {"backend", "file:/x"}, {"recovery", "wait"}, {"grace", "90s"},
               {"transport", "ublk"}});
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--transport dblock"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("grace"), std::string::npos) << e.what();
  }
  EXPECT_EQ(make_plan({{"name", "d"}, {"backend", "file:/x"}, {"recovery", "wait"},
                       {"transport", "dblock"}})
                .transport,
            dblock::Transport::kDblock);
  // ublk fails no request its server holds: a request timeout is dblock.ko's.
  EXPECT_EQ(make_plan({{"name", "d"}, {"backend", "null"}, {"size", "1G"}, {"timeout", "never"},
                       {"transport", "ublk"}})
                .device.timeout_ms,
            dblock::kTimeoutNever);
  try {
    make_plan({{"name", "d"}, {"backend", "null"}, {"size", "1G"}, {"timeout", "5s"},
               {"transport", "ublk"}});
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("(fix: --timeout never, or --transport dblock)"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(make_plan({{"name", "d"}, {"backend", "null"}, {"size", "1G"}, {"timeout", "5s"},
                       {"transport", "dblock"}})
                .device.timeout_ms,
            5'000u);
}

TEST(MakePlan, RefusesBadRecoverySettings) {
  const Settings base{{"name", "d"}, {"backend", "file:/x"}};
  const auto with = [&](std::string key, std::string value) {
    Settings s = base;
    s[std::move(key)] = std::move(value);
    return s;
  };
  EXPECT_THROW(make_plan(with("recovery", "retry")), std::invalid_argument);
  EXPECT_THROW(make_plan(with("timeout", "5 s")), std::invalid_argument);
  EXPECT_THROW(make_plan(with("mlock", "2")), std::invalid_argument);
  try {
    make_plan(with("grace", "60s"));  // without recovery wait
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("recovery wait"), std::string::npos) << e.what();
  }
  Settings bad_grace = with("recovery", "wait");
  bad_grace["grace"] = "soon";
  try {
    make_plan(bad_grace);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("grace"), std::string::npos) << e.what();
  }
}

TEST(ParseConfig, KnowsTheNewKeys) {
  const Settings s = parse_config(
      "workers=8\ndirect_io=yes\noffset=1M\nsize_limit=64M\nceph_conf=/etc/ceph/ceph.conf\n"
      "ceph_id=dblock\ncreate_size=1G\nconnect_timeout=30s\nlock_timeout=2m\nrbd_cache=no\n",
      "f");
  EXPECT_EQ(s.size(), 10u);
  EXPECT_EQ(s.at("size_limit"), "64M");
  try {
    parse_config("direct-io=true\n", "my.conf");
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    // The message lists the keys, the new ones too.
    const std::string what = e.what();
    EXPECT_NE(what.find("my.conf:1: unknown key 'direct-io'"), std::string::npos) << what;
    EXPECT_NE(what.find("direct_io"), std::string::npos) << what;
    EXPECT_NE(what.find("rbd_cache"), std::string::npos) << what;
  }
}

// packaging/systemd/example.conf shows every key, and only known ones.
TEST(ParseConfig, TheExampleConfigHasEveryKey) {
  const std::string path = std::string(DBLOCK_SOURCE_DIR) + "/packaging/systemd/example.conf";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  // "#key=value" lines are settings left at their default: uncomment them.
  std::string all, line;
  while (std::getline(in, line)) {
    const std::size_t eq = line.find('=');
    if (line.starts_with('#') && eq != std::string::npos && eq > 1 &&
        line.find_first_not_of("abcdefghijklmnopqrstuvwxyz_", 1) == eq) {
      line.erase(0, 1);
    }
    all += line + "\n";
  }
  const Settings s = parse_config(all, path);
  for (const char* key : kKeys) EXPECT_TRUE(s.contains(key)) << "example.conf lacks " << key;
}

TEST(MakePlan, Workers) {
  const Settings base{{"name", "d"}, {"backend", "file:/x"}};
  EXPECT_EQ(make_plan(base).workers, -1);
  auto with = [&](std::string value) {
    Settings s = base;
    s["workers"] = std::move(value);
    return s;
  };
  EXPECT_EQ(make_plan(with("auto")).workers, -1);
  EXPECT_EQ(make_plan(with("0")).workers, 0);
  EXPECT_EQ(make_plan(with("16")).workers, 16);
  EXPECT_EQ(make_plan(with("1024")).workers, 1024);
  expect_refused(with("-1"), "workers '-1' is not a number or auto");
  expect_refused(with("many"), "workers 'many' is not a number or auto");
  expect_refused(with(""), "is not a number or auto");
  expect_refused(with("1025"), "workers 1025 is too many (at most 1024");
  expect_refused(with("99999999999999999999"), "is too many");
  Settings ram{{"name", "d"}, {"backend", "ram"}, {"size", "1G"}, {"workers", "2"}};
  EXPECT_EQ(make_plan(ram).workers, 2);
}

TEST(MakePlan, Aio) {
  const Settings file{{"name", "d"}, {"backend", "file:/x"}};
  EXPECT_EQ(make_plan(file).aio, Aio::kAuto);
  auto with = [&](std::string value) {
    Settings s = file;
    s["aio"] = std::move(value);
    return s;
  };
  EXPECT_EQ(make_plan(with("io_uring")).aio, Aio::kIoUring);
  EXPECT_EQ(make_plan(with("threads")).aio, Aio::kThreads);
  EXPECT_EQ(make_plan(with("auto")).aio, Aio::kAuto);
  expect_refused(with("native"), "aio 'native' is not one of auto, io_uring, threads");
  Settings both = with("io_uring");
  both["workers"] = "8";
  expect_refused(both, "workers goes with aio threads");
  both["aio"] = "threads";
  EXPECT_EQ(make_plan(both).workers, 8);
  expect_refused({{"name", "d"}, {"backend", "ram"}, {"size", "1G"}, {"aio", "io_uring"}},
                 "aio goes with a file backend (file:PATH), not the ram backend");
}

TEST(MakePlan, FileOnlySettings) {
  const Plan p = make_plan({{"name", "d"},
                            {"backend", "file:/x"},
                            {"direct_io", "true"},
                            {"offset", "1M"},
                            {"size_limit", "64M"}});
  EXPECT_TRUE(p.direct_io);
  EXPECT_EQ(p.offset, 1u << 20);
  EXPECT_EQ(p.size_limit, std::optional<std::uint64_t>(64u << 20));
  const Plan d = make_plan({{"name", "d"}, {"backend", "file:/x"}});
  EXPECT_FALSE(d.direct_io);
  EXPECT_EQ(d.offset, 0u);
  EXPECT_FALSE(d.size_limit);

  expect_refused({{"name", "d"}, {"backend", "ram"}, {"size", "1G"}, {"direct_io", "true"}},
                 "direct_io goes with a file backend (file:PATH), not the ram backend");
  // Off is off, whatever the backend.
  EXPECT_FALSE(
      make_plan({{"name", "d"}, {"backend", "ram"}, {"size", "1G"}, {"direct_io", "false"}})
          .direct_io);
  expect_refused({{"name", "d"}, {"backend", "null"}, {"size", "1G"}, {"offset", "4096"}},
                 "offset goes with a file backend (file:PATH), not the null backend");
  expect_refused({{"name", "d"}, {"backend", "ram"}, {"size", "1G"}, {"size_limit", "1G"}},
                 "size_limit goes with a file backend");
  expect_refused({{"name", "d"}, {"backend", "file:/x"}, {"direct_io", "sometimes"}},
                 "direct_io 'sometimes' is not true or false");
  expect_refused({{"name", "d"}, {"backend", "file:/x"}, {"offset", "1X"}},
                 "offset '1X' is not a size");
  expect_refused({{"name", "d"}, {"backend", "file:/x"}, {"size_limit", "0"}},
                 "size_limit 0 leaves nothing to serve");
}

TEST(MakePlan, NbdUriAndConnections) {
  for (const char* uri : {"nbd://localhost/disk", "nbds://h:10810/e", "nbd+unix:///?socket=/s",
                          "nbds+unix:///x?socket=/s&tls-psk-file=/k", "nbd+vsock:///"}) {
    const Settings base{{"name", "d"}, {"backend", uri}};
    if (!kHaveNbd) {
      expect_refused(base, "without libnbd");
      continue;
    }
    const Plan p = make_plan(base);
    EXPECT_EQ(p.backend, BackendKind::kNbd) << uri;
    EXPECT_EQ(p.nbd_uri, uri);
    EXPECT_FALSE(p.size_given);  // the export's size
    EXPECT_EQ(p.nbd_connections, 0u);  // auto
  }
  if (!kHaveNbd) return;
  const Settings base{{"name", "d"}, {"backend", "nbd://h/e"}};
  Settings s = base;
  s["connections"] = "4";
  EXPECT_EQ(make_plan(s).nbd_connections, 4u);
  s["connections"] = "auto";
  EXPECT_EQ(make_plan(s).nbd_connections, 0u);
  s["connections"] = "0";
  expect_refused(s, "connections 0: give 1 to 64, or auto");
  s["connections"] = "65";
  expect_refused(s, "connections 65 is too large");
  s = base;
  s["workers"] = "4";
  expect_refused(s, "workers goes with the ram, null and file backends");
  expect_refused({{"name", "d"}, {"backend", "ram"}, {"size", "1M"}, {"connections", "2"}},
                 "connections goes with an NBD backend");
  expect_refused({{"name", "d"}, {"backend", "nbd:/h/e"}}, "is not one of ram, null");
}

TEST(MakePlan, RbdSpecAndSettings) {
  const Settings base{{"name", "d"}, {"backend", "rbd:pool/img"}};
  if (!kHaveRbd) {
    expect_refused(base, "without librbd");
  } else {
    const Plan p = make_plan(base);
    EXPECT_EQ(p.backend, BackendKind::kRbd);
    EXPECT_EQ(p.rbd.pool, "pool");
    EXPECT_EQ(p.rbd.image, "img");
    EXPECT_FALSE(p.size_given);  // the image's size
    // dblock-rbd's defaults; dblock-serve's for the device.
    EXPECT_EQ(p.rbd.client_id, "admin");
    EXPECT_EQ(p.rbd.conf_file, "");
    EXPECT_FALSE(p.rbd.create_size);
    EXPECT_EQ(p.rbd.connect_timeout_s, 15u);
    EXPECT_EQ(p.rbd.lock_timeout_s, 60u);
    EXPECT_FALSE(p.rbd.cache);
    EXPECT_EQ(p.device.recovery, dblock::Recovery::kFail);
    EXPECT_EQ(p.device.queues, 2);
    EXPECT_EQ(p.device.queue_depth, 64);
    EXPECT_EQ(p.device.max_io_bytes, 256u * 1024);

    Settings all = base;
    all["ceph_conf"] = "/etc/ceph/c.conf";
    all["ceph_id"] = "dblock";
    all["create_size"] = "10G";
    all["connect_timeout"] = "30s";
    all["lock_timeout"] = "2m";
    all["rbd_cache"] = "true";
    const Plan q = make_plan(all);
    EXPECT_EQ(q.rbd.conf_file, "/etc/ceph/c.conf");
    EXPECT_EQ(q.rbd.client_id, "dblock");
    EXPECT_EQ(q.rbd.create_size, std::optional<std::uint64_t>(10ull << 30));
    EXPECT_EQ(q.rbd.connect_timeout_s, 30u);
    EXPECT_EQ(q.rbd.lock_timeout_s, 120u);
    EXPECT_TRUE(q.rbd.cache);

    auto with = [&](std::string key, std::string value) {
      Settings s = base;
      s[std::move(key)] = std::move(value);
      return s;
    };
    expect_refused(with("connect_timeout", "15"), "connect_timeout '15' is not a whole number");
    expect_refused(with("lock_timeout", "1500ms"), "lock_timeout '1500ms' is not a whole number");
    expect_refused(with("lock_timeout", "never"), "is not a whole number of seconds");
    expect_refused(with("connect_timeout", "soon"), "is not a whole number of seconds");
    expect_refused(with("create_size", "0"), "create_size 0");
    expect_refused(with("ceph_id", ""), "ceph_id is empty");
    expect_refused(with("rbd_cache", "perhaps"), "rbd_cache 'perhaps' is not true or false");
    expect_refused(with("workers", "4"), "workers goes with the ram, null and file backends");
    expect_refused(with("direct_io", "true"), "direct_io goes with a file backend");
  }
  // The spec is checked either way.
  expect_refused({{"name", "d"}, {"backend", "rbd:pool/"}}, "backend 'rbd:pool/' names no image");
  expect_refused({{"name", "d"}, {"backend", "rbd:img"}}, "backend 'rbd:img' names no pool");
  expect_refused({{"name", "d"}, {"backend", "rbd:/img"}}, "names no pool");
  expect_refused({{"name", "d"}, {"backend", "rbd:"}}, "names no pool");
  expect_refused({{"name", "d"}, {"backend", "rbd:p/ns/img"}}, "namespaces are not supported");
  expect_refused({{"name", "d"}, {"backend", "rbd:p/img@snap"}}, "snapshots are not supported");
  // rbd settings with another backend.
  for (const char* key :
       {"ceph_conf", "ceph_id", "create_size", "connect_timeout", "lock_timeout", "rbd_cache"}) {
    expect_refused({{"name", "d"}, {"backend", "file:/x"}, {key, "1"}},
                   std::string(key) + " goes with an rbd backend (rbd:POOL/IMAGE), not the "
                                      "file:/x backend");
  }
  expect_refused({{"name", "d"}, {"backend", "disk"}, {"size", "1G"}},
                 "backend 'disk' is not one of ram, null, file:PATH, rbd:POOL/IMAGE");
}

// open_backend() with a file: the served part's size, and direct I/O's
// alignment against the block size.
class OpenFile : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dblock_serve_XXXXXX").string();
    const int fd = ::mkstemp(tmpl.data());
    ASSERT_GE(fd, 0);
    ::close(fd);
    path_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove(path_); }

  Plan plan(Settings extra) {
    extra["name"] = "d";
    extra["backend"] = "file:" + path_;
    return make_plan(extra);
  }

  std::string path_;
};

TEST_F(OpenFile, SizeIsTheServedPart) {
  std::filesystem::resize_file(path_, 64 << 20);
  Plan whole = plan({});
  OpenedBackend b = open_backend(whole);
  ASSERT_TRUE(b.sync);
  EXPECT_FALSE(b.async);
  EXPECT_EQ(whole.device.size_bytes, 64u << 20);

  Plan part = plan({{"offset", "1M"}, {"size_limit", "16M"}});
  b = open_backend(part);
  EXPECT_EQ(part.device.size_bytes, 16u << 20);
  EXPECT_EQ(b.sync->size(), 16u << 20);

  Plan tail = plan({{"offset", "60M"}});
  open_backend(tail);
  EXPECT_EQ(tail.device.size_bytes, 4u << 20);

  Plan odd = plan({{"offset", "1000"}});
  try {
    open_backend(odd);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("the part of " + path_ + " served (from offset 1000)"),
              std::string::npos)
        << e.what();
  }
  Plan beyond = plan({{"offset", "65M"}});
  EXPECT_THROW(open_backend(beyond), dblock::Error);
}

// What the kernel is told (dblockctl list's BACKEND), and the serving line's rest.
TEST_F(OpenFile, DescriptionIsTheAbsolutePathAndTheDetailsTheRest) {
  std::filesystem::resize_file(path_, 4 << 20);
  Plan p = plan({{"offset", "1M"}});
  OpenedBackend b = open_backend(p);
  EXPECT_EQ(b.description, "file:" + path_);
  EXPECT_NE(b.details.find("from byte 1048576, "), std::string::npos) << b.details;

  const std::filesystem::path cwd = std::filesystem::current_path();
  std::filesystem::current_path(std::filesystem::path(path_).parent_path());
  Settings relative{{"name", "d"},
                    {"backend", "file:./" + std::filesystem::path(path_).filename().string()}};
  Plan r = make_plan(relative);
  b = open_backend(r);
  std::filesystem::current_path(cwd);
  EXPECT_EQ(b.description, "file:" + path_) << "relative paths are made absolute";
}

TEST(OpenBackend, RamAndNullDescribeThemselves) {
  Plan ram = make_plan({{"name", "d"}, {"backend", "ram"}, {"size", "1M"}});
  EXPECT_EQ(open_backend(ram).description, "ram");
  Plan null = make_plan({{"name", "d"}, {"backend", "null"}, {"size", "1M"}});
  EXPECT_EQ(open_backend(null).description, "null");
}

TEST_F(OpenFile, DirectIoNeedsABlockSizeOfItsAlignment) {
  std::filesystem::resize_file(path_, 1 << 20);
  if (const int fd = ::open(path_.c_str(), O_RDWR | O_DIRECT); fd < 0) {
    GTEST_SKIP() << "the file system of " << path_ << " refuses O_DIRECT";
  } else {
    ::close(fd);
  }
  Plan direct = plan({{"direct_io", "on"}});
  OpenedBackend b = open_backend(direct);
  const auto& file = dynamic_cast<const dblock::FileBackend&>(*b.sync);
  EXPECT_TRUE(file.direct_io());
  EXPECT_LE(file.direct_io_alignment(), direct.device.block_size);
}

TEST(CheckDirectIoBlockSize, RefusesABlockSizeBelowTheAlignment) {
  Plan p = make_plan({{"name", "d"}, {"backend", "file:/x"}, {"direct_io", "yes"},
                      {"block_size", "512"}});
  try {
    check_direct_io_block_size(p, 4096);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(),
                 "block size 512 is smaller than the 4096 bytes O_DIRECT needs on /x (fix: "
                 "--block-size 4096, or leave out --direct-io)");
  }
  EXPECT_NO_THROW(check_direct_io_block_size(p, 512));
  p.device.block_size = 4096;
  EXPECT_NO_THROW(check_direct_io_block_size(p, 4096));
  p.direct_io = false;
  p.device.block_size = 512;
  EXPECT_NO_THROW(check_direct_io_block_size(p, 4096));  // no O_DIRECT, no constraint
}

}  // namespace
}  // namespace serve_tool
