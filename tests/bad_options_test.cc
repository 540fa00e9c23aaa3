// SPDX-License-Identifier: Apache-2.0
// The bad-input matrix of the layer's options and feature axes (tests/bad_input.h
// has the machinery): the constructor's checks, where nothing exists yet so only
// the message counts, and the axis checks of Build, after which the layer stays
// unbuilt and y untouched. Each rule once, with its exact message where the
// message is part of the contract.
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/error.hpp"
#include "bnorm/geometry.hpp"
#include "tests/bad_input.h"

namespace bnorm {
namespace bad_input {
namespace {

TEST_F(BadInput, MomentumOutsideUnitIntervalOrNaN) {
  Snapshot none;
  for (float m : {kNaN, -0.01f, 1.01f, kInf, -kInf}) {
    Options o;
    o.momentum = m;
    EXPECT_REJECTED(none, Names({"momentum"}), BatchNorm{o});
  }
  for (float m : {kNaN, -1.0f, 2.0f}) {
    Options o;
    o.renorm = true;
    o.renorm_momentum = m;
    EXPECT_REJECTED(none, Names({"renorm_momentum"}), BatchNorm{o});
  }
  const std::pair<float, const char*> messages[] = {
      {kNaN, "momentum is nan; expected a value in [0, 1]"},
      {-0.1f, "momentum is -0.1; expected a value in [0, 1]"},
      {1.5f, "momentum is 1.5; expected a value in [0, 1]"}};
  for (const auto& [m, message] : messages) {
    Options o;
    o.momentum = m;
    EXPECT_REJECTED_WITH_MESSAGE(none, message, BatchNorm{o});
  }
  Options renorm;
  renorm.renorm = true;
  renorm.renorm_momentum = 1.01f;
  EXPECT_REJECTED_WITH_MESSAGE(none, "renorm_momentum is 1.01; expected a value in [0, 1]",
                               BatchNorm{renorm});
  renorm.renorm_momentum = kNaN;
  EXPECT_REJECTED_WITH_MESSAGE(none, "renorm_momentum is nan; expected a value in [0, 1]",
                               BatchNorm{renorm});
  // The interval is closed.
  for (float m : {0.0f, 1.0f}) {
    Options o;
    o.momentum = m;
    EXPECT_NO_THROW(BatchNorm{o}) << m;
  }
}

TEST_F(BadInput, EpsilonNotFinitePositive) {
  Snapshot none;
  for (float e : {0.0f, -0.0f, -1e-3f, kNaN, kInf, -kInf}) {
    Options o;
    o.epsilon = e;
    EXPECT_REJECTED(none, Names({"epsilon"}), BatchNorm{o});
  }
  const std::pair<float, const char*> messages[] = {
      {0.0f, "epsilon is 0; expected a finite value > 0"},
      {-1e-3f, "epsilon is -0.001; expected a finite value > 0"},
      {kInf, "epsilon is inf; expected a finite value > 0"},
      {kNaN, "epsilon is nan; expected a finite value > 0"}};
  for (const auto& [e, message] : messages) {
    Options o;
    o.epsilon = e;
    EXPECT_REJECTED_WITH_MESSAGE(none, message, BatchNorm{o});
  }
}

// TensorFlow's testGhostBNNegativeVirtualBatch.
TEST_F(BadInput, VirtualBatchSizeZeroOrNegative) {
  Snapshot none;
  for (int64_t v : {int64_t{0}, int64_t{-1}, std::numeric_limits<int64_t>::min()}) {
    Options o;
    o.virtual_batch_size = v;
    EXPECT_REJECTED(none, Names({"virtual_batch_size"}), BatchNorm{o});
  }
  Options o;
  o.virtual_batch_size = -1;
  EXPECT_REJECTED_WITH_MESSAGE(none, "virtual_batch_size is -1; expected a value > 0",
                               BatchNorm{o});
  o.virtual_batch_size = 0;
  EXPECT_REJECTED_WITH_MESSAGE(none, "virtual_batch_size is 0; expected a value > 0", BatchNorm{o});
}

TEST_F(BadInput, EmptyAxisList) {
  Snapshot none;
  Options o;
  o.axis.clear();
  EXPECT_REJECTED_WITH_MESSAGE(none, "axis is an empty list; expected at least one axis",
                               BatchNorm{o});
}

TEST_F(BadInput, InvalidRenormClipping) {
  Snapshot none;
  EXPECT_REJECTED(none, Names({"renorm_clipping", "rmaxx"}),
                  RenormClipping::FromMap({{"rmaxx", 1.0f}}));
  EXPECT_REJECTED_WITH_MESSAGE(
      none, "renorm_clipping has the key 'dmin'; expected only 'rmax', 'rmin' and 'dmax'",
      RenormClipping::FromMap({{"rmax", 2.0f}, {"dmin", 0.0f}}));
  const auto with = [](RenormClipping c) {
    Options o;
    o.renorm = true;
    o.renorm_clipping = c;
    return o;
  };
  RenormClipping negative_dmax;
  negative_dmax.dmax = -1.0f;
  EXPECT_REJECTED_WITH_MESSAGE(
      none, "renorm_clipping['dmax'] is -1; expected a value >= 0 (d is clipped to [-dmax, dmax])",
      BatchNorm{with(negative_dmax)});
  RenormClipping crossed;
  crossed.rmin = 2.0f;
  crossed.rmax = 1.0f;
  EXPECT_REJECTED_WITH_MESSAGE(none,
                               "renorm_clipping['rmin'] is 2, above rmax 1; expected rmin <= rmax",
                               BatchNorm{with(crossed)});
  RenormClipping nan_rmax;
  nan_rmax.rmax = kNaN;
  EXPECT_REJECTED_WITH_MESSAGE(none, "renorm_clipping['rmax'] is nan; expected a number",
                               BatchNorm{with(nan_rmax)});
}

// tf-keras test_v2_fused_attribute's errors, and the ranks and axes the fused
// kernel lacks (found at build, so the layer stays unbuilt).
TEST_F(BadInput, SynchronizedGradientsWithoutSynchronized) {
  Snapshot none;
  Options o;
  o.synchronized_gradients = true;
  EXPECT_REJECTED_WITH_MESSAGE(
      none, "synchronized_gradients is set without synchronized; expected synchronized=true",
      BatchNorm{o});
}

TEST_F(BadInput, FusedWithWhatTheFusedKernelLacks) {
  Snapshot none;
  Options renorm;
  renorm.fused = Fused::kTrue;
  renorm.renorm = true;
  EXPECT_REJECTED_WITH_MESSAGE(none, "fused is kTrue together with renorm; expected renorm=false",
                               BatchNorm{renorm});
  Options synchronized;
  synchronized.fused = Fused::kTrue;
  synchronized.synchronized = true;
  EXPECT_REJECTED_WITH_MESSAGE(
      none, "fused is kTrue together with synchronized; expected synchronized=false",
      BatchNorm{synchronized});
  Options ghost;
  ghost.fused = Fused::kTrue;
  ghost.virtual_batch_size = 2;
  EXPECT_REJECTED_WITH_MESSAGE(
      none, "fused is kTrue together with virtual_batch_size 2; expected no virtual_batch_size",
      BatchNorm{ghost});
  Options adjusted;
  adjusted.fused = Fused::kTrue;
  adjusted.adjustment = [](const Shape&, float*, float*) {};
  EXPECT_REJECTED_WITH_MESSAGE(none,
                               "fused is kTrue together with an adjustment; expected no adjustment",
                               BatchNorm{adjusted});
  Options multi;
  multi.fused = Fused::kTrue;
  multi.axis = {1, 3};
  EXPECT_REJECTED_WITH_MESSAGE(
      none, "fused is kTrue with axis [1, 3]; the fused kernel needs a single axis, 1 or the last",
      BatchNorm{multi});
  Options rank2;
  rank2.fused = Fused::kTrue;
  BatchNorm layer(rank2);
  std::vector<float> x = Ramp(12), y(12, 9.0f);
  Snapshot s;
  s.Add(y, "y");
  EXPECT_REJECTED(s, Names({"fused", "rank"}), layer.Forward(x.data(), y.data(), {4, 3}, true));
  EXPECT_FALSE(layer.built());
  BatchNorm rank3(rank2);
  EXPECT_REJECTED_WITH_MESSAGE(
      none, "fused is kTrue but the input has rank 3; the fused kernel needs rank 4 or 5",
      rank3.Build({2, 4, 4}));
  EXPECT_FALSE(rank3.built());
  Options axis2 = rank2;
  axis2.axis = {2};
  BatchNorm axis2_layer(axis2);
  EXPECT_REJECTED_WITH_MESSAGE(
      none,
      "fused is kTrue but axis is [2] for an input of rank 4; the fused kernel needs axis 1 or 3",
      axis2_layer.Build({2, 4, 4, 4}));
  EXPECT_FALSE(axis2_layer.built());
}

TEST_F(BadInput, AdjustmentWithGhostBatches) {
  Snapshot none;
  Options o;
  o.virtual_batch_size = 2;
  o.adjustment = [](const Shape&, float*, float*) {};
  EXPECT_REJECTED_WITH_MESSAGE(none,
                               "adjustment is set together with virtual_batch_size 2; Keras does "
                               "not allow an adjustment with ghost batches",
                               BatchNorm{o});
}

// ---------------------------------------------------------------------------
// Axes: out of range (either sign, huge), duplicated. Found at build: the
// layer stays unbuilt and y untouched.

TEST_F(BadInput, AxesOutOfRangeOrDuplicated) {
  const std::vector<std::pair<std::vector<int>, std::string>> bad = {
      {{2}, "axis 2"},
      {{-3}, "axis -3"},
      {{5}, "axis 5"},
      {{std::numeric_limits<int>::max()}, "axis 2147483647"},
      {{std::numeric_limits<int>::min()}, "axis -2147483648"},
      {{1, -1}, "duplicated"},
      {{0, 0}, "duplicated"}};
  for (const auto& [axis, text] : bad) {
    Options o;
    o.axis = axis;
    BatchNorm layer(o);
    std::vector<float> x = Ramp(12), y(12, 9.0f);
    Snapshot s;
    s.Add(y, "y").Add(x, "x");
    EXPECT_REJECTED(s, Names({"axis", text}), layer.Forward(x.data(), y.data(), {4, 3}, true));
    EXPECT_FALSE(layer.built());
  }
  Snapshot none;
  Options four;
  four.axis = {4};
  BatchNorm four_layer(four);
  EXPECT_REJECTED_WITH_MESSAGE(none, "axis 4 is out of range for an input of rank 4 (valid: -4..3)",
                               four_layer.Build({2, 3, 4, 5}));
  EXPECT_FALSE(four_layer.built());
  Options negative;
  negative.axis = {-5};
  BatchNorm negative_layer(negative);
  EXPECT_REJECTED(none, Names({"axis -5 is out of range"}), negative_layer.Build({2, 3, 4, 5}));
  Options duplicate;
  duplicate.axis = {1, -3};
  BatchNorm duplicate_layer(duplicate);
  EXPECT_REJECTED(none, Names({"axis -3 is duplicated"}), duplicate_layer.Build({2, 3, 4, 5}));
}

// ---------------------------------------------------------------------------
// The geometry planner of the low-level API and the C ABI: PlanGeometry's
// array overload (the one planner; the vector overload and the layer call it)
// and the axis helpers. Each failure with its message and the code the C ABI
// turns into a status; nothing exists to change.

TEST_F(BadInput, GeometryPlanningFailuresCarryTheirCodes) {
  Snapshot none;
  const auto plan = [](const Shape& shape, const std::vector<int>& axes) {
    PlanGeometry(shape.data(), shape.size(), axes.data(), axes.size());
  };
  const ErrorCode invalid = ErrorCode::kInvalidArgument, unsupported = ErrorCode::kUnsupported,
                  overflow = ErrorCode::kOverflow;
  EXPECT_REJECTED_AS(none, invalid, Names({"rank is 0"}), plan({}, {-1}));
  EXPECT_REJECTED_AS(none, invalid, Names({"shape[1] is -1; expected a size >= 0"}),
                     plan({2, -1, 3}, {1}));
  EXPECT_REJECTED_AS(none, invalid, Names({"shape[1] is -1"}), plan({2, -1}, {-1}));
  EXPECT_REJECTED_AS(none, invalid, Names({"axis is an empty list"}), plan({2, 3}, {}));
  EXPECT_REJECTED_AS(none, invalid,
                     Names({"axis 4 is out of range for an input of rank 4 (valid: -4..3)"}),
                     plan({2, 3, 4, 5}, {4}));
  EXPECT_REJECTED_AS(none, invalid,
                     Names({"axis -5 is out of range for an input of rank 4 (valid: -4..3)"}),
                     plan({2, 3, 4, 5}, {-5}));
  EXPECT_REJECTED_AS(none, invalid,
                     Names({"axis 1 is out of range for an input of rank 1 (valid: -1..0)"}),
                     plan({7}, {1, 0}));
  EXPECT_REJECTED_AS(none, invalid, Names({"axis 2 is out of range"}), plan({2, 3}, {2}));
  EXPECT_REJECTED_AS(none, invalid, Names({"axis -4"}), plan({2, 3, 4}, {-4}));
  EXPECT_REJECTED_AS(none, invalid, Names({"axis -3", "duplicated"}), plan({2, 3, 4, 5}, {1, -3}));
  EXPECT_REJECTED_AS(none, invalid, Names({"duplicated"}), plan({2, 3, 4, 5}, {2, 2}));
  EXPECT_REJECTED_AS(none, unsupported, Names({"not contiguous", "axes 1 and 3"}),
                     plan({2, 3, 4, 5}, {1, 3}));
  EXPECT_REJECTED_AS(none, unsupported, Names({"not contiguous"}), plan({2, 3, 4, 5}, {0, -1}));
  EXPECT_REJECTED_AS(none, unsupported, Names({"not contiguous"}), plan({2, 3, 4}, {0, 2}));
  // Sizes whose product does not fit in size_t, within one part of the
  // geometry (outer, channels, inner) or only in their total.
  const int64_t big = int64_t{1} << 40;
  EXPECT_REJECTED_AS(none, overflow,
                     Names({"more elements than fit in size_t", std::to_string(big)}),
                     plan({big, big, 2}, {-1}));
  EXPECT_REJECTED_AS(none, overflow, Names({"more elements than fit in size_t"}),
                     plan({2, big, big}, {1, 2}));
  EXPECT_REJECTED_AS(none, overflow, Names({"more elements than fit in size_t"}),
                     plan({int64_t{1} << 32, int64_t{1} << 31, 2}, {1}));
  EXPECT_REJECTED_AS(none, overflow, Names({"shape", "size_t"}),
                     plan({int64_t{1} << 32, int64_t{1} << 32, 2}, {-1}));
  EXPECT_REJECTED(none, Names({"axis 3"}), PlanGeometry({2, 3, 4}, {3}));
  // CanonicalAxes and ParameterShape apply the same axis rules.
  EXPECT_REJECTED(none, Names({"axis 3 is out of range for an input of rank 3 (valid: -3..2)"}),
                  CanonicalAxes({3}, 3));
  EXPECT_REJECTED(none, Names({"axis 4 is out of range for an input of rank 4 (valid: -4..3)"}),
                  ParameterShape({2, 3, 4, 5}, {4}));
  EXPECT_REJECTED(none, Names({"empty"}), ParameterShape({2, 3}, {}));
  EXPECT_REJECTED(none, Names({"duplicated"}), ParameterShape({2, 3}, {0, -2}));
}

// Ghost batches split axis 0, so it cannot be a feature axis with them.
TEST_F(BadInput, GhostBatchesWithTheBatchAxisAsAFeatureAxis) {
  Options o;
  o.axis = {0, 1};
  o.virtual_batch_size = 2;
  BatchNorm layer(o);
  std::vector<float> x = Ramp(12), y(12, 9.0f);
  Snapshot s;
  s.Add(y, "y");
  EXPECT_REJECTED(s, Names({"axis", "virtual_batch_size"}),
                  layer.Forward(x.data(), y.data(), {4, 3}, true));
  Snapshot none;
  Options axis0;
  axis0.virtual_batch_size = 2;
  axis0.axis = {0};
  BatchNorm axis0_layer(axis0);
  EXPECT_REJECTED_WITH_MESSAGE(none,
                               "axis [0] includes the batch axis 0 while virtual_batch_size is 2; "
                               "ghost batches split axis 0, so it must not be a feature axis",
                               axis0_layer.Build({4, 3}));
  axis0.axis = {-2, 1};
  BatchNorm both(axis0);
  EXPECT_REJECTED(none, Names({"includes the batch axis 0"}), both.Build({4, 3}));
}

}  // namespace
}  // namespace bad_input
}  // namespace bnorm
