// SPDX-License-Identifier: Apache-2.0
// The C ABI (bnorm.h): every function's success path equals the C++ call it
// wraps bit for bit, and every bad argument is a status with a message naming
// it, after which outputs and layer state are byte-identical to before.
#include <gtest/gtest.h>

#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/bnorm.h"
#include "bnorm/error.hpp"
#include "bnorm/fold.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "bnorm/targets.hpp"
#include "src/c_api/status.h"
#include "src/ops/half.h"

// While g_fail_allocations is set, every operator new of this process throws
// std::bad_alloc: that is how the tests reach OUT_OF_MEMORY.
namespace {
std::atomic<bool> g_fail_allocations{false};
}  // namespace

// GCC pairs ::operator new with ::operator delete and warns when it sees the
// replacement's free() after inlining; the pair is malloc/free here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(size_t size) {
  if (g_fail_allocations) throw std::bad_alloc();
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace bnorm {
namespace {

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

std::vector<float> Random(size_t n, uint32_t seed, float lo = -3.0f, float hi = 3.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

std::vector<uint16_t> ToBits(const std::vector<float>& v, bnorm_dtype dtype) {
  std::vector<uint16_t> bits(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    bits[i] = dtype == BNORM_DTYPE_F16 ? FloatToHalf(v[i]) : FloatToBFloat16(v[i]);
  }
  return bits;
}

DType ToCpp(bnorm_dtype dtype) {
  return dtype == BNORM_DTYPE_F32   ? DType::kFloat32
         : dtype == BNORM_DTYPE_F16 ? DType::kFloat16
                                    : DType::kBFloat16;
}

template <class T>
bool SameBytes(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

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

// ---- Version, status, messages ---------------------------------------------

TEST(CApi, VersionMatchesTheHeader) {
  EXPECT_STREQ(bnorm_version(), BNORM_VERSION_STRING);
  EXPECT_EQ(BNORM_VERSION_MAJOR, 0);
  EXPECT_EQ(BNORM_VERSION_MINOR, 1);
  EXPECT_EQ(BNORM_VERSION_PATCH, 0);
  EXPECT_STREQ(BNORM_VERSION_STRING, "0.1.0");
}

TEST(CApi, EveryStatusHasItsOwnName) {
  std::vector<std::string> names;
  for (int s = BNORM_STATUS_OK; s <= BNORM_STATUS_INTERNAL; ++s) {
    const std::string name = bnorm_status_string(static_cast<bnorm_status>(s));
    EXPECT_NE(name, "unknown status") << s;
    for (const std::string& other : names) EXPECT_NE(name, other);
    names.push_back(name);
  }
  EXPECT_STREQ(bnorm_status_string(BNORM_STATUS_OK), "ok");
  EXPECT_STREQ(bnorm_status_string(static_cast<bnorm_status>(99)), "unknown status");
  EXPECT_STREQ(bnorm_status_string(static_cast<bnorm_status>(-1)), "unknown status");
}

// Guard answers a bnorm::Error with the status its code names, never by
// reading the message.
TEST(CApi, EachErrorCodeMapsToItsStatus) {
  EXPECT_EQ(StatusOf(ErrorCode::kNullPointer), BNORM_STATUS_NULL_POINTER);
  EXPECT_EQ(StatusOf(ErrorCode::kInvalidArgument), BNORM_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(StatusOf(ErrorCode::kShapeMismatch), BNORM_STATUS_SHAPE_MISMATCH);
  EXPECT_EQ(StatusOf(ErrorCode::kOverflow), BNORM_STATUS_OVERFLOW);
  EXPECT_EQ(StatusOf(ErrorCode::kUnsupported), BNORM_STATUS_UNSUPPORTED);
  EXPECT_EQ(StatusOf(static_cast<ErrorCode>(99)), BNORM_STATUS_INTERNAL);
  // The codes are numbered as the statuses.
  for (ErrorCode code : {ErrorCode::kNullPointer, ErrorCode::kInvalidArgument,
                         ErrorCode::kShapeMismatch, ErrorCode::kOverflow,
                         ErrorCode::kUnsupported}) {
    EXPECT_EQ(static_cast<int>(StatusOf(code)), static_cast<int>(code));
  }
}

TEST(CApi, LastErrorBelongsToTheFailingThread) {
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_options_init(nullptr), "bnorm_options_init");
  std::string other;
  std::thread([&] {
    other = bnorm_last_error();
    bnorm_set_max_threads(-5);
  }).join();
  EXPECT_EQ(other, "");
  EXPECT_NE(std::strstr(bnorm_last_error(), "options is null"), nullptr) << bnorm_last_error();
}

TEST(CApi, SuccessLeavesTheLastErrorAlone) {
  EXPECT_EQ(bnorm_set_max_threads(-1), BNORM_STATUS_INVALID_ARGUMENT);
  const std::string message = bnorm_last_error();
  bnorm_options options;
  EXPECT_EQ(bnorm_options_init(&options), BNORM_STATUS_OK);
  EXPECT_EQ(message, bnorm_last_error());
}

TEST(CApi, OutOfMemoryIsAStatus) {
  bnorm_options options;
  ASSERT_EQ(bnorm_options_init(&options), BNORM_STATUS_OK);
  bnorm_layer* layer = nullptr;
  g_fail_allocations = true;
  const bnorm_status status = bnorm_layer_create(&options, &layer);
  g_fail_allocations = false;
  EXPECT_EQ(status, BNORM_STATUS_OUT_OF_MEMORY);
  EXPECT_STREQ(bnorm_last_error(), "bnorm_layer_create: out of memory");
  EXPECT_EQ(layer, nullptr);
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

  bnorm_options bad = options;
  bad.num_axes = 9;
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_layer_create(&bad, &layer), "num_axes is 9");
  bad = options;
  bad.num_axes = 0;
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_layer_create(&bad, &layer), "axis");
  bad = options;
  bad.fused = static_cast<bnorm_fused>(7);
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_layer_create(&bad, &layer), "fused is 7");
  bad = options;
  bad.momentum = 1.5f;
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_layer_create(&bad, &layer), "momentum");
  bad = options;
  bad.epsilon = 0.0f;
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_layer_create(&bad, &layer), "epsilon");
  bad = options;
  bad.virtual_batch_size = -2;
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_layer_create(&bad, &layer),
                "virtual_batch_size");
  bad = options;
  bad.renorm = 1;
  bad.has_dmax = 1;
  bad.dmax = -1.0f;
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_layer_create(&bad, &layer), "dmax");
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
  const int64_t negative[] = {2, -3, 5};
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_layer_build(layer.handle, negative, 3),
                "shape[1] is -3");
  const int64_t huge[] = {kHuge, kHuge, 5};
  EXPECT_STATUS(BNORM_STATUS_OVERFLOW, bnorm_layer_build(layer.handle, huge, 3), "size_t");
  bnorm_options options;
  bnorm_options_init(&options);
  options.axes[0] = 3;
  Layer axis3(options);
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_layer_build(axis3.handle, shape, 3),
                "axis 3 is out of range");
  size_t channels = 0;
  EXPECT_EQ(bnorm_layer_channels(layer.handle, &channels), BNORM_STATUS_INVALID_ARGUMENT);

  ASSERT_EQ(bnorm_layer_build(layer.handle, shape, 4), BNORM_STATUS_OK);
  const int64_t other_rank[] = {2, 3, 5};
  EXPECT_STATUS(BNORM_STATUS_SHAPE_MISMATCH, bnorm_layer_build(layer.handle, other_rank, 3),
                "built for rank 4");
  const int64_t other_channels[] = {2, 3, 4, 6};
  EXPECT_STATUS(BNORM_STATUS_SHAPE_MISMATCH, bnorm_layer_build(layer.handle, other_channels, 4),
                "feature axis 3");
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
    const std::vector<float> x = Random(n, 100 + call, -2.0f, 5.0f);
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
    EXPECT_TRUE(SameBytes(c_y, cpp_y)) << "call " << call;
    const std::vector<std::vector<float>> state = Snapshot(c_layer.handle);
    ASSERT_EQ(state.size(), 7u);
    EXPECT_TRUE(SameBytes(state[0], cpp_layer.gamma()));
    EXPECT_TRUE(SameBytes(state[1], cpp_layer.beta()));
    EXPECT_TRUE(SameBytes(state[2], cpp_layer.moving_mean()));
    EXPECT_TRUE(SameBytes(state[3], cpp_layer.moving_variance()));
    EXPECT_TRUE(SameBytes(state[4], cpp_layer.moving_stddev()));
    EXPECT_TRUE(SameBytes(state[5], cpp_layer.renorm_mean()));
    EXPECT_TRUE(SameBytes(state[6], cpp_layer.renorm_stddev()));
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
  const std::vector<float> x = Random(40, 7);
  std::vector<float> y(40), in_place = x;
  ASSERT_EQ(bnorm_layer_forward(layer.handle, x.data(), y.data(), BNORM_DTYPE_F32, shape, 2, 0),
            BNORM_STATUS_OK);
  ASSERT_EQ(bnorm_layer_forward(layer.handle, in_place.data(), in_place.data(), BNORM_DTYPE_F32,
                                shape, 2, 0),
            BNORM_STATUS_OK);
  EXPECT_TRUE(SameBytes(y, in_place));
}

