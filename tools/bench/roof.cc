// SPDX-License-Identifier: Apache-2.0
// The roof's copies: memcpy and the widest streaming-store copy of this CPU (x86 intrinsics;
// other CPUs have memcpy only).
#include "tools/bench/roof.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BNORM_BENCH_X86 1
#else
#define BNORM_BENCH_X86 0
#endif

namespace bnorm {
namespace bench {
namespace {

void MemcpyCopy(const float* src, float* dst, size_t n) {
  std::memcpy(dst, src, n * sizeof(float));
}

#if BNORM_BENCH_X86
// Streaming stores need an aligned destination: scalar head to the alignment,
// four vectors (one cache line each on AVX-512) per trip, scalar tail.
#define BNORM_STREAM_COPY(NAME, TARGET, LANES, LOAD, STREAM)                          \
  __attribute__((target(TARGET))) void NAME(const float* src, float* dst, size_t n) { \
    size_t i = 0;                                                                     \
    while (i < n && reinterpret_cast<uintptr_t>(dst + i) % (LANES * 4) != 0) {        \
      dst[i] = src[i];                                                                \
      ++i;                                                                            \
    }                                                                                 \
    for (; i + 4 * LANES <= n; i += 4 * LANES) {                                      \
      STREAM(dst + i, LOAD(src + i));                                                 \
      STREAM(dst + i + LANES, LOAD(src + i + LANES));                                 \
      STREAM(dst + i + 2 * LANES, LOAD(src + i + 2 * LANES));                         \
      STREAM(dst + i + 3 * LANES, LOAD(src + i + 3 * LANES));                         \
    }                                                                                 \
    for (; i < n; ++i) dst[i] = src[i];                                               \
    _mm_sfence();                                                                     \
  }
BNORM_STREAM_COPY(StreamCopyAvx512, "avx512f", 16, _mm512_loadu_ps, _mm512_stream_ps)
BNORM_STREAM_COPY(StreamCopyAvx, "avx", 8, _mm256_loadu_ps, _mm256_stream_ps)
BNORM_STREAM_COPY(StreamCopySse, "sse2", 4, _mm_loadu_ps, _mm_stream_ps)
#undef BNORM_STREAM_COPY
#endif

// The widest streaming-store copy this CPU runs, or nullptr (not x86).
CopyFn StreamCopyForCpu(const char** name) {
#if BNORM_BENCH_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    *name = "avx512 stream";
    return StreamCopyAvx512;
  }
  if (__builtin_cpu_supports("avx")) {
    *name = "avx stream";
    return StreamCopyAvx;
  }
  *name = "sse stream";
  return StreamCopySse;
#else
  *name = "none";
  return nullptr;
#endif
}

}  // namespace

std::vector<Copy> RoofCopies() {
  std::vector<Copy> copies = {{MemcpyCopy, "memcpy"}};
  const char* stream_name = "";
  if (CopyFn stream = StreamCopyForCpu(&stream_name)) copies.push_back({stream, stream_name});
  return copies;
}

void ParallelCopy(CopyFn fn, const float* src, float* dst, size_t n, const Threads& threads) {
  constexpr size_t kChunk = size_t{1} << 16;  // floats; a multiple of 64 bytes
  constexpr size_t kSerialCopy = size_t{1} << 18;
  const size_t chunks = (n + kChunk - 1) / kChunk;
  const auto body = [&](size_t chunk) {
    const size_t begin = chunk * kChunk;
    fn(src + begin, dst + begin, std::min(kChunk, n - begin));
  };
  if (n < kSerialCopy) {
    for (size_t i = 0; i < chunks; ++i) body(i);
    return;
  }
  threads.ForEachChunk(chunks, body);
}

}  // namespace bench
}  // namespace bnorm
