// Copyright (c) dblock authors.
#include "dblock/ram_backend.h"

#include <cstring>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace dblock {
namespace {

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 31 + seed) & 0xff);
  return v;
}

bool all_zero(const std::vector<std::byte>& v) {
  for (const auto b : v) {
    if (b != std::byte{0}) return false;
  }
  return true;
}

TEST(RamBackend, UnwrittenReadsAsZerosWithoutAllocating) {
  RamBackend ram(1 << 30);
  EXPECT_EQ(ram.size(), 1u << 30);
  std::vector<std::byte> out(256 * 1024, std::byte{0xaa});
  ram.read(512 << 20, out);
  EXPECT_TRUE(all_zero(out));
  EXPECT_EQ(ram.allocated_bytes(), 0u);
}

TEST(RamBackend, AllocatesOnlyTouchedChunks) {
  RamBackend ram(1 << 30);
  const auto data = pattern(4096, 1);
  ram.write(100 * RamBackend::kChunkBytes, data, false);
  EXPECT_EQ(ram.allocated_bytes(), RamBackend::kChunkBytes);
  // The rest of the chunk, and the neighbours, stay zero.
  std::vector<std::byte> out(3 * RamBackend::kChunkBytes);
  ram.read(99 * RamBackend::kChunkBytes, out);
  const std::size_t at = RamBackend::kChunkBytes;
  EXPECT_EQ(std::memcmp(out.data() + at, data.data(), data.size()), 0);
  out.erase(out.begin() + at, out.begin() + at + data.size());
  EXPECT_TRUE(all_zero(out));
}

TEST(RamBackend, WriteAcrossChunkBoundaries) {
  RamBackend ram(16 * RamBackend::kChunkBytes);
  const std::uint64_t offset = RamBackend::kChunkBytes - 512;
  const auto data = pattern(2 * RamBackend::kChunkBytes + 1024, 7);  // spans 4 chunks
  ram.write(offset, data, true);
  EXPECT_EQ(ram.allocated_bytes(), 4 * RamBackend::kChunkBytes);
  std::vector<std::byte> out(data.size());
  ram.read(offset, out);
  EXPECT_EQ(out, data);
  // Unaligned partial read inside the span.
  std::vector<std::byte> part(1000);
  ram.read(offset + 70000, part);
  EXPECT_EQ(std::memcmp(part.data(), data.data() + 70000, part.size()), 0);
}

TEST(RamBackend, OverwriteReplaces) {
  RamBackend ram(1 << 20);
  ram.write(4096, pattern(8192, 1), false);
  const auto second = pattern(4096, 2);
  ram.write(8192, second, false);
  std::vector<std::byte> out(4096);
  ram.read(8192, out);
  EXPECT_EQ(out, second);
}

TEST(RamBackend, OutOfRangeThrowsEio) {
  RamBackend ram(1 << 20);
  std::vector<std::byte> buf(4096);
  try {
    ram.read((1 << 20) - 2048, buf);
    FAIL() << "no exception";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EIO);
  }
  EXPECT_THROW(ram.write(UINT64_MAX - 100, buf, false), std::system_error);
  EXPECT_EQ(ram.allocated_bytes(), 0u);
}

TEST(RamBackend, ConcurrentWritersOnDisjointRanges) {
  constexpr int kThreads = 8;
  constexpr std::size_t kBlock = 12 * 1024;  // not chunk-aligned: neighbours share chunks
  constexpr int kBlocksPerThread = 64;
  RamBackend ram(std::uint64_t{kThreads} * kBlocksPerThread * kBlock);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&ram, t] {
        for (int i = 0; i < kBlocksPerThread; ++i) {
          // Interleave the threads' blocks so they contend for chunks.
          const std::uint64_t block = std::uint64_t(i) * kThreads + t;
          ram.write(block * kBlock, pattern(kBlock, unsigned(block)), false);
        }
      });
    }
  }
  std::vector<std::byte> out(kBlock);
  for (std::uint64_t block = 0; block < std::uint64_t{kThreads} * kBlocksPerThread; ++block) {
    ram.read(block * kBlock, out);
    ASSERT_EQ(out, pattern(kBlock, unsigned(block))) << "block " << block;
  }
}

}  // namespace
}  // namespace dblock