// Every rejected call of a trained layer: y and the state stay byte-identical.
TEST(CApi, LayerForwardRejectsBadArgumentsAndChangesNothing) {
  Layer layer;
  const int64_t shape[9] = {4, 3, 5, 1, 1, 1, 1, 1, 1};
  std::vector<float> x = Random(64, 3), y(64, 42.0f);
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
  const int64_t negative[] = {-4, 3, 5};
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_layer_forward(l, x.data(), y.data(), f32, negative, 3, 1), "shape[0] is -4");
  const int64_t huge[] = {kHuge, kHuge, 5};
  EXPECT_STATUS(BNORM_STATUS_OVERFLOW, bnorm_layer_forward(l, x.data(), y.data(), f32, huge, 3, 1),
                "size_t");
  const int64_t huge_bytes[] = {int64_t{1} << 61, 1, 5};  // the elements fit, the bytes not
  EXPECT_STATUS(BNORM_STATUS_OVERFLOW,
                bnorm_layer_forward(l, x.data(), y.data(), f32, huge_bytes, 3, 1), "bytes");
  const int64_t other_rank[] = {4, 15};
  EXPECT_STATUS(BNORM_STATUS_SHAPE_MISMATCH,
                bnorm_layer_forward(l, x.data(), y.data(), f32, other_rank, 2, 1), "rank 3");
  const int64_t other_channels[] = {3, 4, 4};
  EXPECT_STATUS(BNORM_STATUS_SHAPE_MISMATCH,
                bnorm_layer_forward(l, x.data(), y.data(), f32, other_channels, 3, 1),
                "feature axis 2");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_layer_forward(l, x.data(), x.data() + 1, f32, shape, 3, 1), "overlap");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_layer_forward(l, x.data() + 1, x.data(), f32, shape, 3, 1), "overlap");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_layer_forward(l, reinterpret_cast<const char*>(x.data()) + 2, y.data(), f32,
                                    shape, 3, 1),
                "aligned");
  EXPECT_TRUE(SameBytes(y, y_before));
  const std::vector<std::vector<float>> after = Snapshot(layer.handle);
  ASSERT_EQ(after.size(), state.size());
  for (size_t i = 0; i < state.size(); ++i) EXPECT_TRUE(SameBytes(after[i], state[i])) << i;
}

