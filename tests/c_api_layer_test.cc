// SPDX-License-Identifier: Apache-2.0
// The C ABI's layer handle (bnorm.h): options and their Keras defaults,
// create, build, forward and the state getters and setters. Every success path
// equals bnorm::BatchNorm bit for bit; every rejected call is a status with a
// message naming the argument, after which y and the layer's state are
// byte-identical to before.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/bnorm.h"
#include "tests/c_api_test_util.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {
namespace {

// An owned layer handle.
struct Layer {
  explicit Layer(const bnorm_options& options) {
    EXPECT_EQ(bnorm_layer_create(&options, &handle), BNORM_STATUS_OK) << bnorm_last_error();
  }
  Layer() {
    bnorm_options options;
    bnorm_options_init(&options);
    EXPECT_EQ(bnorm_layer_create(&options, &handle), BNORM_STATUS_OK) << bnorm_last_error();
  }
  ~Layer() { bnorm_layer_destroy(handle); }
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;
  bnorm_layer* handle = nullptr;
};

// Every variable a built layer has, in bnorm_state order, as bytes.
std::vector<std::vector<float>> Snapshot(const bnorm_layer* layer) {
  std::vector<std::vector<float>> state;
  size_t channels = 0;
  if (bnorm_layer_channels(layer, &channels) != BNORM_STATUS_OK) return state;
  for (int which = BNORM_STATE_GAMMA; which <= BNORM_STATE_RENORM_STDDEV; ++which) {
    std::vector<float> values(channels);
    if (bnorm_layer_get_state(layer, static_cast<bnorm_state>(which), values.data(), channels) !=
        BNORM_STATUS_OK) {
      values.clear();
    }
    state.push_back(values);
  }
  return state;
}

// ---- Options and layer handles ---------------------------------------------

TEST(CApi, OptionsInitGivesKerasDefaults) {
  bnorm_options o;
  std::memset(&o, 0x5a, sizeof(o));
  ASSERT_EQ(bnorm_options_init(&o), BNORM_STATUS_OK);
  EXPECT_EQ(o.num_axes, 1u);
  EXPECT_EQ(o.axes[0], -1);
  EXPECT_EQ(o.momentum, 0.99f);
  EXPECT_EQ(o.epsilon, 1e-3f);
  EXPECT_EQ(o.center, 1);
  EXPECT_EQ(o.scale, 1);
  EXPECT_EQ(o.beta_initializer, 0.0f);
  EXPECT_EQ(o.gamma_initializer, 1.0f);
  EXPECT_EQ(o.moving_mean_initializer, 0.0f);
  EXPECT_EQ(o.moving_variance_initializer, 1.0f);
  EXPECT_EQ(o.renorm, 0);
  EXPECT_EQ(o.has_rmax, 0);
  EXPECT_EQ(o.has_rmin, 0);
  EXPECT_EQ(o.has_dmax, 0);
  EXPECT_EQ(o.renorm_momentum, 0.99f);
  EXPECT_EQ(o.fused, BNORM_FUSED_AUTO);
  EXPECT_EQ(o.trainable, 1);
  EXPECT_EQ(o.virtual_batch_size, 0);
}

TEST(CApi, LayerCreateRejectsBadOptions) {
  bnorm_options options;
  ASSERT_EQ(bnorm_options_init(&options), BNORM_STATUS_OK);
  bnorm_layer* const sentinel = reinterpret_cast<bnorm_layer*>(0x1234);
  bnorm_layer* layer = sentinel;
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_layer_create(nullptr, &layer), "options is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_layer_create(&options, nullptr), "layer is null");

  // The C ABI's own checks of the struct.
  bnorm_options bad = options;
  bad.num_axes = 9;
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_layer_create(&bad, &layer), "num_axes is 9");
  bad = options;
  bad.fused = static_cast<bnorm_fused>(7);
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_layer_create(&bad, &layer), "fused is 7");
  // A rule of the C++ options (all of them are in bad_options_test.cc) comes
  // back as its status and message.
  bad = options;
  bad.momentum = 1.5f;
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_layer_create(&bad, &layer), "momentum");
  EXPECT_EQ(layer, sentinel);
}

