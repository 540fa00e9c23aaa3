// SPDX-License-Identifier: Apache-2.0
// Outputs larger than the caches are written with non-temporal stores. That
// path must produce exactly the bits of the cached path, at any alignment of y
// (it streams only aligned vectors and reaches the alignment lane by lane),
// in place, and without touching anything outside y, on every supported
// target (the test parameter).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "bnorm/kernels.hpp"
#include "tests/target_test.h"
#include "tests/test_util.h"

namespace bnorm {
namespace {

// The whole tensor is above the streaming threshold; each 1/8 slice is below
// it and takes the cached path.
constexpr size_t kOuter = 8;

void CheckStreamingMatchesCached(const Geometry& whole, const Geometry& slice) {
  const size_t n = whole.elements();
  ASSERT_EQ(slice.elements() * kOuter, n);
  const std::vector<float> storage = test::Normal(n + 64, 3.0, 2.0, 5);
  std::vector<float> hi(whole.channels), lo(whole.channels), scale(whole.channels),
      shift(whole.channels);
  for (size_t c = 0; c < whole.channels; ++c) {
    hi[c] = 3.0f + 0.01f * static_cast<float>(c);
    lo[c] = 1e-7f * static_cast<float>(c % 7);
    scale[c] = 0.5f + 0.001f * static_cast<float>(c);
    shift[c] = -1.0f;
  }
  NormalizeParams with_lo{hi.data(), lo.data(), scale.data(), shift.data()};
  NormalizeParams without_lo{hi.data(), nullptr, scale.data(), shift.data()};
  const float* x = storage.data();
  for (size_t misalign : {0, 1, 3, 4}) {
    for (const NormalizeParams& p : {with_lo, without_lo}) {
      SCOPED_TRACE(misalign);
      std::vector<float> streamed(n + 64, -7.0f), cached(n + 64, -7.0f);
      // y 64-byte aligned plus `misalign` floats (vectors start misaligned then).
      const size_t offset =
          (64 - reinterpret_cast<uintptr_t>(streamed.data()) % 64) % 64 / sizeof(float) + misalign;
      Normalize(x, streamed.data() + offset, whole, p);
      for (size_t o = 0; o < kOuter; ++o) {
        const size_t at = o * slice.elements();
        Normalize(x + at, cached.data() + offset + at, slice, p);
      }
      ASSERT_EQ(0, std::memcmp(streamed.data(), cached.data(), streamed.size() * sizeof(float)));
    }
  }
  const NormalizeParams& p = with_lo;
  // In place: y == x.
  std::vector<float> inplace(storage.begin(), storage.begin() + n), cached(n);
  Normalize(inplace.data(), inplace.data(), whole, p);
  for (size_t o = 0; o < kOuter; ++o) {
    const size_t at = o * slice.elements();
    Normalize(x + at, cached.data() + at, slice, p);
  }
  ASSERT_EQ(0, std::memcmp(inplace.data(), cached.data(), n * sizeof(float)));
}

// A channels-first (inner > 1) or channels-last geometry of kOuter slices.
void CheckSlices(size_t channels, size_t inner) {
  const size_t rows = test::StreamingSliceRows(channels * inner * sizeof(float));
  CheckStreamingMatchesCached(Geometry::Dense(kOuter * rows, channels, inner),
                              Geometry::Dense(rows, channels, inner));
}

class Streaming : public test::TargetTest {};
BNORM_INSTANTIATE_TARGET_TEST_SUITE_P(Streaming);

TEST_P(Streaming, ChannelsLastLargeOutputMatchesTheCachedPath) { CheckSlices(96, 1); }

// Channels not a multiple of any vector width: misaligned rows keep plain stores.
TEST_P(Streaming, ChannelsLastOddChannelsMatchesTheCachedPath) { CheckSlices(100, 1); }

TEST_P(Streaming, ChannelsFirstLargeOutputMatchesTheCachedPath) {
  // Runs of 1001 values: most runs start misaligned.
  CheckSlices(64, 1001);
}

// Runs of 49 values (7x7 maps, 196 bytes) share cache lines with their
// neighbours: only the lines a run fills alone stream, the shared ones take
// plain stores; the bits are the cached path's all the same.
TEST_P(Streaming, ChannelsFirstShortRunsMatchTheCachedPath) { CheckSlices(64, 49); }

}  // namespace
}  // namespace bnorm