TEST(CApi, LayerForwardReportsKerasErrorsAndKeepsTheState) {
  bnorm_options options;
  ASSERT_EQ(bnorm_options_init(&options), BNORM_STATUS_OK);
  options.virtual_batch_size = 3;
  Layer layer(options);
  const int64_t shape[] = {3, 4};
  std::vector<float> x = Random(16, 5), y(16, 1.0f);
  ASSERT_EQ(bnorm_layer_forward(layer.handle, x.data(), y.data(), BNORM_DTYPE_F32, shape, 2, 1),
            BNORM_STATUS_OK);
  const auto state = Snapshot(layer.handle);
  std::fill(y.begin(), y.end(), 1.0f);
  const int64_t batch4[] = {4, 4};
  EXPECT_STATUS(
      BNORM_STATUS_INVALID_ARGUMENT,
      bnorm_layer_forward(layer.handle, x.data(), y.data(), BNORM_DTYPE_F32, batch4, 2, 1),
      "virtual_batch_size 3");
  EXPECT_TRUE(SameBytes(y, std::vector<float>(16, 1.0f)));
  const auto after = Snapshot(layer.handle);
  for (size_t i = 0; i < state.size(); ++i) EXPECT_TRUE(SameBytes(after[i], state[i])) << i;
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
    const std::vector<float> values = Random(4, 10 + which, 0.5f, 2.0f);
    ASSERT_EQ(
        bnorm_layer_set_state(layer.handle, static_cast<bnorm_state>(which), values.data(), 4),
        BNORM_STATUS_OK)
        << bnorm_last_error();
    std::vector<float> read(4);
    ASSERT_EQ(bnorm_layer_get_state(layer.handle, static_cast<bnorm_state>(which), read.data(), 4),
              BNORM_STATUS_OK);
    EXPECT_TRUE(SameBytes(read, values)) << which;
  }
  // Inference uses the new variables: y = (x - mean) * gamma / sqrt(var + eps) + beta.
  const auto s = Snapshot(layer.handle);
  const std::vector<float> x = Random(24, 11);
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
  // Variables the options leave out.
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_layer_get_state(l, BNORM_STATE_GAMMA, values.data(), 4), "scale=false");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_layer_set_state(l, BNORM_STATE_GAMMA, values.data(), 4), "scale=false");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_layer_get_state(l, BNORM_STATE_RENORM_MEAN, values.data(), 4), "renorm");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_layer_set_state(l, BNORM_STATE_MOVING_STDDEV, values.data(), 4), "renorm");
  EXPECT_TRUE(SameBytes(values, before));
  const auto after = Snapshot(layer.handle);
  for (size_t i = 0; i < state.size(); ++i) EXPECT_TRUE(SameBytes(after[i], state[i])) << i;
}

// ---- Low-level calls --------------------------------------------------------

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<int> axes;
};

const Tensor kTensors[] = {
    {{3, 5, 7, 6}, {-1}},    // NHWC
    {{3, 6, 5, 7}, {1}},     // NCHW
    {{3, 4, 5, 7}, {1, 2}},  // two feature axes, channels-first
    {{1000, 3}, {1}},        // dense
    {{2, 3, 1031}, {0, 1}},  // long runs
};

