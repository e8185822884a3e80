// Copyright (c) dblock authors.
#include "dblock/ram_backend.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "backend_internal.h"
#include "dblock/mapping.h"

namespace dblock {

namespace {

// Zeroes `length` bytes at `at`; whole pages inside are given back to the
// kernel, which then reads them as zeroes.
void zero_and_free(std::byte* at, std::size_t length) {
  static const std::uintptr_t page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto start = reinterpret_cast<std::uintptr_t>(at);
  const std::uintptr_t first = (start + page - 1) / page * page;
  const std::uintptr_t last = (start + length) / page * page;
  if (first >= last) {
    std::memset(at, 0, length);
    return;
  }
  std::memset(at, 0, first - start);
  if (::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) < 0) {
    std::memset(reinterpret_cast<void*>(first), 0, last - first);
  }
  std::memset(reinterpret_cast<void*>(last), 0, start + length - last);
}

}  // namespace

struct RamBackend::Chunk {
  Chunk() : memory(Mapping::anonymous(kChunkBytes, "a RAM backend chunk")) {}
  std::byte* data() const { return memory.bytes().data(); }

  std::mutex mu;
  Mapping memory;
};

RamBackend::RamBackend(std::uint64_t size_bytes) : size_(size_bytes) {}

std::shared_ptr<RamBackend::Chunk> RamBackend::find_chunk(std::uint64_t index, bool create) {
  {
    std::shared_lock lock(table_mu_);
    const auto it = chunks_.find(index);
    if (it != chunks_.end()) return it->second;
  }
  if (!create) return nullptr;
  std::unique_lock lock(table_mu_);
  // Another writer may have allocated it since the shared lock was dropped.
  auto& slot = chunks_[index];
  if (!slot) slot = std::make_shared<Chunk>();
  return slot;
}

void RamBackend::read(std::uint64_t offset, std::span<std::byte> out) {
  internal::check_range("read", offset, out.size(), size_.load());
  while (!out.empty()) {
    const std::size_t in_chunk = offset % kChunkBytes;
    const std::size_t n = std::min(out.size(), kChunkBytes - in_chunk);
    if (const auto chunk = find_chunk(offset / kChunkBytes, false)) {
      std::lock_guard lock(chunk->mu);
      std::memcpy(out.data(), chunk->data() + in_chunk, n);
    } else {
      std::memset(out.data(), 0, n);
    }
    offset += n;
    out = out.subspan(n);
  }
}

void RamBackend::write(std::uint64_t offset, std::span<const std::byte> data, bool /*fua*/) {
  internal::check_range("write", offset, data.size(), size_.load());
  while (!data.empty()) {
    const std::size_t in_chunk = offset % kChunkBytes;
    const std::size_t n = std::min(data.size(), kChunkBytes - in_chunk);
    const auto chunk = find_chunk(offset / kChunkBytes, true);
    {
      std::lock_guard lock(chunk->mu);
      std::memcpy(chunk->data() + in_chunk, data.data(), n);
    }
    offset += n;
    data = data.subspan(n);
  }
}

void RamBackend::zero_range(std::uint64_t offset, std::uint64_t length, bool may_free) {
  while (length > 0) {
    const std::uint64_t index = offset / kChunkBytes;
    const std::size_t in_chunk = offset % kChunkBytes;
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(length, kChunkBytes - in_chunk));
    if (may_free && n == kChunkBytes) {
      std::unique_lock lock(table_mu_);
      chunks_.erase(index);
    } else if (const auto chunk = find_chunk(index, false)) {
      std::lock_guard lock(chunk->mu);
      if (may_free) {
        zero_and_free(chunk->data() + in_chunk, n);
      } else {
        std::memset(chunk->data() + in_chunk, 0, n);
      }
    }
    offset += n;
    length -= n;
  }
}

void RamBackend::discard(std::uint64_t offset, std::uint64_t length) {
  internal::check_range("discard", offset, length, size_.load());
  zero_range(offset, length, true);
}

void RamBackend::write_zeroes(std::uint64_t offset, std::uint64_t length, bool may_unmap) {
  internal::check_range("write zeroes", offset, length, size_.load());
  zero_range(offset, length, may_unmap);
}

void RamBackend::resize(std::uint64_t new_size) {
  const std::uint64_t old = size_.exchange(new_size);
  // What a later grow exposes again must read as zeroes.
  if (new_size < old) zero_range(new_size, old - new_size, true);
}

std::uint64_t RamBackend::allocated_bytes() const {
  std::shared_lock lock(table_mu_);
  return chunks_.size() * std::uint64_t{kChunkBytes};
}

}  // namespace dblock
