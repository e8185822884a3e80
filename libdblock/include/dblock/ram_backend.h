// Copyright (c) dblock authors.
#ifndef DBLOCK_RAM_BACKEND_H_
#define DBLOCK_RAM_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "dblock/backend.h"

namespace dblock {

// A sparse in-memory disk: memory is allocated in kChunkBytes chunks on the
// first write to them, and never-written ranges read as zeros.
// Thread-safety: fully thread-safe; the chunk table is behind a shared
// mutex and each chunk has its own lock, so I/O to different chunks runs in
// parallel.
class RamBackend final : public Backend {
 public:
  static constexpr std::size_t kChunkBytes = 64 * 1024;

  explicit RamBackend(std::uint64_t size_bytes);

  std::uint64_t size() const override { return size_; }
  void read(std::uint64_t offset, std::span<std::byte> out) override;
  void write(std::uint64_t offset, std::span<const std::byte> data, bool fua) override;
  void flush() override {}
  // Memory has nothing to flush, but accepting flushes lets the sample
  // exercise that path of the protocol.
  bool supports_flush() const override { return true; }

  std::uint64_t allocated_bytes() const;

 private:
  struct Chunk {
    std::mutex mu;
    std::byte data[kChunkBytes]{};
  };

  Chunk* find_chunk(std::uint64_t index, bool create);

  const std::uint64_t size_;
  mutable std::shared_mutex table_mu_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Chunk>> chunks_;
};

}  // namespace dblock

#endif  // DBLOCK_RAM_BACKEND_H_