TEST(CApi, LayerDestroyAcceptsNull) { bnorm_layer_destroy(nullptr); }

TEST(CApi, LayerBuildsAndReportsItsChannels) {
  bnorm_options options;
  ASSERT_EQ(bnorm_options_init(&options), BNORM_STATUS_OK);
  options.axes[0] = 1;
  options.axes[1] = 2;
  options.num_axes = 2;
  Layer layer(options);
  size_t channels = 99;
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_layer_channels(layer.handle, &channels),
                "not built");
  EXPECT_EQ(channels, 99u);
  const int64_t shape[] = {2, 3, 4, 5};
  ASSERT_EQ(bnorm_layer_build(layer.handle, shape, 4), BNORM_STATUS_OK) << bnorm_last_error();
  ASSERT_EQ(bnorm_layer_channels(layer.handle, &channels), BNORM_STATUS_OK);
  EXPECT_EQ(channels, 12u);
  // Building again with a compatible shape (another batch size) is a check.
  const int64_t other_batch[] = {7, 3, 4, 9};
  EXPECT_EQ(bnorm_layer_build(layer.handle, other_batch, 4), BNORM_STATUS_OK);
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_layer_channels(nullptr, &channels),
                "layer is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_layer_channels(layer.handle, nullptr),
                "channels is null");
}

TEST(CApi, LayerBuildRejectsBadShapes) {
  Layer layer;
  const int64_t shape[9] = {2, 3, 4, 5, 1, 1, 1, 1, 1};
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_layer_build(nullptr, shape, 4), "layer is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_layer_build(layer.handle, nullptr, 4),
                "shape is null");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_layer_build(layer.handle, shape, 0),
                "rank is 0");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_layer_build(layer.handle, shape, 9),
                "rank is 9");
  // The C++ shape rules (bad_input_test.cc) come back with their status.
  const int64_t huge[] = {kHuge, kHuge, 5};
  EXPECT_STATUS(BNORM_STATUS_OVERFLOW, bnorm_layer_build(layer.handle, huge, 3), "size_t");
  size_t channels = 0;
  EXPECT_EQ(bnorm_layer_channels(layer.handle, &channels), BNORM_STATUS_INVALID_ARGUMENT);

  ASSERT_EQ(bnorm_layer_build(layer.handle, shape, 4), BNORM_STATUS_OK);
  const int64_t other_rank[] = {2, 3, 5};
  EXPECT_STATUS(BNORM_STATUS_SHAPE_MISMATCH, bnorm_layer_build(layer.handle, other_rank, 3),
                "built for rank 4");
}

// ---- Layer forward ----------------------------------------------------------

struct ForwardCase {
  bnorm_dtype dtype;
  int axis;  // channels-last (-1) or channels-first (1)
};

class CApiForward : public ::testing::TestWithParam<ForwardCase> {};

