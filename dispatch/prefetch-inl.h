// SPDX-License-Identifier: Apache-2.0
// Software prefetch for the kernels: whole cache lines of the next chunk for
// the two-pass reductions, and a fixed distance ahead for the streaming passes.
// Compiled once per target (toggling include guard).

#if defined(BNORM_DISPATCH_PREFETCH_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BNORM_DISPATCH_PREFETCH_INL_H_
#undef BNORM_DISPATCH_PREFETCH_INL_H_
#else
#define BNORM_DISPATCH_PREFETCH_INL_H_
#endif

#include <stddef.h>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {

// Bytes per cache line, the unit of software prefetch (64 on current x86 and
// Arm server cores; a wrong guess costs only duplicate or missing prefetches).
constexpr size_t kCacheLine = 64;

// Prefetches the cache lines of `bytes` bytes from p (pass 2 of the moments
// kernels works from L1 and would otherwise leave memory idle).
HWY_INLINE void PrefetchLines(const void* p, size_t bytes) {
  const char* line = static_cast<const char*>(p);
  for (size_t offset = 0; offset < bytes; offset += kCacheLine) __builtin_prefetch(line + offset);
}

// How far ahead of its loads a streaming normalize prefetches x. Streaming
// means an output beyond the caches, so x comes from memory too, and one core
// reads memory faster with software prefetch than with the hardware
// prefetchers alone (103 MB channels-last, one thread: 10.6-10.9 -> 8.9-9.9 ms
// at 8 KiB; 4 KiB gained less). Prefetching past the end of a block only
// warms data that another call reads.
constexpr size_t kPrefetchBytes = 8192;

template <class Raw>
HWY_INLINE void PrefetchAhead(const Raw* p) {
  __builtin_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes);
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_DISPATCH_PREFETCH_INL_H_
