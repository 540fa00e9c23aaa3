// SPDX-License-Identifier: Apache-2.0
// TrainingBackward: the engine's backward of a plain training forward,
// channel-resident where it pays (src/ops/resident_backward.h), otherwise
// BackwardReduce then BackwardData.
#include <cmath>
#include <string>

#include "bnorm/backward.hpp"
#include "bnorm/error.hpp"
#include "src/ops/resident_backward.h"
#include "src/parallel/partials.h"
#include "src/plan/checks.h"

namespace bnorm {
namespace {

// k = γ·ρ, a = S1/n, b = ρ²·S2/n.
class PlainConstants : public ChannelConstants {
 public:
  PlainConstants(const double* variance, const float* gamma, double epsilon, double n)
      : variance_(variance), gamma_(gamma), epsilon_(epsilon), n_(n) {}
  void operator()(size_t c, double s1, double s2, float* k, float* a, float* b) const override {
    const double rho = 1.0 / std::sqrt(variance_[c] + epsilon_);
    const double gamma = gamma_ == nullptr ? 1.0 : static_cast<double>(gamma_[c]);
    *k = static_cast<float>(gamma * rho);
    *a = static_cast<float>(s1 / n_);
    *b = static_cast<float>(rho * rho * s2 / n_);
  }

 private:
  const double* variance_;
  const float* gamma_;
  double epsilon_, n_;
};

}  // namespace

void TrainingBackward(const void* x, const void* dy, void* dx, DType type, const Geometry& g,
                      const float* mean_hi, const float* mean_lo, const double* variance,
                      const float* gamma, double epsilon, double* sum_dy, double* sum_dy_xmu,
                      const Execution& exec) {
  CheckEpsilon(epsilon);
  CheckHasValues(g, "the backward needs");
  CheckTensorPresent("x", x, g.elements());
  CheckTensorPresent("dy", dy, g.elements());
  CheckTensorPresent("dx", dx, g.elements());
  CheckAligned("x", x, type);
  CheckAligned("dy", dy, type);
  CheckAligned("dx", dx, type);
  const size_t bytes = g.Extent() * SizeOf(type);
  CheckInPlaceOrDisjoint("dy", dy, "dx", dx, bytes);
  CheckInPlaceOrDisjoint("x", x, "dx", dx, bytes);
  CheckPerChannelPresent("mean_hi", mean_hi, g.channels);
  CheckPerChannelPresent("mean_lo", mean_lo, g.channels);
  CheckPerChannelPresent("variance", variance, g.channels);
  CheckPerChannelPresent("sum_dy", sum_dy, g.channels);
  CheckPerChannelPresent("sum_dy_xmu", sum_dy_xmu, g.channels);
  for (size_t c = 0; c < g.channels; ++c) {
    if (!(variance[c] >= 0.0)) {
      throw Error(ErrorCode::kInvalidArgument, "variance[" + std::to_string(c) + "] is " +
                                                   std::to_string(variance[c]) +
                                                   "; expected a batch variance >= 0");
    }
  }
  const size_t C = g.channels;
  ChannelScratch coefficients(3 * C);
  float* k = coefficients.get();
  float* a = k + C;
  float* b = a + C;
  const PlainConstants constants(variance, gamma, epsilon, static_cast<double>(g.reduced()));
  BackwardReduceParams reduce;
  reduce.mean_hi = mean_hi;
  reduce.mean_lo = mean_lo;
  if (ChannelResidentBackward(type, g)) {
    ResidentBackward(x, dy, dx, type, g, reduce, constants, sum_dy, sum_dy_xmu, k, a,
                     b, exec);
    return;
  }
  BackwardReduce(x, dy, type, g, reduce, sum_dy, sum_dy_xmu, exec);
  for (size_t c = 0; c < C; ++c) constants(c, sum_dy[c], sum_dy_xmu[c], &k[c], &a[c], &b[c]);
  BackwardDataParams data;
  data.mean_hi = mean_hi;
  data.mean_lo = mean_lo;
  data.k = k;
  data.a = a;
  data.b = b;
  BackwardData(x, dy, dx, type, g, data, exec);
}

}  // namespace bnorm
