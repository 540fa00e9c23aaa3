// SPDX-License-Identifier: Apache-2.0
// BatchNorm::Backward beyond the math: bitwise the same serial and parallel,
// dx in place of dy (or of x), and each bad-input rule once, with dx and the
// gradients untouched by a rejected call.
#include <gtest/gtest.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/error.hpp"
#include "bnorm/execution.hpp"
#include "tests/test_util.h"

namespace bnorm {
namespace test {
namespace {

// One layer's Forward and Backward on seeded data; the gradients as vectors.
struct Gradients {
  std::vector<float> dx, dgamma, dbeta;
};

Gradients ForwardBackward(const Options& o, const Shape& shape, const Execution& exec,
                          uint32_t seed) {
  BatchNorm layer(o);
  const size_t n = Count(shape);
  const std::vector<float> x = Normal(n, 3.0, 2.0, seed), dy = Normal(n, 0.0, 1.0, seed + 1);
  std::vector<float> y(n);
  Gradients run{std::vector<float>(n), {}, {}};
  layer.Forward(x.data(), y.data(), shape, true, exec);
  layer.Backward(x.data(), dy.data(), run.dx.data(), shape, exec);
  run.dgamma = layer.gradient_gamma();
  run.dbeta = layer.gradient_beta();
  return run;
}

TEST(LayerBackwardChecks, SerialAndParallelAreBitwiseEqual) {
  Options ghosts;
  ghosts.virtual_batch_size = 4;
  Options first;
  first.axis = {1};
  Options apart;
  apart.axis = {1, 3};
  // Large enough for several blocks per channel.
  const std::vector<std::pair<Options, Shape>> cases = {{Options(), {4096, 24}},
                                                        {first, {16, 8, 4099}},
                                                        {ghosts, {64, 31, 37}},
                                                        {apart, {8, 5, 300, 3}}};
  // Three threads even on a smaller machine: blocks land on other threads.
  tbb::global_control control(tbb::global_control::max_allowed_parallelism, 3);
  tbb::task_arena arena(3);
  for (const auto& [o, shape] : cases) {
    const Gradients serial = ForwardBackward(o, shape, Execution::Serial(), 40);
    const Gradients parallel = ForwardBackward(o, shape, Execution::Parallel(&arena), 40);
    EXPECT_TRUE(SameBits(serial.dx, parallel.dx));
    EXPECT_TRUE(SameBits(serial.dgamma, parallel.dgamma));
    EXPECT_TRUE(SameBits(serial.dbeta, parallel.dbeta));
  }
}

TEST(LayerBackwardChecks, DxMayBeDyOrX) {
  Options ghosts;
  ghosts.virtual_batch_size = 3;
  Options apart;
  apart.axis = {0, 2};
  for (const Options& o : {Options(), ghosts, apart}) {
    const Shape shape{6, 7, 5};
    const size_t n = Count(shape);
    const std::vector<float> x = Normal(n, 1.0, 3.0, 41), dy = Normal(n, 0.0, 1.0, 42);
    std::vector<float> y(n), dx(n);
    BatchNorm layer(o);
    layer.Forward(x.data(), y.data(), shape, true);
    layer.Backward(x.data(), dy.data(), dx.data(), shape);
    std::vector<float> in_place = dy;
    layer.Backward(x.data(), in_place.data(), in_place.data(), shape);
    EXPECT_TRUE(SameBits(in_place, dx));
    std::vector<float> over_x = x;
    layer.Backward(over_x.data(), dy.data(), over_x.data(), shape);
    EXPECT_TRUE(SameBits(over_x, dx));
  }
}

// A rejected Backward: the code, dx untouched and the last gradients kept.
class Rejected : public ::testing::Test {
 protected:
  void SetUp() override {
    layer_.Forward(x_.data(), y_.data(), shape_, true);
    layer_.Backward(x_.data(), dy_.data(), dx_.data(), shape_);
    dgamma_ = layer_.gradient_gamma();
    dbeta_ = layer_.gradient_beta();
    dx_.assign(dx_.size() * 2, Sentinel());
  }

  template <class F>
  void ExpectRejected(ErrorCode code, const F& call) {
    try {
      call();
      ADD_FAILURE() << "not rejected";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
    }
    for (float v : dx_) ASSERT_TRUE(IsSentinel(v));
    EXPECT_TRUE(SameBits(layer_.gradient_gamma(), dgamma_));
    EXPECT_TRUE(SameBits(layer_.gradient_beta(), dbeta_));
  }

  const Shape shape_{6, 4};
  const std::vector<float> x_ = Normal(24, 0.0, 1.0, 43), dy_ = Normal(24, 0.0, 1.0, 44);
  std::vector<float> y_ = std::vector<float>(24), dx_ = std::vector<float>(24);
  std::vector<float> dgamma_, dbeta_;
  BatchNorm layer_{Options()};
};

TEST_F(Rejected, NoForwardBefore) {
  BatchNorm fresh{Options()};
  ExpectRejected(ErrorCode::kInvalidArgument,
                 [&] { fresh.Backward(x_.data(), dy_.data(), dx_.data(), shape_); });
  fresh.Build(shape_);
  ExpectRejected(ErrorCode::kInvalidArgument,
                 [&] { fresh.Backward(x_.data(), dy_.data(), dx_.data(), shape_); });
}

TEST_F(Rejected, ShapeOtherThanTheLastForwards) {
  ExpectRejected(ErrorCode::kShapeMismatch, [&] {
    layer_.Backward(x_.data(), dy_.data(), dx_.data(), {3, 4});
  });
  ExpectRejected(ErrorCode::kShapeMismatch, [&] {
    layer_.Backward(x_.data(), dy_.data(), dx_.data(), {6, 2, 2});
  });
}

TEST_F(Rejected, NullData) {
  ExpectRejected(ErrorCode::kNullPointer,
                 [&] { layer_.Backward(x_.data(), nullptr, dx_.data(), shape_); });
}

TEST_F(Rejected, DxOverlappingDyPartially) {
  std::vector<float> both(48, 0.0f);
  ExpectRejected(ErrorCode::kInvalidArgument,
                 [&] { layer_.Backward(x_.data(), both.data(), both.data() + 1, shape_); });
}

TEST_F(Rejected, DxOverlappingXPartially) {
  std::vector<float> both(48, 0.0f);
  ExpectRejected(ErrorCode::kInvalidArgument,
                 [&] { layer_.Backward(both.data() + 3, dy_.data(), both.data(), shape_); });
}

TEST_F(Rejected, OutputWithAZeroScaleCoefficient) {
  std::vector<float> gamma(4, 1.0f);
  gamma[2] = 0.0f;
  BatchNorm zero{Options()};
  zero.Build(shape_);
  zero.set_gamma(gamma);
  zero.Forward(x_.data(), y_.data(), shape_, true);
  try {
    zero.BackwardFromOutput(y_.data(), dy_.data(), dx_.data(), shape_);
    ADD_FAILURE() << "not rejected";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("channel 2"), std::string::npos) << e.what();
  }
  for (float v : dx_) ASSERT_TRUE(IsSentinel(v));
  EXPECT_TRUE(zero.gradient_gamma().empty());
}

TEST_F(Rejected, SixteenBitOverloadGivenFloat32) {
  std::vector<uint16_t> data(24);
  ExpectRejected(ErrorCode::kInvalidArgument, [&] {
    layer_.Backward(data.data(), data.data(), data.data(), DType::kFloat32, shape_);
  });
}

}  // namespace
}  // namespace test
}  // namespace bnorm