// Training, then inference, then unset training, against bnorm::BatchNorm on
// the same data: outputs and every variable bitwise equal.
TEST_P(CApiForward, EqualsTheCppLayerBitwise) {
  const ForwardCase param = GetParam();
  const std::vector<int64_t> shape{4, 6, 5, 7};
  const size_t n = 4 * 6 * 5 * 7;
  bnorm_options c_options;
  ASSERT_EQ(bnorm_options_init(&c_options), BNORM_STATUS_OK);
  c_options.axes[0] = param.axis;
  c_options.momentum = 0.75f;
  c_options.renorm = 1;
  c_options.has_rmax = 1;
  c_options.rmax = 1.5f;
  c_options.virtual_batch_size = 2;
  c_options.fused = BNORM_FUSED_FALSE;
  Options cpp_options;
  cpp_options.axis = {param.axis};
  cpp_options.momentum = 0.75f;
  cpp_options.renorm = true;
  cpp_options.renorm_clipping.rmax = 1.5f;
  cpp_options.virtual_batch_size = 2;
  cpp_options.fused = Fused::kFalse;
  Layer c_layer(c_options);
  BatchNorm cpp_layer(cpp_options);

  const size_t size = param.dtype == BNORM_DTYPE_F32 ? 4 : 2;
  for (int call = 0; call < 3; ++call) {
    const int training = call == 0 ? 1 : call == 1 ? 0 : -1;
    const std::optional<bool> cpp_training =
        training < 0 ? std::nullopt : std::optional<bool>(training == 1);
    const std::vector<float> x = Uniform(n, -2.0, 5.0, 100 + call);
    std::vector<uint8_t> x_bytes(n * size), c_y(n * size, 0xee), cpp_y(n * size, 0xdd);
    if (param.dtype == BNORM_DTYPE_F32) {
      std::memcpy(x_bytes.data(), x.data(), x_bytes.size());
      cpp_layer.Forward(x.data(), reinterpret_cast<float*>(cpp_y.data()), shape, cpp_training);
    } else {
      const std::vector<uint16_t> bits = ToBits(x, param.dtype);
      std::memcpy(x_bytes.data(), bits.data(), x_bytes.size());
      cpp_layer.Forward(bits.data(), reinterpret_cast<uint16_t*>(cpp_y.data()), ToCpp(param.dtype),
                        shape, cpp_training);
    }
    ASSERT_EQ(bnorm_layer_forward(c_layer.handle, x_bytes.data(), c_y.data(), param.dtype,
                                  shape.data(), shape.size(), training),
              BNORM_STATUS_OK)
        << bnorm_last_error();
    EXPECT_TRUE(SameBits(c_y, cpp_y)) << "call " << call;
    const std::vector<std::vector<float>> state = Snapshot(c_layer.handle);
    ASSERT_EQ(state.size(), 7u);
    EXPECT_TRUE(SameBits(state[0], cpp_layer.gamma()));
    EXPECT_TRUE(SameBits(state[1], cpp_layer.beta()));
    EXPECT_TRUE(SameBits(state[2], cpp_layer.moving_mean()));
    EXPECT_TRUE(SameBits(state[3], cpp_layer.moving_variance()));
    EXPECT_TRUE(SameBits(state[4], cpp_layer.moving_stddev()));
    EXPECT_TRUE(SameBits(state[5], cpp_layer.renorm_mean()));
    EXPECT_TRUE(SameBits(state[6], cpp_layer.renorm_stddev()));
  }
}

std::string ForwardCaseName(const ::testing::TestParamInfo<ForwardCase>& info) {
  static const char* const kNames[] = {"F32", "F16", "BF16"};
  return std::string(kNames[info.param.dtype]) +
         (info.param.axis < 0 ? "ChannelsLast" : "ChannelsFirst");
}

INSTANTIATE_TEST_SUITE_P(DTypesAndLayouts, CApiForward,
                         ::testing::Values(ForwardCase{BNORM_DTYPE_F32, -1},
                                           ForwardCase{BNORM_DTYPE_F32, 1},
                                           ForwardCase{BNORM_DTYPE_F16, -1},
                                           ForwardCase{BNORM_DTYPE_BF16, 1}),
                         ForwardCaseName);

TEST(CApi, LayerForwardInPlaceEqualsOutOfPlace) {
  Layer layer;
  const int64_t shape[] = {8, 5};
  const std::vector<float> x = Uniform(40, -3.0, 3.0, 7);
  std::vector<float> y(40), in_place = x;
  ASSERT_EQ(bnorm_layer_forward(layer.handle, x.data(), y.data(), BNORM_DTYPE_F32, shape, 2, 0),
            BNORM_STATUS_OK);
  ASSERT_EQ(bnorm_layer_forward(layer.handle, in_place.data(), in_place.data(), BNORM_DTYPE_F32,
                                shape, 2, 0),
            BNORM_STATUS_OK);
  EXPECT_TRUE(SameBits(y, in_place));
}

