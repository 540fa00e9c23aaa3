// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the C ABI tests (c_api_*_test.cc): the status check that
// also reads bnorm_last_error, 16-bit conversions of seeded data and the dtype
// mapping (seeded data and SameBits are tests/test_util.h's). The C ABI tests check what is the C
// ABI's own (statuses, null pointers, enum and rank checks, that nothing is
// written on failure); the C++ validation rules it relays are the bad-input
// matrix's (tests/bad_input.h).
#ifndef BNORM_TESTS_C_API_TEST_UTIL_H_
#define BNORM_TESTS_C_API_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "bnorm/bnorm.h"
#include "bnorm/dtype.hpp"
#include "src/ops/half.h"

namespace bnorm {
namespace test {

// A size whose products overflow size_t.
constexpr int64_t kHuge = int64_t{1} << 62;

// The status of `call`, and that the message names `needle`.
#define EXPECT_STATUS(expected, call, needle)                                                   \
  do {                                                                                          \
    const bnorm_status status_ = (call);                                                        \
    EXPECT_EQ(status_, expected) << #call << ": " << bnorm_last_error();                        \
    EXPECT_NE(std::strstr(bnorm_last_error(), needle), nullptr)                                 \
        << #call << ": the message \"" << bnorm_last_error() << "\" does not name \"" << needle \
        << "\"";                                                                                \
  } while (false)

inline std::vector<uint16_t> ToBits(const std::vector<float>& v, bnorm_dtype dtype) {
  std::vector<uint16_t> bits(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    bits[i] = dtype == BNORM_DTYPE_F16 ? FloatToHalf(v[i]) : FloatToBFloat16(v[i]);
  }
  return bits;
}

inline DType ToCpp(bnorm_dtype dtype) {
  return dtype == BNORM_DTYPE_F32   ? DType::kFloat32
         : dtype == BNORM_DTYPE_F16 ? DType::kFloat16
                                    : DType::kBFloat16;
}

}  // namespace test
}  // namespace bnorm

#endif  // BNORM_TESTS_C_API_TEST_UTIL_H_
