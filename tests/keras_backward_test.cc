// SPDX-License-Identifier: Apache-2.0
// The float64 backward oracle (keras_reference::Backward) against central finite differences of
// the float64 forward oracle, for every mode of docs/semantics.md: plain, fused, ghost batches,
// renorm (with r and d held constant by clipping, as Keras' stop_gradient holds them), adjustment,
// center/scale off, inference, trainable=false, several and non-adjacent axes, the empty batch.
// The loss is L = sum(dy * y); each gradient entry is (L(p + h) - L(p - h)) / (2h).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "src/oracle/keras_reference.h"
#include "tools/common/random.h"

namespace bnorm {
namespace {

using keras_reference::Gradients;
using keras_reference::State;

size_t Count(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t s : shape) n *= static_cast<size_t>(s);
  return n;
}

size_t Channels(const Options& options, const std::vector<int64_t>& shape) {
  size_t c = 1;
  for (int a : options.axis) c *= static_cast<size_t>(shape[a < 0 ? a + shape.size() : a]);
  return c;
}

// One forward problem: options, input, upstream gradient, the state before the call, and the
// adjustment's outputs (the adjustment callable reads them, so they can be perturbed).
struct Problem {
  Options options;
  std::vector<int64_t> shape;
  std::optional<bool> training = true;
  std::vector<float> x;
  std::vector<double> dy;
  State state;
  // The adjustment's outputs, shared with the callable in options.adjustment.
  struct AdjustmentValues {
    std::vector<double> scale, bias;
  };
  std::shared_ptr<AdjustmentValues> adjustment;

  double Loss() const {
    State s = state;
    std::vector<double> y(x.size());
    keras_reference::Forward(options, shape, x.data(), training, &s, y.data());
    double loss = 0.0;
    for (size_t i = 0; i < y.size(); ++i) loss += dy[i] * y[i];
    return loss;
  }
};

// x is drawn on a grid of 2^-12 in [-4, 4), so x +- kStep stays exact in float.
constexpr double kStep = 1.0 / 512;

Problem MakeProblem(Options options, std::vector<int64_t> shape, uint64_t seed) {
  testing::Random rng(seed);
  Problem p;
  p.shape = shape;
  const size_t n = Count(shape), channels = Channels(options, shape);
  p.x.resize(n);
  p.dy.resize(n);
  for (size_t i = 0; i < n; ++i) {
    p.x[i] = static_cast<float>(std::floor(rng.Uniform(-4.0, 4.0) * 4096.0) / 4096.0);
    p.dy[i] = rng.Normal();
  }
  p.state = keras_reference::Initial(options, channels);
  for (size_t c = 0; c < channels; ++c) {
    if (options.scale) p.state.gamma[c] = rng.Uniform(0.5, 2.0);
    if (options.center) p.state.beta[c] = rng.Uniform(-1.0, 1.0);
    p.state.moving_mean[c] = rng.Uniform(-1.0, 1.0);
    p.state.moving_variance[c] = rng.Uniform(0.5, 2.0);
  }
  p.options = std::move(options);
  return p;
}

// Gives the problem an adjustment whose outputs live in the problem (dyadic values, so that
// +- kStep stays exact when the callable rounds them to float).
void AddAdjustment(Problem* p, uint64_t seed) {
  testing::Random rng(seed);
  const size_t channels = Channels(p->options, p->shape);
  auto values = std::make_shared<Problem::AdjustmentValues>();
  values->scale.resize(channels);
  values->bias.resize(channels);
  for (size_t c = 0; c < channels; ++c) {
    values->scale[c] = std::floor(rng.Uniform(0.5, 1.5) * 256.0) / 256.0;
    values->bias[c] = std::floor(rng.Uniform(-0.5, 0.5) * 256.0) / 256.0;
  }
  p->options.adjustment = [values](const std::vector<int64_t>&, float* scale, float* bias) {
    for (size_t c = 0; c < values->scale.size(); ++c) {
      scale[c] = static_cast<float>(values->scale[c]);
      bias[c] = static_cast<float>(values->bias[c]);
    }
  };
  p->adjustment = std::move(values);
}

// Central difference of the loss in one parameter that `value` points at.
template <class T>
double Numeric(Problem* p, T* value) {
  const T saved = *value;
  *value = static_cast<T>(saved + kStep);
  const double up = p->Loss();
  *value = static_cast<T>(saved - kStep);
  const double down = p->Loss();
  *value = saved;
  return (up - down) / (2.0 * kStep);
}

// |analytic - numeric| within 1e-6 of the gradient's scale: the loss is smooth in every
// parameter, and the central difference's error is O(kStep^2) times the third derivative.
void ExpectNear(const std::vector<double>& analytic, const std::vector<double>& numeric,
                const std::string& what) {
  ASSERT_EQ(analytic.size(), numeric.size()) << what;
  double scale = 1.0;
  for (double v : numeric) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < analytic.size(); ++i) {
    EXPECT_NEAR(analytic[i], numeric[i], 1e-6 * scale) << what << "[" << i << "]";
  }
}