// Every rejected call of a trained layer: y and the state stay byte-identical.
TEST(CApi, LayerForwardRejectsBadArgumentsAndChangesNothing) {
  Layer layer;
  const int64_t shape[9] = {4, 3, 5, 1, 1, 1, 1, 1, 1};
  std::vector<float> x = Uniform(64, -3.0, 3.0, 3), y(64, 42.0f);
  ASSERT_EQ(bnorm_layer_forward(layer.handle, x.data(), y.data(), BNORM_DTYPE_F32, shape, 3, 1),
            BNORM_STATUS_OK);
  const std::vector<std::vector<float>> state = Snapshot(layer.handle);
  ASSERT_EQ(state.size(), 7u);
  std::fill(y.begin(), y.end(), 42.0f);
  const std::vector<float> y_before = y;
  bnorm_layer* l = layer.handle;
  const auto f32 = BNORM_DTYPE_F32;

  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_layer_forward(nullptr, x.data(), y.data(), f32, shape, 3, 0),
                "layer is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_layer_forward(l, nullptr, y.data(), f32, shape, 3, 0), "x is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_layer_forward(l, x.data(), nullptr, f32, shape, 3, 0), "y is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_layer_forward(l, x.data(), y.data(), f32, nullptr, 3, 0), "shape is null");
  EXPECT_STATUS(
      BNORM_STATUS_INVALID_ARGUMENT,
      bnorm_layer_forward(l, x.data(), y.data(), static_cast<bnorm_dtype>(3), shape, 3, 0),
      "dtype is 3");
  EXPECT_STATUS(
      BNORM_STATUS_INVALID_ARGUMENT,
      bnorm_layer_forward(l, x.data(), y.data(), static_cast<bnorm_dtype>(-1), shape, 3, 0),
      "dtype is -1");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_layer_forward(l, x.data(), y.data(), f32, shape, 3, 2), "training is 2");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_layer_forward(l, x.data(), y.data(), f32, shape, 3, -2), "training is -2");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_layer_forward(l, x.data(), y.data(), f32, shape, 0, 1), "rank is 0");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_layer_forward(l, x.data(), y.data(), f32, shape, 9, 1), "rank is 9");
  // The C++ rules of Forward (bad_input_test.cc), one per status.
  const int64_t huge[] = {kHuge, kHuge, 5};
  EXPECT_STATUS(BNORM_STATUS_OVERFLOW, bnorm_layer_forward(l, x.data(), y.data(), f32, huge, 3, 1),
                "size_t");
  const int64_t other_rank[] = {4, 15};
  EXPECT_STATUS(BNORM_STATUS_SHAPE_MISMATCH,
                bnorm_layer_forward(l, x.data(), y.data(), f32, other_rank, 2, 1), "rank 3");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_layer_forward(l, x.data(), x.data() + 1, f32, shape, 3, 1), "overlap");
  EXPECT_TRUE(SameBits(y, y_before));
  const std::vector<std::vector<float>> after = Snapshot(layer.handle);
  ASSERT_EQ(after.size(), state.size());
  for (size_t i = 0; i < state.size(); ++i) EXPECT_TRUE(SameBits(after[i], state[i])) << i;
}

// ---- Layer state ------------------------------------------------------------