size_t Count(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t s : shape) n *= static_cast<size_t>(s);
  return n;
}

TEST(CApi, MomentsEqualBatchMomentsBitwise) {
  for (const Tensor& t : kTensors) {
    for (bnorm_dtype dtype : {BNORM_DTYPE_F32, BNORM_DTYPE_F16, BNORM_DTYPE_BF16}) {
      const Geometry g = PlanGeometry(t.shape, t.axes);
      const std::vector<float> values = Random(Count(t.shape), 21, 90.0f, 110.0f);
      const std::vector<uint16_t> bits = ToBits(values, dtype);
      const void* x = dtype == BNORM_DTYPE_F32 ? static_cast<const void*>(values.data())
                                               : static_cast<const void*>(bits.data());
      std::vector<double> mean(g.channels), var(g.channels), cpp_mean(g.channels),
          cpp_var(g.channels);
      ASSERT_EQ(bnorm_moments(x, dtype, t.shape.data(), t.shape.size(), t.axes.data(),
                              t.axes.size(), mean.data(), var.data(), g.channels),
                BNORM_STATUS_OK)
          << bnorm_last_error();
      BatchMoments(x, ToCpp(dtype), g, cpp_mean.data(), cpp_var.data());
      EXPECT_TRUE(SameBytes(mean, cpp_mean));
      EXPECT_TRUE(SameBytes(var, cpp_var));
    }
  }
}

TEST(CApi, MomentsRejectBadArgumentsAndWriteNothing) {
  const int64_t shape[9] = {4, 3, 5, 1, 1, 1, 1, 1, 1};
  const int axis = 1, two_axes[] = {0, 2}, same_axes[] = {1, -2};
  const std::vector<float> x = Random(60, 8);
  std::vector<double> mean(8, 1.5), var(8, 2.5);
  const auto before_mean = mean, before_var = var;
  const auto f32 = BNORM_DTYPE_F32;
  const float* px = x.data();
  double *m = mean.data(), *v = var.data();

  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_moments(nullptr, f32, shape, 3, &axis, 1, m, v, 3),
                "x is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_moments(px, f32, nullptr, 3, &axis, 1, m, v, 3),
                "shape is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_moments(px, f32, shape, 3, nullptr, 1, m, v, 3),
                "axes is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_moments(px, f32, shape, 3, &axis, 1, nullptr, v, 3), "mean is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_moments(px, f32, shape, 3, &axis, 1, m, nullptr, 3), "variance is null");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_moments(px, static_cast<bnorm_dtype>(5), shape, 3, &axis, 1, m, v, 3),
                "dtype is 5");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_moments(px, f32, shape, 0, &axis, 1, m, v, 3),
                "rank is 0");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_moments(px, f32, shape, 9, &axis, 1, m, v, 3),
                "rank is 9");
  const int64_t negative[] = {4, 3, -5};
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_moments(px, f32, negative, 3, &axis, 1, m, v, 3), "shape[2] is -5");
  const int64_t huge[] = {kHuge, 3, kHuge};
  EXPECT_STATUS(BNORM_STATUS_OVERFLOW, bnorm_moments(px, f32, huge, 3, &axis, 1, m, v, 3),
                "size_t");
  EXPECT_STATUS(BNORM_STATUS_SHAPE_MISMATCH, bnorm_moments(px, f32, shape, 3, &axis, 1, m, v, 4),
                "channels is 4");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_moments(px, f32, shape, 3, &axis, 0, m, v, 3),
                "axis is an empty list");
  const int out_of_range = 3;
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_moments(px, f32, shape, 3, &out_of_range, 1, m, v, 3),
                "axis 3 is out of range");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_moments(px, f32, shape, 3, same_axes, 2, m, v, 3), "duplicated");
  EXPECT_STATUS(BNORM_STATUS_UNSUPPORTED, bnorm_moments(px, f32, shape, 3, two_axes, 2, m, v, 20),
                "not contiguous");
  const int64_t empty[] = {0, 3, 5};
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_moments(px, f32, empty, 3, &axis, 1, m, v, 3),
                "values per channel");
  EXPECT_STATUS(
      BNORM_STATUS_INVALID_ARGUMENT,
      bnorm_moments(reinterpret_cast<const char*>(px) + 1, f32, shape, 3, &axis, 1, m, v, 3),
      "aligned");
  EXPECT_TRUE(SameBytes(mean, before_mean));
  EXPECT_TRUE(SameBytes(var, before_var));
}

TEST(CApi, FoldEqualsTheCppFoldBitwise) {
  const size_t C = 37;
  const std::vector<float> gamma = Random(C, 1, 0.1f, 2.0f), beta = Random(C, 2),
                           mean = Random(C, 3), var = Random(C, 4, 0.0f, 5.0f);
  for (bool with_affine : {true, false}) {
    const float* g = with_affine ? gamma.data() : nullptr;
    const float* b = with_affine ? beta.data() : nullptr;
    std::vector<float> scale(C), shift(C), cpp_scale(C), cpp_shift(C);
    ASSERT_EQ(bnorm_fold(g, b, mean.data(), var.data(), C, 1e-3f, scale.data(), shift.data()),
              BNORM_STATUS_OK);
    Fold(g, b, mean.data(), var.data(), C, 1e-3f, cpp_scale.data(), cpp_shift.data());
    EXPECT_TRUE(SameBytes(scale, cpp_scale));
    EXPECT_TRUE(SameBytes(shift, cpp_shift));
  }
}