void ExpectMatchesFiniteDifferences(Problem p) {
  const Gradients g = keras_reference::Backward(p.options, p.shape, p.x.data(), p.dy.data(),
                                                p.training, p.state);
  std::vector<double> dx(p.x.size());
  for (size_t i = 0; i < p.x.size(); ++i) dx[i] = Numeric(&p, &p.x[i]);
  ExpectNear(g.dx, dx, "dx");

  const size_t channels = Channels(p.options, p.shape);
  std::vector<double> dgamma(channels), dbeta(channels);
  for (size_t c = 0; c < channels; ++c) {
    dgamma[c] = Numeric(&p, &p.state.gamma[c]);
    dbeta[c] = Numeric(&p, &p.state.beta[c]);
  }
  if (p.options.scale) {
    ExpectNear(g.dgamma, dgamma, "dgamma");
  } else {
    EXPECT_TRUE(g.dgamma.empty());
  }
  if (p.options.center) {
    ExpectNear(g.dbeta, dbeta, "dbeta");
  } else {
    EXPECT_TRUE(g.dbeta.empty());
  }

  const bool adjusted = p.options.adjustment && p.training.value_or(false) && p.options.trainable;
  if (adjusted) {
    std::vector<double> dscale(channels), dbias(channels);
    for (size_t c = 0; c < channels; ++c) {
      dscale[c] = Numeric(&p, &p.adjustment->scale[c]);
      dbias[c] = Numeric(&p, &p.adjustment->bias[c]);
    }
    ExpectNear(g.dadjustment_scale, dscale, "dadjustment_scale");
    ExpectNear(g.dadjustment_bias, dbias, "dadjustment_bias");
  } else {
    EXPECT_TRUE(g.dadjustment_scale.empty());
    EXPECT_TRUE(g.dadjustment_bias.empty());
  }
}

Options WithAxis(std::vector<int> axis) {
  Options o;
  o.axis = std::move(axis);
  o.epsilon = 1e-3f;
  return o;
}

TEST(KerasBackward, TrainingChannelsLastMatchesFiniteDifferences) {
  ExpectMatchesFiniteDifferences(MakeProblem(WithAxis({-1}), {7, 3}, 1));
}

TEST(KerasBackward, TrainingChannelsFirstFusedMatchesFiniteDifferences) {
  // 4-D with axis 1: the fused convention (epsilon floored at 1.001e-5).
  Options o = WithAxis({1});
  o.epsilon = 1e-6f;
  Problem p = MakeProblem(o, {2, 3, 2, 2}, 2);
  ASSERT_TRUE(keras_reference::UsesFused(p.options, 4));
  ExpectMatchesFiniteDifferences(std::move(p));
}

TEST(KerasBackward, SeveralAndNonAdjacentAxesMatchFiniteDifferences) {
  ExpectMatchesFiniteDifferences(MakeProblem(WithAxis({1, 2}), {3, 2, 2, 2}, 3));
  ExpectMatchesFiniteDifferences(MakeProblem(WithAxis({0, 2}), {2, 3, 2}, 4));
}

TEST(KerasBackward, GhostBatchesMatchFiniteDifferences) {
  // Batch 6 in ghosts of 2: G = 3 strided groups per channel, dgamma/dbeta summed over them.
  Options o = WithAxis({-1});
  o.virtual_batch_size = 2;
  ExpectMatchesFiniteDifferences(MakeProblem(o, {6, 2, 2}, 5));
}