TEST(CApi, StateRoundTripsAndDrivesInference) {
  bnorm_options options;
  ASSERT_EQ(bnorm_options_init(&options), BNORM_STATUS_OK);
  options.renorm = 1;
  Layer layer(options);
  const int64_t shape[] = {6, 4};
  ASSERT_EQ(bnorm_layer_build(layer.handle, shape, 2), BNORM_STATUS_OK);
  for (int which = BNORM_STATE_GAMMA; which <= BNORM_STATE_RENORM_STDDEV; ++which) {
    const std::vector<float> values = Uniform(4, 0.5, 2.0, 10 + which);
    ASSERT_EQ(
        bnorm_layer_set_state(layer.handle, static_cast<bnorm_state>(which), values.data(), 4),
        BNORM_STATUS_OK)
        << bnorm_last_error();
    std::vector<float> read(4);
    ASSERT_EQ(bnorm_layer_get_state(layer.handle, static_cast<bnorm_state>(which), read.data(), 4),
              BNORM_STATUS_OK);
    EXPECT_TRUE(SameBits(read, values)) << which;
  }
  // Inference uses the new variables: y = (x - mean) * gamma / sqrt(var + eps) + beta.
  const auto s = Snapshot(layer.handle);
  const std::vector<float> x = Uniform(24, -3.0, 3.0, 11);
  std::vector<float> y(24);
  ASSERT_EQ(bnorm_layer_forward(layer.handle, x.data(), y.data(), BNORM_DTYPE_F32, shape, 2, 0),
            BNORM_STATUS_OK);
  for (size_t i = 0; i < 24; ++i) {
    const size_t c = i % 4;
    const double expected =
        (x[i] - s[2][c]) * s[0][c] / std::sqrt(static_cast<double>(s[3][c]) + 1e-3) + s[1][c];
    EXPECT_NEAR(y[i], expected, 1e-5 * (1.0 + std::fabs(expected))) << i;
  }
}

TEST(CApi, StateRejectsBadArgumentsAndChangesNothing) {
  bnorm_options options;
  ASSERT_EQ(bnorm_options_init(&options), BNORM_STATUS_OK);
  options.scale = 0;
  Layer layer(options);
  std::vector<float> values(4, 7.0f);
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_layer_get_state(layer.handle, BNORM_STATE_BETA, values.data(), 4),
                "not built");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_layer_set_state(layer.handle, BNORM_STATE_BETA, values.data(), 4),
                "not built");
  const int64_t shape[] = {6, 4};
  ASSERT_EQ(bnorm_layer_build(layer.handle, shape, 2), BNORM_STATUS_OK);
  const auto state = Snapshot(layer.handle);
  const std::vector<float> before = values;
  bnorm_layer* l = layer.handle;

  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_layer_get_state(nullptr, BNORM_STATE_BETA, values.data(), 4),
                "layer is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_layer_get_state(l, BNORM_STATE_BETA, nullptr, 4),
                "values is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_layer_set_state(nullptr, BNORM_STATE_BETA, values.data(), 4),
                "layer is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_layer_set_state(l, BNORM_STATE_BETA, nullptr, 4),
                "values is null");
  for (int bad : {-1, 7, 100}) {
    EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                  bnorm_layer_get_state(l, static_cast<bnorm_state>(bad), values.data(), 4),
                  "which is");
    EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                  bnorm_layer_set_state(l, static_cast<bnorm_state>(bad), values.data(), 4),
                  "which is");
  }
  for (size_t count : {size_t{0}, size_t{3}, size_t{5}}) {
    EXPECT_STATUS(BNORM_STATUS_SHAPE_MISMATCH,
                  bnorm_layer_get_state(l, BNORM_STATE_MOVING_MEAN, values.data(), count),
                  "count is");
    EXPECT_STATUS(BNORM_STATUS_SHAPE_MISMATCH,
                  bnorm_layer_set_state(l, BNORM_STATE_MOVING_MEAN, values.data(), count),
                  "count is");
  }
  // A variable the options leave out (every such rule is in bad_input_test.cc).
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_layer_get_state(l, BNORM_STATE_GAMMA, values.data(), 4), "scale=false");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_layer_set_state(l, BNORM_STATE_MOVING_STDDEV, values.data(), 4), "renorm");
  EXPECT_TRUE(SameBits(values, before));
  const auto after = Snapshot(layer.handle);
  for (size_t i = 0; i < state.size(); ++i) EXPECT_TRUE(SameBits(after[i], state[i])) << i;
}

}  // namespace
}  // namespace test
}  // namespace bnorm
