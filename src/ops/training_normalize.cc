// SPDX-License-Identifier: Apache-2.0
// TrainingNormalize: the engine's training forward, channel-resident where it
// pays (src/ops/resident_training.h), otherwise BatchMoments then Normalize.
#include <cmath>
#include <string>

#include "bnorm/error.hpp"
#include "bnorm/kernels.hpp"
#include "dispatch/fold.h"
#include "src/ops/resident_training.h"
#include "src/parallel/partials.h"
#include "src/plan/checks.h"

namespace bnorm {
namespace {

// scale = gamma / sqrt(variance + epsilon), shift = beta, per channel.
class PlainFold : public ChannelFold {
 public:
  PlainFold(const float* gamma, const float* beta, double epsilon)
      : gamma_(gamma), beta_(beta), epsilon_(epsilon) {}
  void operator()(size_t c, double mean, double variance, float* hi, float* lo, float* scale,
                  float* shift) const override {
    SplitMean(mean, hi, lo);
    const double gamma = gamma_ == nullptr ? 1.0 : static_cast<double>(gamma_[c]);
    *scale = static_cast<float>(gamma / std::sqrt(variance + epsilon_));
    *shift = beta_ == nullptr ? 0.0f : beta_[c];
  }

 private:
  const float* gamma_;
  const float* beta_;
  double epsilon_;
};

}  // namespace

void TrainingNormalize(const void* x, void* y, DType type, const Geometry& g, const float* gamma,
                       const float* beta, double epsilon, double* mean, double* variance,
                       const Execution& exec) {
  CheckEpsilon(epsilon);
  CheckHasValues(g, "training needs");
  CheckTensorPresent("x", x, g.elements());
  CheckTensorPresent("y", y, g.elements());
  CheckAligned("x", x, type);
  CheckAligned("y", y, type);
  CheckInPlaceOrDisjoint(x, y, g.Extent() * SizeOf(type));
  CheckPerChannelPresent("mean", mean, g.channels);
  CheckPerChannelPresent("variance", variance, g.channels);
  const size_t C = g.channels;
  ChannelScratch coefficients(4 * C);
  float* hi = coefficients.get();
  float* lo = hi + C;
  float* scale = lo + C;
  float* shift = scale + C;
  const PlainFold fold(gamma, beta, epsilon);
  if (ChannelResident(type, g)) {
    ResidentTraining(x, y, type, g, fold, mean, variance, hi, lo, scale,
                     shift, exec);
    return;
  }
  BatchMoments(x, type, g, mean, variance, exec);
  // The same fold across channels at once: bitwise PlainFold's.
  dispatch::FoldTraining(mean, variance, gamma, beta, epsilon, C, hi, lo,
                         scale, shift);
  Normalize(x, y, type, g, NormalizeParams{hi, lo, scale, shift}, exec);
}

}  // namespace bnorm