TEST(CApi, FoldRejectsBadArgumentsAndWritesNothing) {
  const std::vector<float> gamma(4, 1.0f), beta(4, 0.0f), mean(4, 0.5f), var(4, 2.0f);
  std::vector<float> scale(4, 9.0f), shift(4, 9.0f);
  const float *g = gamma.data(), *b = beta.data(), *m = mean.data(), *v = var.data();
  float *s = scale.data(), *t = shift.data();
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_fold(g, b, nullptr, v, 4, 1e-3f, s, t),
                "moving_mean is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_fold(g, b, m, nullptr, 4, 1e-3f, s, t),
                "moving_variance is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_fold(g, b, m, v, 4, 1e-3f, nullptr, t),
                "scale is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_fold(g, b, m, v, 4, 1e-3f, s, nullptr),
                "shift is null");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_fold(g, b, m, v, 0, 1e-3f, s, t),
                "channels is 0");
  for (float eps : {0.0f, -1e-3f, std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::infinity()}) {
    EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_fold(g, b, m, v, 4, eps, s, t), "epsilon");
  }
  const std::vector<float> negative{1.0f, 1.0f, -0.5f, 1.0f};
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_fold(g, b, m, negative.data(), 4, 1e-3f, s, t),
                "moving_variance[2]");
  EXPECT_TRUE(SameBytes(scale, std::vector<float>(4, 9.0f)));
  EXPECT_TRUE(SameBytes(shift, std::vector<float>(4, 9.0f)));
}

TEST(CApi, NormalizeEqualsTheCppNormalizeBitwise) {
  for (const Tensor& t : kTensors) {
    const Geometry g = PlanGeometry(t.shape, t.axes);
    const size_t n = Count(t.shape);
    const std::vector<float> mean = Random(g.channels, 31), scale = Random(g.channels, 32),
                             shift = Random(g.channels, 33);
    for (bnorm_dtype dtype : {BNORM_DTYPE_F32, BNORM_DTYPE_F16, BNORM_DTYPE_BF16}) {
      for (bnorm_activation act :
           {BNORM_ACTIVATION_NONE, BNORM_ACTIVATION_RELU, BNORM_ACTIVATION_RELU6}) {
        const size_t size = dtype == BNORM_DTYPE_F32 ? 4 : 2;
        const std::vector<float> values = Random(n, 34, -10.0f, 10.0f);
        std::vector<uint8_t> x(n * size), y(n * size), cpp_y(n * size);
        if (dtype == BNORM_DTYPE_F32) {
          std::memcpy(x.data(), values.data(), x.size());
        } else {
          std::memcpy(x.data(), ToBits(values, dtype).data(), x.size());
        }
        ASSERT_EQ(bnorm_normalize(x.data(), y.data(), dtype, t.shape.data(), t.shape.size(),
                                  t.axes.data(), t.axes.size(), mean.data(), scale.data(),
                                  shift.data(), g.channels, act),
                  BNORM_STATUS_OK)
            << bnorm_last_error();
        NormalizeParams p;
        p.mean_hi = mean.data();
        p.scale = scale.data();
        p.shift = shift.data();
        p.activation = static_cast<Activation>(act);
        Normalize(x.data(), cpp_y.data(), ToCpp(dtype), g, p);
        EXPECT_TRUE(SameBytes(y, cpp_y)) << dtype << " " << act;
        // In place gives the same bytes.
        ASSERT_EQ(bnorm_normalize(x.data(), x.data(), dtype, t.shape.data(), t.shape.size(),
                                  t.axes.data(), t.axes.size(), mean.data(), scale.data(),
                                  shift.data(), g.channels, act),
                  BNORM_STATUS_OK);
        EXPECT_TRUE(SameBytes(x, cpp_y));
      }
    }
  }
}

TEST(CApi, NormalizeOfAnEmptyTensorWritesNothing) {
  const int64_t shape[] = {0, kHuge, kHuge};  // empty, however large the rest
  const int axis = -1;
  float x = 1.0f, y = 2.0f, coefficient = 0.0f;
  EXPECT_EQ(bnorm_normalize(&x, &y, BNORM_DTYPE_F32, shape, 3, &axis, 1, &coefficient, &coefficient,
                            &coefficient, static_cast<size_t>(kHuge), BNORM_ACTIVATION_NONE),
            BNORM_STATUS_OK)
      << bnorm_last_error();
  EXPECT_EQ(y, 2.0f);
  // The feature axes alone overflow.
  const int axes[] = {1, 2};
  EXPECT_STATUS(BNORM_STATUS_OVERFLOW,
                bnorm_normalize(&x, &y, BNORM_DTYPE_F32, shape, 3, axes, 2, &coefficient,
                                &coefficient, &coefficient, 1, BNORM_ACTIVATION_NONE),
                "size_t");
}

