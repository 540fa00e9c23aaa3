// SPDX-License-Identifier: Apache-2.0
// float16 / bfloat16 input and output of the dispatched kernels, on every
// supported target (the test parameter): widening is exact and narrowing rounds
// to nearest even for every one of the 65536 bit patterns (src/ops/half.h is the
// oracle), NaN stays NaN with its sign, Inf stays Inf, and large outputs
// (non-temporal stores) match the cached path bit for bit at any alignment.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "bnorm/dtype.hpp"
#include "bnorm/kernels.hpp"
#include "src/ops/half.h"
#include "tests/target_test.h"
#include "tests/test_util.h"

namespace bnorm {
namespace {

constexpr size_t kChannels = 16;
constexpr size_t kPatterns = 0x10000;

float Widen(DType dtype, uint16_t bits) {
  return dtype == DType::kFloat16 ? HalfToFloat(bits) : BFloat16ToFloat(bits);
}

uint16_t Narrow(DType dtype, float f) {
  return dtype == DType::kFloat16 ? FloatToHalf(f) : FloatToBFloat16(f);
}

bool IsNan(DType dtype, uint16_t bits) { return std::isnan(Widen(dtype, bits)); }

// y = x * scale on every bit pattern (both layouts, and 31 channels or runs of
// 9363 values: what is left after full vectors goes through partial vectors), against
// the oracle: the float product narrowed to nearest even. scale == 1 is the
// exact round trip (the shift is -0, so -0 stays -0).
void CheckAllPatterns(DType dtype, float scale) {
  constexpr size_t kOdd = 31;
  const std::vector<float> hi(kOdd, 0.0f), scales(kOdd, scale), shift(kOdd, -0.0f);
  const NormalizeParams params{hi.data(), nullptr, scales.data(), shift.data()};
  for (const Geometry& g :
       {Geometry::Dense(kPatterns / kChannels, kChannels, 1),
        Geometry::Dense(1, kChannels, kPatterns / kChannels),
        Geometry::Dense((kPatterns + kOdd - 1) / kOdd, kOdd, 1), Geometry::Dense(1, 7, 9363)}) {
    const size_t n = g.elements();
    std::vector<uint16_t> x(n), y(n);
    for (size_t i = 0; i < n; ++i) x[i] = static_cast<uint16_t>(i);
    Normalize(x.data(), y.data(), dtype, g, params, Execution::Serial());
    for (size_t i = 0; i < n; ++i) {
      const uint16_t in = x[i];
      if (IsNan(dtype, in)) {
        ASSERT_TRUE(IsNan(dtype, y[i])) << Name(dtype) << " input " << in;
        ASSERT_EQ(y[i] & 0x8000, in & 0x8000) << "sign of NaN " << in;
        continue;
      }
      ASSERT_EQ(y[i], Narrow(dtype, Widen(dtype, in) * scale))
          << Name(dtype) << " input 0x" << std::hex << in << " scale " << scale << " channels "
          << std::dec << g.channels;
    }
  }
}

class TypedIo : public test::TargetTest {};
BNORM_INSTANTIATE_TARGET_TEST_SUITE_P(TypedIo);

TEST_P(TypedIo, Float16RoundTripsEveryPattern) { CheckAllPatterns(DType::kFloat16, 1.0f); }

TEST_P(TypedIo, BFloat16RoundTripsEveryPattern) { CheckAllPatterns(DType::kBFloat16, 1.0f); }

// Scales whose products fall between 16-bit values, ties included, plus
// overflow to Inf and underflow into subnormals and zero.
TEST_P(TypedIo, Float16RoundsEveryPatternToNearestEven) {
  for (float scale : {1.0f + std::ldexp(1.0f, -11), 1.0f + 3 * std::ldexp(1.0f, -13), 0.3f, 7.5f,
                      std::ldexp(1.0f, -12)}) {
    CheckAllPatterns(DType::kFloat16, scale);
  }
}

TEST_P(TypedIo, BFloat16RoundsEveryPatternToNearestEven) {
  for (float scale : {1.0f + std::ldexp(1.0f, -8), 1.0f + 3 * std::ldexp(1.0f, -10), 0.3f,
                      std::ldexp(1.0f, 100)}) {
    CheckAllPatterns(DType::kBFloat16, scale);
  }
}

// The whole output streams; each 1/8 slice stays under the threshold and takes
// the cached path. Same bits at any alignment of y.
void CheckStreamingMatchesCached(DType dtype, const Geometry& whole, const Geometry& slice) {
  const size_t n = whole.elements();
  ASSERT_EQ(slice.elements() * 8, n);
  const std::vector<float> values = test::Normal(n, 3.0, 2.0, 17);
  std::vector<uint16_t> x(n);
  NarrowFromFloat(values.data(), dtype, n, x.data());
  std::vector<float> hi(whole.channels), lo(whole.channels), scale(whole.channels),
      shift(whole.channels, -1.0f);
  for (size_t c = 0; c < whole.channels; ++c) {
    hi[c] = 3.0f + 0.01f * static_cast<float>(c);
    lo[c] = 1e-7f * static_cast<float>(c % 5);
    scale[c] = 0.5f + 0.001f * static_cast<float>(c);
  }
  const NormalizeParams params{hi.data(), lo.data(), scale.data(), shift.data()};
  for (size_t misalign : {0, 1, 5}) {
    std::vector<uint16_t> streamed(n + 64, 0xABCD), cached(n + 64, 0xABCD);
    const size_t offset =
        (64 - reinterpret_cast<uintptr_t>(streamed.data()) % 64) % 64 / 2 + misalign;
    Normalize(x.data(), streamed.data() + offset, dtype, whole, params);
    for (size_t o = 0; o < 8; ++o) {
      const size_t at = o * slice.elements();
      Normalize(x.data() + at, cached.data() + offset + at, dtype, slice, params);
    }
    ASSERT_EQ(streamed, cached) << Name(dtype) << " misaligned by " << misalign;
  }
}

TEST_P(TypedIo, LargeOutputsStreamWithTheCachedBits) {
  for (DType dtype : {DType::kFloat16, DType::kBFloat16}) {
    // Rows of 96 channels; runs of 1001 values; runs of 49 (7x7 maps, one span per row).
    for (const auto& [channels, inner] :
         std::vector<std::pair<size_t, size_t>>{{96, 1}, {64, 1001}, {64, 49}}) {
      const size_t rows = test::StreamingSliceRows(channels * inner * sizeof(uint16_t));
      CheckStreamingMatchesCached(dtype, Geometry::Dense(8 * rows, channels, inner),
                                  Geometry::Dense(rows, channels, inner));
    }
  }
}

}  // namespace
}  // namespace bnorm
