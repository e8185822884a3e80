// Copyright (c) dblock authors.
// The checks and the exception mapping every request goes through
// (libdblock/src/request.h), with a mock backend.
#include "request.h"

#include <cerrno>
#include <cstring>
#include <future>
#include <new>
#include <stdexcept>
#include <system_error>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dblock/error.h"

namespace dblock {
namespace {

using ::testing::_;
using ::testing::Return;
using ::testing::StrictMock;
using ::testing::Throw;

class MockBackend : public Backend {
 public:
  MOCK_METHOD(std::uint64_t, size, (), (const, override));
  MOCK_METHOD(void, read, (std::uint64_t, std::span<std::byte>), (override));
  MOCK_METHOD(void, write, (std::uint64_t, std::span<const std::byte>, bool), (override));
  MOCK_METHOD(void, flush, (), (override));
  MOCK_METHOD(bool, supports_flush, (), (const, override));
};

constexpr std::uint32_t kMaxIo = 64 * 1024;
constexpr std::uint16_t kDepth = 4;

class RequestTest : public ::testing::Test {
 protected:
  RequestTest() : buffer_(std::size_t{kDepth} * kMaxIo) {
    config_.name = "t";
    config_.size_bytes = 1 << 20;
    config_.block_size = 512;
    config_.max_io_bytes = kMaxIo;
    config_.queue_depth = kDepth;
    config_.flush = true;
  }

  dblock_completion handle(std::uint8_t op, std::uint16_t tag, std::uint64_t offset,
                           std::uint32_t length, std::uint32_t flags = 0) {
    const dblock_request req{tag, op, 0, flags, offset, length, /*seq=*/1000u + tag, 0};
    AsyncRequest prepared;
    dblock_completion c{};
    c.tag = req.tag;
    c.seq = req.seq;
    c.result = internal::prepare_request(req, config_, config_.size_bytes, buffer_, prepared);
    if (c.result == 0) c.result = internal::run_request(backend_, prepared);
    return c;
  }

  std::byte* slot(std::uint16_t tag) { return buffer_.data() + std::size_t{tag} * kMaxIo; }