TEST(CApi, NormalizeRejectsBadArgumentsAndWritesNothing) {
  const int64_t shape[9] = {4, 3, 5, 1, 1, 1, 1, 1, 1};
  const int axis = 1, two_axes[] = {0, 2};
  std::vector<float> buffer = Random(120, 9);
  const std::vector<float> mean(3, 0.5f), scale(3, 2.0f), shift(3, 1.0f);
  std::vector<float> y(80, -7.0f);
  const auto buffer_before = buffer, y_before = y;
  const float* x = buffer.data();
  const float *m = mean.data(), *s = scale.data(), *t = shift.data();
  float* py = y.data();
  const auto f32 = BNORM_DTYPE_F32;
  const auto none = BNORM_ACTIVATION_NONE;

  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_normalize(nullptr, py, f32, shape, 3, &axis, 1, m, s, t, 3, none),
                "x is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_normalize(x, nullptr, f32, shape, 3, &axis, 1, m, s, t, 3, none),
                "y is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_normalize(x, py, f32, nullptr, 3, &axis, 1, m, s, t, 3, none),
                "shape is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_normalize(x, py, f32, shape, 3, nullptr, 1, m, s, t, 3, none),
                "axes is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_normalize(x, py, f32, shape, 3, &axis, 1, nullptr, s, t, 3, none),
                "mean is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_normalize(x, py, f32, shape, 3, &axis, 1, m, nullptr, t, 3, none),
                "scale is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_normalize(x, py, f32, shape, 3, &axis, 1, m, s, nullptr, 3, none),
                "shift is null");
  EXPECT_STATUS(
      BNORM_STATUS_INVALID_ARGUMENT,
      bnorm_normalize(x, py, static_cast<bnorm_dtype>(3), shape, 3, &axis, 1, m, s, t, 3, none),
      "dtype is 3");
  EXPECT_STATUS(
      BNORM_STATUS_INVALID_ARGUMENT,
      bnorm_normalize(x, py, f32, shape, 3, &axis, 1, m, s, t, 3, static_cast<bnorm_activation>(9)),
      "activation is 9");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_normalize(x, py, f32, shape, 0, &axis, 1, m, s, t, 3, none), "rank is 0");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_normalize(x, py, f32, shape, 9, &axis, 1, m, s, t, 3, none), "rank is 9");
  const int64_t negative[] = {4, -1, 5};
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_normalize(x, py, f32, negative, 3, &axis, 1, m, s, t, 3, none),
                "shape[1] is -1");
  const int64_t huge[] = {kHuge, 3, kHuge};
  EXPECT_STATUS(BNORM_STATUS_OVERFLOW,
                bnorm_normalize(x, py, f32, huge, 3, &axis, 1, m, s, t, 3, none), "size_t");
  const int64_t huge_bytes[] = {int64_t{1} << 61, 3, 1};  // the elements fit, the bytes not
  EXPECT_STATUS(BNORM_STATUS_OVERFLOW,
                bnorm_normalize(x, py, f32, huge_bytes, 3, &axis, 1, m, s, t, 3, none), "bytes");
  EXPECT_STATUS(BNORM_STATUS_SHAPE_MISMATCH,
                bnorm_normalize(x, py, f32, shape, 3, &axis, 1, m, s, t, 2, none), "channels is 2");
  EXPECT_STATUS(BNORM_STATUS_UNSUPPORTED,
                bnorm_normalize(x, py, f32, shape, 3, two_axes, 2, m, s, t, 20, none),
                "not contiguous");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_normalize(x, buffer.data() + 59, f32, shape, 3, &axis, 1, m, s, t, 3, none),
                "overlap");
  EXPECT_STATUS(
      BNORM_STATUS_INVALID_ARGUMENT,
      bnorm_normalize(buffer.data() + 1, buffer.data(), f32, shape, 3, &axis, 1, m, s, t, 3, none),
      "overlap");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_normalize(x, reinterpret_cast<char*>(py) + 1, f32, shape, 3, &axis, 1, m, s,
                                t, 3, none),
                "aligned");
  EXPECT_TRUE(SameBytes(buffer, buffer_before));
  EXPECT_TRUE(SameBytes(y, y_before));
  // Touching but not overlapping is fine.
  EXPECT_EQ(bnorm_normalize(x, buffer.data() + 60, f32, shape, 3, &axis, 1, m, s, t, 3, none),
            BNORM_STATUS_OK);
}

