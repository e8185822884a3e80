// Copyright (c) dblock authors.
// The UAPI must have one layout for 32- and 64-bit userspace: these are the
// sizes and offsets of the x86_64 build, which the header promises for all.
#include <linux/dblock.h>

#include <cstddef>

#include <gtest/gtest.h>

namespace {

static_assert(sizeof(dblock_dev_config) == 128);
static_assert(offsetof(dblock_dev_config, size_bytes) == 32);
static_assert(offsetof(dblock_dev_config, logical_block_size) == 40);
static_assert(offsetof(dblock_dev_config, max_io_bytes) == 44);
static_assert(offsetof(dblock_dev_config, nr_queues) == 48);
static_assert(offsetof(dblock_dev_config, queue_depth) == 50);
static_assert(offsetof(dblock_dev_config, timeout_ms) == 52);
static_assert(offsetof(dblock_dev_config, flags) == 56);
static_assert(offsetof(dblock_dev_config, physical_block_size) == 64);
static_assert(offsetof(dblock_dev_config, io_opt_bytes) == 68);
static_assert(offsetof(dblock_dev_config, discard_granularity) == 72);
static_assert(offsetof(dblock_dev_config, max_discard_bytes) == 76);
static_assert(offsetof(dblock_dev_config, max_write_zeroes_bytes) == 80);
static_assert(offsetof(dblock_dev_config, grace_ms) == 84);
static_assert(offsetof(dblock_dev_config, recovery) == 88);
static_assert(offsetof(dblock_dev_config, __reserved) == 96);
static_assert(sizeof(dblock_dev_stats) == 96);
static_assert(offsetof(dblock_dev_stats, file_ios) == 72);
static_assert(sizeof(dblock_dev_info) == 280);
static_assert(offsetof(dblock_dev_info, id) == 128);
static_assert(offsetof(dblock_dev_info, state) == 132);
static_assert(offsetof(dblock_dev_info, server_pid) == 136);
static_assert(offsetof(dblock_dev_info, buffer_bytes) == 140);
static_assert(offsetof(dblock_dev_info, disk_major) == 144);
static_assert(offsetof(dblock_dev_info, disk_minor) == 148);
static_assert(offsetof(dblock_dev_info, stats) == 152);
static_assert(offsetof(dblock_dev_info, features) == 248);
static_assert(offsetof(dblock_dev_info, __reserved) == 256);
static_assert(sizeof(dblock_ctl_version) == 32);
static_assert(sizeof(dblock_ctl_create) == 408);
static_assert(sizeof(dblock_ctl_target) == 56);
static_assert(sizeof(dblock_ctl_get_info) == 336);
static_assert(sizeof(dblock_ctl_list) == 32);
static_assert(sizeof(dblock_ctl_set_params) == 112);
static_assert(offsetof(dblock_ctl_set_params, mask) == 56);
static_assert(offsetof(dblock_ctl_set_params, size_bytes) == 64);
static_assert(offsetof(dblock_ctl_set_params, grace_ms) == 72);
static_assert(offsetof(dblock_ctl_set_params, recovery) == 76);
// DBLOCK_FEAT_BACKEND_DESC: new structs; the ones above keep their sizes.
static_assert(DBLOCK_BACKEND_MAX == 128);
static_assert(sizeof(dblock_backend) == 144);
static_assert(offsetof(dblock_backend, __reserved) == 128);
static_assert(sizeof(dblock_ctl_get_backend) == 200);
static_assert(offsetof(dblock_ctl_get_backend, backend) == 56);
static_assert((DBLOCK_FEAT_SUPPORTED & DBLOCK_FEAT_BACKEND_DESC) == DBLOCK_FEAT_BACKEND_DESC);

// ABI 2: 8 reserved bytes; elements of the array are request_size apart.
static_assert(sizeof(dblock_request) == 32);
static_assert(sizeof(dblock_request) == DBLOCK_REQUEST_SIZE_MIN);
static_assert(offsetof(dblock_request, op) == 2);
static_assert(offsetof(dblock_request, flags) == 4);
static_assert(offsetof(dblock_request, offset) == 8);
static_assert(offsetof(dblock_request, length) == 16);
static_assert(offsetof(dblock_request, seq) == 20);
static_assert(offsetof(dblock_request, __reserved) == 24);
static_assert(DBLOCK_ABI_VERSION == 2);

static_assert(sizeof(dblock_completion) == 16);
static_assert(offsetof(dblock_completion, result) == 4);
static_assert(offsetof(dblock_completion, seq) == 8);

static_assert(sizeof(dblock_serve) == 64);
static_assert(offsetof(dblock_serve, nr_completions) == 16);
static_assert(offsetof(dblock_serve, max_requests) == 20);
static_assert(offsetof(dblock_serve, queue) == 24);
static_assert(offsetof(dblock_serve, request_size) == 26);
static_assert(offsetof(dblock_serve, flags) == 28);
static_assert(offsetof(dblock_serve, nr_requests) == 32);
static_assert(offsetof(dblock_serve, nr_rejected) == 36);
static_assert(offsetof(dblock_serve, status) == 40);
static_assert(offsetof(dblock_serve, buffer_ptr) == 48);
static_assert(offsetof(dblock_serve, __reserved) == 56);

// 64-bit fields must sit at 8-byte offsets, or i386 (4-byte aligned u64)
// would lay the struct out differently; the checks above pin them.
static_assert(alignof(dblock_serve) == 8);

static_assert(sizeof(dblock_commit) == 48);
static_assert(offsetof(dblock_commit, buffer_ptr) == 8);
static_assert(offsetof(dblock_commit, nr_completions) == 16);
static_assert(offsetof(dblock_commit, nr_rejected) == 20);
static_assert(offsetof(dblock_commit, queue) == 24);
static_assert(offsetof(dblock_commit, __reserved) == 32);
static_assert(alignof(dblock_commit) == 8);
static_assert(offsetof(dblock_completion, flags) == 2);
static_assert(sizeof(dblock_file) == 32);
static_assert(offsetof(dblock_file, flags) == 4);
static_assert(offsetof(dblock_file, offset) == 8);
static_assert(offsetof(dblock_file, __reserved) == 16);
static_assert(alignof(dblock_file) == 8);

TEST(UapiLayout, IoctlNumbersEncodeTheStructSizes) {
  EXPECT_EQ(_IOC_SIZE(DBLOCK_CTL_GET_VERSION), sizeof(dblock_ctl_version));
  EXPECT_EQ(_IOC_SIZE(DBLOCK_CTL_CREATE), 408u);
  EXPECT_EQ(_IOC_SIZE(DBLOCK_CTL_DESTROY), 56u);
  EXPECT_EQ(_IOC_SIZE(DBLOCK_CTL_LIST), 32u);
  EXPECT_EQ(_IOC_SIZE(DBLOCK_CTL_GET_INFO), 336u);
  EXPECT_EQ(_IOC_SIZE(DBLOCK_CTL_SET_PARAMS), 112u);
  EXPECT_EQ(_IOC_SIZE(DBLOCK_IOC_GET_INFO), 280u);
  EXPECT_EQ(_IOC_SIZE(DBLOCK_IOC_SERVE), 64u);
  EXPECT_EQ(_IOC_DIR(DBLOCK_IOC_SERVE), unsigned{_IOC_READ | _IOC_WRITE});
  EXPECT_EQ(_IOC_TYPE(DBLOCK_IOC_START), 0xDBu);
  EXPECT_EQ(_IOC_SIZE(DBLOCK_IOC_KICK), 0u);  // its argument is the queue's index
  EXPECT_EQ(_IOC_SIZE(DBLOCK_CTL_GET_BACKEND), 200u);
  EXPECT_EQ(_IOC_DIR(DBLOCK_CTL_GET_BACKEND), unsigned{_IOC_READ | _IOC_WRITE});
  EXPECT_EQ(_IOC_NR(DBLOCK_CTL_GET_BACKEND), 0x06u);
  EXPECT_EQ(_IOC_SIZE(DBLOCK_IOC_SET_BACKEND), 144u);
  EXPECT_EQ(_IOC_DIR(DBLOCK_IOC_SET_BACKEND), unsigned{_IOC_WRITE});
  EXPECT_EQ(_IOC_NR(DBLOCK_IOC_SET_BACKEND), 0x44u);
  EXPECT_EQ(_IOC_DIR(DBLOCK_IOC_KICK), unsigned{_IOC_NONE});
  EXPECT_EQ(_IOC_SIZE(DBLOCK_IOC_COMMIT), 48u);
  EXPECT_EQ(_IOC_DIR(DBLOCK_IOC_COMMIT), unsigned{_IOC_READ | _IOC_WRITE});
  EXPECT_EQ(_IOC_NR(DBLOCK_IOC_COMMIT), 0x45u);
  EXPECT_EQ(_IOC_SIZE(DBLOCK_IOC_SET_FILE), 32u);
  EXPECT_EQ(_IOC_DIR(DBLOCK_IOC_SET_FILE), unsigned{_IOC_WRITE});
  EXPECT_EQ(_IOC_NR(DBLOCK_IOC_SET_FILE), 0x46u);
}

TEST(UapiLayout, EveryIoctlNumberIsDistinct) {
  const unsigned long numbers[] = {DBLOCK_CTL_GET_VERSION, DBLOCK_CTL_CREATE,   DBLOCK_CTL_DESTROY,
                                   DBLOCK_CTL_LIST,        DBLOCK_CTL_GET_INFO, DBLOCK_CTL_SET_PARAMS,
                                   DBLOCK_IOC_GET_INFO,    DBLOCK_IOC_START,    DBLOCK_IOC_SERVE,
                                   DBLOCK_IOC_KICK,        DBLOCK_CTL_GET_BACKEND,
                                   DBLOCK_IOC_SET_BACKEND, DBLOCK_IOC_COMMIT,
                                   DBLOCK_IOC_SET_FILE};
  for (std::size_t i = 0; i < std::size(numbers); ++i) {
    for (std::size_t j = i + 1; j < std::size(numbers); ++j) EXPECT_NE(numbers[i], numbers[j]);
  }
}

}  // namespace
