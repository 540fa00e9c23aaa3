// SPDX-License-Identifier: Apache-2.0
// The vectorized training fold (dispatch/fold.h) on every supported target
// (the test parameter): bitwise the scalar formulas, SplitMean for the mean
// and (float)(gamma / sqrt(variance + epsilon)) in double for the scale, for
// every channel count's tail, null gamma/beta, and extreme values (zero, tiny,
// huge and non-finite variances; means far from their float).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "bnorm/kernels.hpp"
#include "dispatch/fold.h"
#include "tests/target_test.h"
#include "tests/test_util.h"
#include "tools/common/random.h"

namespace bnorm {
namespace {

class FoldTraining : public test::TargetTest {};
BNORM_INSTANTIATE_TARGET_TEST_SUITE_P(FoldTraining);

bool SameBits(float a, float b) { return std::memcmp(&a, &b, sizeof(a)) == 0; }

TEST_P(FoldTraining, IsBitwiseTheScalarFold) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const double specials[] = {
      0.0, 1e-300, 4.9e-324, 1e300, kInf, std::numeric_limits<double>::quiet_NaN(), 1e-3, 2.5};
  testing::Random rng(17);
  for (size_t channels : {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 100}) {
    std::vector<double> mean(channels), variance(channels);
    std::vector<float> gamma(channels), beta(channels);
    for (size_t c = 0; c < channels; ++c) {
      mean[c] = rng.Normal(1e4, 1e2) + rng.Uniform() * 1e-9;
      variance[c] = c < 8 ? specials[c] : rng.Uniform(0.0, 1e3);
      gamma[c] = static_cast<float>(rng.Normal(1.0, 0.5));
      beta[c] = static_cast<float>(rng.Normal(0.0, 1.0));
    }
    mean[0] = -0.0;
    for (bool affine : {true, false}) {
      SCOPED_TRACE(std::to_string(channels) + (affine ? " channels, gamma and beta" : " channels"));
      const float* g = affine ? gamma.data() : nullptr;
      const float* b = affine ? beta.data() : nullptr;
      for (double epsilon : {1e-3, 1e-5}) {
        std::vector<float> hi(channels), lo(channels), scale(channels), shift(channels);
        dispatch::FoldTraining(mean.data(), variance.data(), g, b, epsilon, channels, hi.data(),
                               lo.data(), scale.data(), shift.data());
        for (size_t c = 0; c < channels; ++c) {
          float ehi, elo;
          SplitMean(mean[c], &ehi, &elo);
          const double gc = affine ? static_cast<double>(gamma[c]) : 1.0;
          const float escale = static_cast<float>(gc / std::sqrt(variance[c] + epsilon));
          const float eshift = affine ? beta[c] : 0.0f;
          ASSERT_TRUE(SameBits(hi[c], ehi)) << c << ": " << hi[c] << " vs " << ehi;
          ASSERT_TRUE(SameBits(lo[c], elo)) << c << ": " << lo[c] << " vs " << elo;
          ASSERT_TRUE(SameBits(scale[c], escale) || (std::isnan(scale[c]) && std::isnan(escale)))
              << c << ": " << scale[c] << " vs " << escale;
          ASSERT_TRUE(SameBits(shift[c], eshift)) << c;
        }
      }
    }
  }
}

}  // namespace
}  // namespace bnorm
