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

// Walks the cache lines of a channels-first block one prefetch at a time: a
// pass that works from cache (the channel-resident normalize) brings the next
// block into L2 meanwhile, so memory does not idle (prefetcht1: L2, where the
// next pass reads it, without evicting the L1 lines in use).
class LineCursor {
 public:
  LineCursor(const void* x, size_t channels, size_t channel_stride_bytes, size_t runs,
             size_t run_bytes, size_t stride_bytes)
      : base_(static_cast<const char*>(x)),
        channels_(channels),
        channel_stride_(channel_stride_bytes),
        runs_(runs),
        run_bytes_(run_bytes),
        stride_(stride_bytes),
        done_(x == nullptr || channels == 0 || runs == 0 || run_bytes == 0) {}

  HWY_INLINE void Next() {
    if (done_) return;
    __builtin_prefetch(base_ + channel_ * channel_stride_ + run_ * stride_ + offset_, 0, 2);
    offset_ += kCacheLine;
    if (offset_ < run_bytes_) return;
    offset_ = 0;
    if (++run_ < runs_) return;
    run_ = 0;
    done_ = ++channel_ == channels_;
  }

 private:
  const char* base_;
  size_t channels_, channel_stride_, runs_, run_bytes_, stride_;
  size_t channel_ = 0, run_ = 0, offset_ = 0;
  bool done_;
};

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_DISPATCH_PREFETCH_INL_H_
