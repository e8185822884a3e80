// Copyright (c) dblock authors.
#include "dblock/ram_backend.h"

#include <unistd.h>

#include <cstring>
#include <fstream>
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

// Resident memory of this process, from /proc/self/statm.
std::uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

TEST(RamBackend, DiscardAndZeroesReadAsZeroesAndKeepTheRest) {
  constexpr std::uint64_t kChunk = RamBackend::kChunkBytes;
  RamBackend ram(8 * kChunk);
  const auto data = pattern(4 * kChunk, 3);
  ram.write(kChunk, data, false);
  EXPECT_EQ(ram.allocated_bytes(), 4 * kChunk);

  // Unaligned: the end of chunk 1, chunks 2 and 3 whole, the start of 4.
  const std::uint64_t from = 2 * kChunk - 5000, to = 4 * kChunk + 777;
  ram.discard(from, to - from);
  EXPECT_EQ(ram.allocated_bytes(), 2 * kChunk) << "the whole chunks inside are freed";
  // Zeroes that must stay allocated, inside one chunk and not page-aligned.
  ram.write_zeroes(kChunk + 100, 3000, /*may_unmap=*/false);

  std::vector<std::byte> out(data.size());
  ram.read(kChunk, out);
  auto expected = data;
  std::memset(expected.data() + (from - kChunk), 0, to - from);
  std::memset(expected.data() + 100, 0, 3000);
  EXPECT_EQ(out, expected);
}

TEST(RamBackend, ShrinkThenGrowReadsZeroesPastTheOldEnd) {
  constexpr std::uint64_t kChunk = RamBackend::kChunkBytes;
  RamBackend ram(4 * kChunk);
  ram.write(0, pattern(4 * kChunk, 9), false);
  ram.resize(kChunk + 4096);
  EXPECT_EQ(ram.allocated_bytes(), 2 * kChunk);
  ram.resize(4 * kChunk);
  std::vector<std::byte> out(3 * kChunk - 4096);
  ram.read(kChunk + 4096, out);
  EXPECT_TRUE(all_zero(out));
  std::vector<std::byte> kept(kChunk + 4096);
  ram.read(0, kept);
  EXPECT_EQ(kept, pattern(kChunk + 4096, 9));
}

// Memory follows what is written, at page granularity, not chunk size.
TEST(RamBackend, MemoryIsTakenForWrittenPagesAndGivenBackOnDiscard) {
  constexpr std::uint64_t kChunk = RamBackend::kChunkBytes;
  RamBackend ram(64 * kChunk);
  const std::uint64_t before = resident_bytes();
  // One 4 KiB block in each of 16 chunks: 16 chunks reserved, 64 KiB used.
  for (std::uint64_t c = 0; c < 16; ++c) ram.write(c * kChunk + 8192, pattern(4096, 1), false);
  EXPECT_EQ(ram.allocated_bytes(), 16 * kChunk);
  EXPECT_LT(resident_bytes() - before, 4 * kChunk) << "whole chunks were made resident";

  const std::uint64_t data_at = 32 * kChunk;
  ram.write(data_at, pattern(16 * kChunk, 2), false);
  const std::uint64_t full = resident_bytes();
  EXPECT_GE(full - before, 15 * kChunk);
  // Not chunk-aligned, so most of it is freed page by page inside chunks.
  ram.discard(data_at + kChunk / 2, 15 * kChunk);
  EXPECT_GE(full - resident_bytes(), 14 * kChunk);
}

}  // namespace
}  // namespace dblock
