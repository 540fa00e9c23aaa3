// SPDX-License-Identifier: Apache-2.0
// The tools' tensor buffers: 64-byte aligned, like a framework's tensor allocation, so that an
// offset of one element misaligns a pointer for every vector width.
#ifndef BNORM_TOOLS_COMMON_BUFFER_H_
#define BNORM_TOOLS_COMMON_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

namespace bnorm {
namespace testing {

struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<uint8_t[], FreeDeleter>;

// At least `bytes` bytes (at least 64: aligned_alloc wants a non-zero multiple of the
// alignment) at a 64-byte boundary; std::bad_alloc when there is no memory.
inline AlignedBuffer AllocateAligned(size_t bytes) {
  void* p = std::aligned_alloc(64, bytes == 0 ? 64 : (bytes + 63) / 64 * 64);
  if (p == nullptr) throw std::bad_alloc();
  return AlignedBuffer(static_cast<uint8_t*>(p));
}

}  // namespace testing
}  // namespace bnorm

#endif  // BNORM_TOOLS_COMMON_BUFFER_H_
