// Copyright (c) dblock authors.
#ifndef DBLOCK_RAM_BACKEND_H_
#define DBLOCK_RAM_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <atomic>
#include <shared_mutex>
#include <unordered_map>

#include "dblock/backend.h"

namespace dblock {

// A sparse in-memory disk: address space is reserved in kChunkBytes chunks
// on the first write to them, memory only for the pages written; ranges
// never written read as zeros.  Chunks are large so that a request of up to
// kChunkBytes is one copy; discards and unmapping zeroes give whole pages
// back (madvise) and drop whole chunks.
// Thread-safety: fully thread-safe; the chunk table is behind a shared
// mutex and each chunk has its own lock, so I/O to different chunks runs in
// parallel.
class RamBackend final : public Backend {
 public:
  static constexpr std::size_t kChunkBytes = 1024 * 1024;

  explicit RamBackend(std::uint64_t size_bytes);

  std::uint64_t size() const override { return size_.load(); }
  void read(std::uint64_t offset, std::span<std::byte> out) override;
  void write(std::uint64_t offset, std::span<const std::byte> data, bool fua) override;
  void flush() override {}
  // Memory has nothing to flush, but accepting flushes lets the sample
  // exercise that path of the protocol.
  bool supports_flush() const override { return true; }
  // Discarded and zeroed chunks that are wholly covered are freed.
  void discard(std::uint64_t offset, std::uint64_t length) override;
  void write_zeroes(std::uint64_t offset, std::uint64_t length, bool may_unmap) override;
  bool supports_discard() const override { return true; }
  bool supports_write_zeroes() const override { return true; }
  bool may_block() const override { return false; }
  // Growing costs nothing until written; shrinking frees what is cut off.
  void resize(std::uint64_t new_size) override;

  std::uint64_t allocated_bytes() const;

 private:
  struct Chunk;  // ram_backend.cc

  // A chunk stays alive while a reader or writer holds it, even if a
  // concurrent discard drops it from the table.
  std::shared_ptr<Chunk> find_chunk(std::uint64_t index, bool create);
  // Zeroes [offset, offset + length), freeing whole chunks and pages if
  // may_free.
  void zero_range(std::uint64_t offset, std::uint64_t length, bool may_free);
  std::atomic<std::uint64_t> size_;
  mutable std::shared_mutex table_mu_;
  std::unordered_map<std::uint64_t, std::shared_ptr<Chunk>> chunks_;
};

}  // namespace dblock

#endif  // DBLOCK_RAM_BACKEND_H_