  StrictMock<MockBackend> backend_;
  DeviceConfig config_;
  std::vector<std::byte> buffer_;
};

TEST_F(RequestTest, ReadFillsTheTagsSlot) {
  EXPECT_CALL(backend_, read(8192, _)).WillOnce([&](auto, std::span<std::byte> out) {
    EXPECT_EQ(out.data(), slot(2));
    EXPECT_EQ(out.size(), 4096u);
    std::memset(out.data(), 0x42, out.size());
  });
  const dblock_completion c = handle(DBLOCK_OP_READ, 2, 8192, 4096);
  EXPECT_EQ(c.tag, 2);
  EXPECT_EQ(c.seq, 1002u);
  EXPECT_EQ(c.result, 0);
  EXPECT_EQ(c.flags, 0);
  EXPECT_EQ(c.__reserved, 0u);
  EXPECT_EQ(slot(2)[4095], std::byte{0x42});
  EXPECT_EQ(slot(2)[4096], std::byte{0});  // nothing past the length
}

TEST_F(RequestTest, WritePassesTheSlotAndFua) {
  std::memset(slot(3), 0x17, 512);
  EXPECT_CALL(backend_, write(512, _, false))
      .WillOnce([&](auto, std::span<const std::byte> data, bool) {
        EXPECT_EQ(data.data(), slot(3));
        EXPECT_EQ(data.size(), 512u);
        EXPECT_EQ(data[511], std::byte{0x17});
      });
  EXPECT_CALL(backend_, write(0, _, true));
  EXPECT_EQ(handle(DBLOCK_OP_WRITE, 3, 512, 512).result, 0);
  EXPECT_EQ(handle(DBLOCK_OP_WRITE, 0, 0, kMaxIo, DBLOCK_REQ_FUA).result, 0);
}

TEST_F(RequestTest, FlushCallsFlush) {
  EXPECT_CALL(backend_, flush());
  const dblock_completion c = handle(DBLOCK_OP_FLUSH, 1, 0, 0);
  EXPECT_EQ(c.result, 0);
  EXPECT_EQ(c.seq, 1001u);
}

TEST_F(RequestTest, MalformedRequestsGetEioWithoutBackendCalls) {
  // StrictMock: any backend call fails the test.
  EXPECT_EQ(handle(DBLOCK_OP_READ, 0, (1 << 20) - 512, 1024).result, -EIO);  // past the end
  EXPECT_EQ(handle(DBLOCK_OP_READ, 0, 1 << 20, 512).result, -EIO);
  EXPECT_EQ(handle(DBLOCK_OP_READ, 0, UINT64_MAX - 511, 512).result, -EIO);  // wraps around
  EXPECT_EQ(handle(DBLOCK_OP_WRITE, 0, 0, kMaxIo + 512).result, -EIO);      // > max_io
  EXPECT_EQ(handle(DBLOCK_OP_READ, kDepth, 0, 512).result, -EIO);           // tag beyond depth
  EXPECT_EQ(handle(DBLOCK_OP_READ, 0, 100, 512).result, -EIO);              // unaligned offset
  EXPECT_EQ(handle(DBLOCK_OP_READ, 0, 0, 100).result, -EIO);                // unaligned length
  EXPECT_EQ(handle(7, 0, 0, 512).result, -EIO);                             // unknown op
  EXPECT_EQ(handle(DBLOCK_OP_WRITE, 0, 0, 512, 1u << 5).result, -EIO);      // unknown flag
  EXPECT_EQ(handle(DBLOCK_OP_READ, 0, 0, 512, DBLOCK_REQ_FUA).result, -EIO);  // FUA read
  EXPECT_EQ(handle(DBLOCK_OP_DISCARD, 0, 0, 512).result, -EIO);            // not declared
  EXPECT_EQ(handle(DBLOCK_OP_WRITE_ZEROES, 0, 0, 512).result, -EIO);       // not declared
  config_.flush = false;
  EXPECT_EQ(handle(DBLOCK_OP_FLUSH, 0, 0, 0).result, -EIO);                // no write cache
  EXPECT_EQ(handle(DBLOCK_OP_WRITE, 0, 0, 512, DBLOCK_REQ_FUA).result, -EIO);
}

TEST_F(RequestTest, ChecksAgainstTheSizeOfTheMoment) {
  dblock_request req{0, DBLOCK_OP_READ, 0, 0, 1 << 20, 4096, 1, 0};
  EXPECT_EQ(internal::check_request(req, config_, 1 << 20), -EIO);
  EXPECT_EQ(internal::check_request(req, config_, 2 << 20), 0);  // grown
  req.offset = 0;
  EXPECT_EQ(internal::check_request(req, config_, 2048), -EIO);  // shrunk
}

TEST_F(RequestTest, BufferSmallerThanTheSlotGetsEio) {
  buffer_.resize(std::size_t{kMaxIo} + 4096);
  EXPECT_EQ(handle(DBLOCK_OP_READ, 1, 0, 8192).result, -EIO);
  EXPECT_CALL(backend_, read(0, _));
  EXPECT_EQ(handle(DBLOCK_OP_READ, 1, 0, 4096).result, 0);
}

TEST_F(RequestTest, WriteToReadOnlyDeviceIsErofs) {
  config_.read_only = true;
  EXPECT_EQ(handle(DBLOCK_OP_WRITE, 0, 0, 512).result, -EROFS);
}

TEST_F(RequestTest, SystemErrorKeepsItsErrno) {
  EXPECT_CALL(backend_, write(_, _, _))
      .WillOnce(Throw(std::system_error(ENOSPC, std::system_category(), "full")));
  EXPECT_EQ(handle(DBLOCK_OP_WRITE, 0, 0, 512).result, -ENOSPC);
  EXPECT_CALL(backend_, read(_, _)).WillOnce(Throw(Error(EBADMSG, "read")));
  EXPECT_EQ(handle(DBLOCK_OP_READ, 0, 0, 512).result, -EBADMSG);
  EXPECT_CALL(backend_, flush())
      .WillOnce(Throw(std::system_error(std::make_error_code(std::errc::timed_out))));
  EXPECT_EQ(handle(DBLOCK_OP_FLUSH, 0, 0, 0).result, -ETIMEDOUT);
}

TEST_F(RequestTest, OtherExceptionsBecomeEio) {
  EXPECT_CALL(backend_, read(_, _))
      .WillOnce(Throw(std::runtime_error("boom")))
      .WillOnce(Throw(std::system_error(std::make_error_code(std::future_errc::no_state))))
      .WillOnce(Throw(42));
  EXPECT_EQ(handle(DBLOCK_OP_READ, 0, 0, 512).result, -EIO);
  EXPECT_EQ(handle(DBLOCK_OP_READ, 0, 0, 512).result, -EIO);  // not an errno category
  EXPECT_EQ(handle(DBLOCK_OP_READ, 0, 0, 512).result, -EIO);
  EXPECT_CALL(backend_, write(_, _, _)).WillOnce(Throw(std::bad_alloc()));
  EXPECT_EQ(handle(DBLOCK_OP_WRITE, 0, 0, 512).result, -ENOMEM);
}

}  // namespace
}  // namespace dblock
