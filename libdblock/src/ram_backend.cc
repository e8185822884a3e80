// Copyright (c) dblock authors.
#include "dblock/ram_backend.h"

#include <algorithm>
#include <cstring>

#include "backend_internal.h"

namespace dblock {

RamBackend::RamBackend(std::uint64_t size_bytes) : size_(size_bytes) {}

RamBackend::Chunk* RamBackend::find_chunk(std::uint64_t index, bool create) {
  {
    std::shared_lock lock(table_mu_);
    const auto it = chunks_.find(index);
    if (it != chunks_.end()) return it->second.get();
  }
  if (!create) return nullptr;
  std::unique_lock lock(table_mu_);
  // Another writer may have allocated it since the shared lock was dropped.
  auto& slot = chunks_[index];
  if (!slot) slot = std::make_unique<Chunk>();
  return slot.get();
}

void RamBackend::read(std::uint64_t offset, std::span<std::byte> out) {
  internal::check_range("read", offset, out.size(), size_);
  while (!out.empty()) {
    const std::size_t in_chunk = offset % kChunkBytes;
    const std::size_t n = std::min(out.size(), kChunkBytes - in_chunk);
    // Chunks are never freed, so the pointer stays valid without the table lock.
    if (Chunk* chunk = find_chunk(offset / kChunkBytes, false)) {
      std::lock_guard lock(chunk->mu);
      std::memcpy(out.data(), chunk->data + in_chunk, n);
    } else {
      std::memset(out.data(), 0, n);
    }
    offset += n;
    out = out.subspan(n);
  }
}

void RamBackend::write(std::uint64_t offset, std::span<const std::byte> data, bool /*fua*/) {
  internal::check_range("write", offset, data.size(), size_);
  while (!data.empty()) {
    const std::size_t in_chunk = offset % kChunkBytes;
    const std::size_t n = std::min(data.size(), kChunkBytes - in_chunk);
    Chunk* chunk = find_chunk(offset / kChunkBytes, true);
    {
      std::lock_guard lock(chunk->mu);
      std::memcpy(chunk->data + in_chunk, data.data(), n);
    }
    offset += n;
    data = data.subspan(n);
  }
}

std::uint64_t RamBackend::allocated_bytes() const {
  std::shared_lock lock(table_mu_);
  return chunks_.size() * std::uint64_t{kChunkBytes};
}

}  // namespace dblock