TEST(KerasBackward, RenormWithConstantRAndDMatchesFiniteDifferences) {
  // A tiny renorm_stddev and a far renorm_mean push r and d onto their clips, where they are
  // constant in x as Keras' stop_gradient makes them: finite differences then see the same
  // function the analytic gradient differentiates, and d's term is non-zero.
  Options o = WithAxis({-1});
  o.renorm = true;
  o.renorm_clipping.rmax = 1.5f;
  o.renorm_clipping.rmin = 0.5f;
  o.renorm_clipping.dmax = 0.75f;
  Problem p = MakeProblem(o, {8, 3}, 6);
  for (size_t c = 0; c < 3; ++c) {
    p.state.renorm_stddev[c] = 1e-3;
    p.state.renorm_mean[c] = c == 1 ? 100.0 : -100.0;
  }
  ExpectMatchesFiniteDifferences(std::move(p));
}

TEST(KerasBackward, AdjustmentGradientsMatchFiniteDifferences) {
  Options o = WithAxis({-1});
  Problem p = MakeProblem(o, {5, 4}, 7);
  AddAdjustment(&p, 8);
  ExpectMatchesFiniteDifferences(std::move(p));
}

TEST(KerasBackward, AdjustmentComposesWithRenorm) {
  Options o = WithAxis({-1});
  o.renorm = true;
  o.renorm_clipping.rmax = 1.25f;
  o.renorm_clipping.dmax = 0.5f;
  Problem p = MakeProblem(o, {6, 2}, 9);
  for (size_t c = 0; c < 2; ++c) {
    p.state.renorm_stddev[c] = 1e-3;
    p.state.renorm_mean[c] = 50.0;
  }
  AddAdjustment(&p, 10);
  ExpectMatchesFiniteDifferences(std::move(p));
}

TEST(KerasBackward, CenterAndScaleOffHaveNoParameterGradients) {
  Options o = WithAxis({-1});
  o.center = false;
  o.scale = false;
  ExpectMatchesFiniteDifferences(MakeProblem(o, {6, 3}, 11));
}

TEST(KerasBackward, InferenceGradientUsesTheMovingStatistics) {
  Problem p = MakeProblem(WithAxis({-1}), {5, 3}, 12);
  p.training = std::nullopt;
  ExpectMatchesFiniteDifferences(p);
  p.training = false;
  AddAdjustment(&p, 13);  // ignored in inference
  ExpectMatchesFiniteDifferences(std::move(p));
}

TEST(KerasBackward, TrainableFalseGivesTheInferenceGradient) {
  Options o = WithAxis({1});
  o.trainable = false;
  o.virtual_batch_size = 2;  // no effect in inference
  Problem p = MakeProblem(o, {4, 3, 2}, 14);
  ExpectMatchesFiniteDifferences(p);
  Options inference = p.options;
  inference.trainable = true;
  inference.virtual_batch_size.reset();
  const Gradients frozen =
      keras_reference::Backward(p.options, p.shape, p.x.data(), p.dy.data(), true, p.state);
  const Gradients inferred =
      keras_reference::Backward(inference, p.shape, p.x.data(), p.dy.data(), false, p.state);
  EXPECT_EQ(frozen.dx, inferred.dx);
  EXPECT_EQ(frozen.dgamma, inferred.dgamma);
  EXPECT_EQ(frozen.dbeta, inferred.dbeta);
}

TEST(KerasBackward, ASingleValuePerChannelHasZeroInputGradient) {
  // n = 1: x_hat is 0 whatever x is, so dx = 0 exactly; dbeta = dy, dgamma = 0.
  Problem p = MakeProblem(WithAxis({-1}), {1, 4}, 15);
  const Gradients g = keras_reference::Backward(p.options, p.shape, p.x.data(), p.dy.data(),
                                                true, p.state);
  for (size_t c = 0; c < 4; ++c) {
    EXPECT_EQ(g.dx[c], 0.0);
    EXPECT_EQ(g.dbeta[c], p.dy[c]);
    EXPECT_EQ(g.dgamma[c], 0.0);
  }
  ExpectMatchesFiniteDifferences(std::move(p));
}

TEST(KerasBackward, EmptyBatchGivesEmptyDxAndZeroParameterGradients) {
  const Options o = WithAxis({-1});
  const State state = keras_reference::Initial(o, 3);
  const Gradients g = keras_reference::Backward(o, {0, 3}, nullptr, nullptr, true, state);
  EXPECT_TRUE(g.dx.empty());
  EXPECT_EQ(g.dgamma, std::vector<double>(3, 0.0));
  EXPECT_EQ(g.dbeta, std::vector<double>(3, 0.0));
}

}  // namespace
}  // namespace bnorm