TEST(CApi, FoldIntoWeightsEqualsTheCppCallBitwise) {
  const std::vector<int64_t> shape{4, 3, 3, 2};
  const std::vector<float> gamma = Random(4, 1, 0.5f, 2.0f), beta = Random(4, 2),
                           mean = Random(4, 3), var = Random(4, 4, 0.1f, 3.0f);
  for (bnorm_weight_layout layout : {BNORM_LAYOUT_OUTPUT_FIRST, BNORM_LAYOUT_OUTPUT_LAST}) {
    const std::vector<int64_t> s =
        layout == BNORM_LAYOUT_OUTPUT_FIRST ? shape : std::vector<int64_t>{2, 3, 3, 4};
    std::vector<float> w = Random(72, 5), bias = Random(4, 6);
    std::vector<float> cpp_w = w, cpp_bias = bias;
    ASSERT_EQ(bnorm_fold_into_weights(w.data(), s.data(), s.size(), layout, bias.data(),
                                      gamma.data(), beta.data(), mean.data(), var.data(), 4, 1e-3f),
              BNORM_STATUS_OK)
        << bnorm_last_error();
    FoldIntoWeights(cpp_w.data(), s, static_cast<WeightLayout>(layout), cpp_bias.data(),
                    gamma.data(), beta.data(), mean.data(), var.data(), 4, 1e-3f);
    EXPECT_TRUE(SameBytes(w, cpp_w));
    EXPECT_TRUE(SameBytes(bias, cpp_bias));
  }
}

TEST(CApi, FoldIntoWeightsRejectsBadArgumentsAndWritesNothing) {
  const int64_t shape[9] = {4, 6, 1, 1, 1, 1, 1, 1, 1};
  const std::vector<float> gamma(4, 1.5f), beta(4, 0.5f), mean(4, 0.25f), var(4, 2.0f);
  std::vector<float> w = Random(24, 1), bias = Random(4, 2);
  const auto w_before = w, bias_before = bias;
  float *pw = w.data(), *pb = bias.data();
  const float *g = gamma.data(), *b = beta.data(), *m = mean.data(), *v = var.data();
  const auto first = BNORM_LAYOUT_OUTPUT_FIRST;

  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_fold_into_weights(nullptr, shape, 2, first, pb, g, b, m, v, 4, 1e-3f),
                "weights is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_fold_into_weights(pw, nullptr, 2, first, pb, g, b, m, v, 4, 1e-3f),
                "weight_shape is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_fold_into_weights(pw, shape, 2, first, nullptr, g, b, m, v, 4, 1e-3f),
                "bias is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_fold_into_weights(pw, shape, 2, first, pb, g, b, nullptr, v, 4, 1e-3f),
                "moving_mean is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_fold_into_weights(pw, shape, 2, first, pb, g, b, m, nullptr, 4, 1e-3f),
                "moving_variance is null");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_fold_into_weights(pw, shape, 2, static_cast<bnorm_weight_layout>(2), pb, g, b,
                                        m, v, 4, 1e-3f),
                "layout is 2");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_fold_into_weights(pw, shape, 1, first, pb, g, b, m, v, 4, 1e-3f),
                "rank is 1");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_fold_into_weights(pw, shape, 9, first, pb, g, b, m, v, 4, 1e-3f),
                "rank is 9");
  const int64_t negative[] = {4, -6};
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_fold_into_weights(pw, negative, 2, first, pb, g, b, m, v, 4, 1e-3f),
                "weight_shape[1] is -6");
  const int64_t zero[] = {4, 0};
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_fold_into_weights(pw, zero, 2, first, pb, g, b, m, v, 4, 1e-3f), "0");
  const int64_t huge[] = {4, kHuge, 4};
  EXPECT_STATUS(BNORM_STATUS_OVERFLOW,
                bnorm_fold_into_weights(pw, huge, 3, first, pb, g, b, m, v, 4, 1e-3f), "size_t");
  EXPECT_STATUS(BNORM_STATUS_SHAPE_MISMATCH,
                bnorm_fold_into_weights(pw, shape, 2, first, pb, g, b, m, v, 6, 1e-3f),
                "output channels");
  EXPECT_STATUS(
      BNORM_STATUS_SHAPE_MISMATCH,
      bnorm_fold_into_weights(pw, shape, 2, BNORM_LAYOUT_OUTPUT_LAST, pb, g, b, m, v, 4, 1e-3f),
      "output channels");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_fold_into_weights(pw, shape, 2, first, pb, g, b, m, v, 4, -1.0f), "epsilon");
  EXPECT_TRUE(SameBytes(w, w_before));
  EXPECT_TRUE(SameBytes(bias, bias_before));
}

// ---- Targets and threads ----------------------------------------------------

