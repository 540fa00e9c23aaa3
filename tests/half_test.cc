// SPDX-License-Identifier: Apache-2.0
// The scalar float16 and bfloat16 conversions of src/ops/half.h, the oracle of
// the 16-bit kernels: every bit pattern round-trips and float32 values round
// to nearest even, NaN staying NaN.
#include "src/ops/half.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace bnorm {
namespace {

TEST(HalfConversion, Float16RoundTripsEveryPattern) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const float f = HalfToFloat(bits);
    if ((bits & 0x7C00) == 0x7C00 && (bits & 0x3FF) != 0) {
      ASSERT_TRUE(std::isnan(f)) << h;
      const uint16_t back = FloatToHalf(f);
      ASSERT_TRUE((back & 0x7C00) == 0x7C00 && (back & 0x3FF) != 0) << h;
      ASSERT_EQ(back & 0x8000, bits & 0x8000) << h;
    } else {
      ASSERT_EQ(FloatToHalf(f), bits) << h;
    }
  }
  EXPECT_EQ(HalfToFloat(0x3C00), 1.0f);
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(HalfToFloat(0x7BFF), 65504.0f);
  EXPECT_EQ(HalfToFloat(0xFC00), -std::numeric_limits<float>::infinity());
}

TEST(HalfConversion, Float16RoundsToNearestEven) {
  // Between consecutive float16 values a < b: the midpoint goes to the even
  // one, anything nearer to a side to that side.
  for (uint16_t a = 0; a < 0x7BFF; ++a) {
    const uint16_t b = static_cast<uint16_t>(a + 1);
    const float fa = HalfToFloat(a), fb = HalfToFloat(b);
    const float mid = (fa + fb) / 2;  // exact: float has 13 more bits
    ASSERT_EQ(FloatToHalf(mid), (a & 1) ? b : a) << a;
    ASSERT_EQ(FloatToHalf(std::nextafter(mid, 0.0f)), a) << a;
    ASSERT_EQ(FloatToHalf(std::nextafter(mid, 1e9f)), b) << a;
    ASSERT_EQ(FloatToHalf(-mid), ((a & 1) ? b : a) | 0x8000) << a;
  }
  EXPECT_EQ(FloatToHalf(65519.0f), 0x7BFF);  // below the midpoint to 2^16
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7C00);  // the midpoint rounds to even: Inf
  EXPECT_EQ(FloatToHalf(1e10f), 0x7C00);
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);                        // tie to 0
  EXPECT_EQ(FloatToHalf(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);  // above it
  EXPECT_EQ(FloatToHalf(1e-30f), 0x0000);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
}

TEST(HalfConversion, BFloat16RoundTripsAndRoundsToNearestEven) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const float f = BFloat16ToFloat(bits);
    if ((bits & 0x7F80) == 0x7F80 && (bits & 0x7F) != 0) {
      ASSERT_TRUE(std::isnan(f)) << h;
      ASSERT_TRUE(std::isnan(BFloat16ToFloat(FloatToBFloat16(f)))) << h;
    } else {
      ASSERT_EQ(FloatToBFloat16(f), bits) << h;
    }
  }
  for (uint16_t a = 0; a < 0x7F7F; ++a) {
    const uint16_t b = static_cast<uint16_t>(a + 1);
    const float fa = BFloat16ToFloat(a);
    const float mid = fa + (BFloat16ToFloat(b) - fa) / 2;  // exact, and no overflow
    ASSERT_EQ(FloatToBFloat16(mid), (a & 1) ? b : a) << a;
    ASSERT_EQ(FloatToBFloat16(std::nextafter(mid, 0.0f)), a) << a;
    ASSERT_EQ(FloatToBFloat16(std::nextafter(mid, std::numeric_limits<float>::infinity())), b) << a;
  }
  EXPECT_EQ(FloatToBFloat16(std::numeric_limits<float>::max()), 0x7F80);  // rounds to Inf
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(FloatToBFloat16(nan))));
  // A NaN whose payload sits only in the low bits stays NaN (truncation
  // would make it Inf).
  float low_nan;
  const uint32_t low_nan_bits = 0x7F800001u;
  std::memcpy(&low_nan, &low_nan_bits, 4);
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(FloatToBFloat16(low_nan))));
}

}  // namespace
}  // namespace bnorm