TEST(CApi, TargetsCanBeListedForcedAndReset) {
  const size_t count = bnorm_target_count();
  ASSERT_GE(count, 1u);
  std::vector<std::string> names;
  for (const TargetInfo& t : SupportedTargets()) names.push_back(t.name);
  ASSERT_EQ(names.size(), count);
  for (size_t i = 0; i < count; ++i) {
    ASSERT_NE(bnorm_target_name(i), nullptr);
    EXPECT_EQ(names[i], bnorm_target_name(i));
  }
  EXPECT_EQ(bnorm_target_name(count), nullptr);
  for (size_t i = 0; i < count; ++i) {
    ASSERT_EQ(bnorm_force_target(bnorm_target_name(i)), BNORM_STATUS_OK) << bnorm_last_error();
    EXPECT_STREQ(bnorm_active_target(), bnorm_target_name(i));
    EXPECT_EQ(ActiveTarget(), bnorm_target_name(i));
  }
  // Names are case-insensitive: the fallback ("scalar" or "emu128") in capitals.
  std::string upper = names.back();
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  ASSERT_EQ(bnorm_force_target(upper.c_str()), BNORM_STATUS_OK) << bnorm_last_error();
  EXPECT_EQ(bnorm_active_target(), names.back());
  ASSERT_EQ(bnorm_reset_target(), BNORM_STATUS_OK);
  EXPECT_STREQ(bnorm_active_target(), bnorm_target_name(0));
}

TEST(CApi, ForcingABadTargetIsAStatus) {
  const std::string active = bnorm_active_target();
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_force_target(nullptr), "name is null");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_force_target("no_such_cpu"),
                "'no_such_cpu' is unknown");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_force_target(""), "unknown");
  for (const TargetInfo& t : CompiledTargets()) {
    if (t.supported) continue;
    EXPECT_STATUS(BNORM_STATUS_UNSUPPORTED, bnorm_force_target(t.name.c_str()), t.name.c_str());
  }
  EXPECT_EQ(bnorm_active_target(), active);
}

// Sets a bad BNORM_TARGET, calls a kernel and exits with 0 if the call
// answered INVALID_ARGUMENT naming the variable.
void NormalizeWithBadEnvironmentTarget() {
  setenv("BNORM_TARGET", "no_such_cpu", 1);
  const int64_t shape[] = {4, 3};
  const int axis = -1;
  float x[12] = {}, y[12] = {}, c[3] = {};
  const bnorm_status status =
      bnorm_normalize(x, y, BNORM_DTYPE_F32, shape, 2, &axis, 1, c, c, c, 3, BNORM_ACTIVATION_NONE);
  const bool named = std::strstr(bnorm_last_error(), "BNORM_TARGET") != nullptr;
  std::exit(status == BNORM_STATUS_INVALID_ARGUMENT && named ? 0 : 1);
}

// A bad BNORM_TARGET surfaces at the first kernel call, as a status. It runs in
// a fresh process: the variable is read once per process.
TEST(CApiDeathTest, BadEnvironmentTargetIsAStatus) {
  // "threadsafe" re-executes this binary, which an emulated process cannot do
  // (no binfmt_misc); each ctest case is a fresh process anyway.
  GTEST_FLAG_SET(death_test_style, BNORM_TEST_LAUNCHER[0] != '\0' ? "fast" : "threadsafe");
  EXPECT_EXIT(NormalizeWithBadEnvironmentTarget(), ::testing::ExitedWithCode(0), "");
}

// Results are bitwise equal for every thread setting; large tensors take the
// parallel path.
TEST(CApi, MaxThreadsDoesNotChangeResults) {
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_set_max_threads(-1), "n is -1");
  const int64_t shape[] = {64, 40, 40, 6};
  const int axes_last = -1, axes_first = 1;
  const size_t n = 64 * 40 * 40 * 6;
  const std::vector<float> x = Random(n, 77, 50.0f, 60.0f);
  const std::vector<float> coefficients = Random(40, 78);
  std::vector<std::vector<float>> outputs;
  std::vector<std::vector<double>> moments;
  for (int threads : {0, 1, 2, 3, 0}) {
    ASSERT_EQ(bnorm_set_max_threads(threads), BNORM_STATUS_OK) << bnorm_last_error();
    std::vector<float> y(n);
    ASSERT_EQ(bnorm_normalize(x.data(), y.data(), BNORM_DTYPE_F32, shape, 4, &axes_last, 1,
                              coefficients.data(), coefficients.data() + 6,
                              coefficients.data() + 12, 6, BNORM_ACTIVATION_RELU),
              BNORM_STATUS_OK);
    outputs.push_back(y);
    std::vector<double> m(92);
    ASSERT_EQ(bnorm_moments(x.data(), BNORM_DTYPE_F32, shape, 4, &axes_last, 1, m.data(),
                            m.data() + 6, 6),
              BNORM_STATUS_OK);
    ASSERT_EQ(bnorm_moments(x.data(), BNORM_DTYPE_F32, shape, 4, &axes_first, 1, m.data() + 12,
                            m.data() + 52, 40),
              BNORM_STATUS_OK);
    moments.push_back(m);
  }
  for (size_t i = 1; i < outputs.size(); ++i) {
    EXPECT_TRUE(SameBytes(outputs[i], outputs[0])) << i;
    EXPECT_TRUE(SameBytes(moments[i], moments[0])) << i;
  }
}

}  // namespace
}  // namespace bnorm
