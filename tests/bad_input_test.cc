// The bad-input matrix of the C++ API: every argument a caller can get wrong,
// one TEST per kind. Each bad call must throw bnorm::Error (not another
// exception type, not a crash) whose message names the argument, and must
// leave every output buffer and every state variable byte for byte as it was
// (snapshotted before the call, compared after).
//
// Cases whose missing check would mean a wild read or write rather than a
// wrong answer (sizes whose byte count cannot exist, null pointers into the
// low-level kernels, misaligned pointers) run in a child process (a gtest
// death test), so that a crash shows as this case's failure with the
// sanitizer's report instead of ending the whole binary.
//
// Not errors, documented here:
// - An empty batch (a zero size anywhere) is a no-op: no output, no state
//   update (SPEC.md), and null data pointers are fine for it.
// - NaN and Inf in the data propagate as IEEE arithmetic says: a channel
//   whose batch holds a NaN or an Inf gets NaN statistics, NaN outputs and
//   (in training) NaN moving statistics; other channels are unaffected;
//   nothing crashes.
// - Pointers aligned to their element but not to a SIMD vector are valid.
//
// Each case adds to a count printed at the end ("bad inputs tried").
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/error.hpp"
#include "bnorm/fold.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "src/io/npy.h"

namespace bnorm {
namespace {

using Shape = std::vector<int64_t>;

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

int g_cases = 0;

// Copies of memory regions, compared byte for byte later.
class Snapshot {
 public:
  Snapshot& Add(const void* data, size_t bytes, std::string name) {
    const auto* p = static_cast<const uint8_t*>(data);
    regions_.push_back({data, std::vector<uint8_t>(p, p + bytes), std::move(name)});
    return *this;
  }
  template <class T>
  Snapshot& Add(const std::vector<T>& v, std::string name) {
    return Add(v.data(), v.size() * sizeof(T), std::move(name));
  }
  // Every variable the layer has (none before it is built).
  Snapshot& AddLayer(const BatchNorm& layer) {
    layer_ = &layer;
    layer_bytes_ = LayerBytes(layer);
    return *this;
  }

  ::testing::AssertionResult Unchanged() const {
    for (const Region& r : regions_) {
      if (std::memcmp(r.data, r.bytes.data(), r.bytes.size()) != 0) {
        return ::testing::AssertionFailure() << r.name << " changed after the failed call";
      }
    }
    if (layer_ != nullptr && LayerBytes(*layer_) != layer_bytes_) {
      return ::testing::AssertionFailure() << "the layer's state changed after the failed call";
    }
    return ::testing::AssertionSuccess();
  }

  static std::vector<std::vector<uint8_t>> LayerBytes(const BatchNorm& layer) {
    std::vector<std::vector<uint8_t>> state;
    if (!layer.built()) return state;
    const Options& o = layer.options();
    const auto add = [&](const std::vector<float>& v) {
      const auto* p = reinterpret_cast<const uint8_t*>(v.data());
      state.emplace_back(p, p + v.size() * sizeof(float));
    };
    add(layer.moving_mean());
    add(layer.moving_variance());
    if (o.scale) add(layer.gamma());
    if (o.center) add(layer.beta());
    if (o.renorm) {
      add(layer.moving_stddev());
      add(layer.renorm_mean());
      add(layer.renorm_stddev());
    }
    return state;
  }

 private:
  struct Region {
    const void* data;
    std::vector<uint8_t> bytes;
    std::string name;
  };
  std::vector<Region> regions_;
  const BatchNorm* layer_ = nullptr;
  std::vector<std::vector<uint8_t>> layer_bytes_;
};

// Whether `call` throws a bnorm::Error whose message contains every one of
// `names` (the argument, and where useful the value).
::testing::AssertionResult Rejects(const std::function<void()>& call,
                                   const std::vector<std::string>& names) {
  try {
    call();
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& name : names) {
      if (message.find(name) == std::string::npos) {
        return ::testing::AssertionFailure()
               << "the message \"" << message << "\" does not name \"" << name << "\"";
      }
    }
    return ::testing::AssertionSuccess() << message;
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure()
           << "threw " << typeid(e).name() << " (\"" << e.what() << "\") instead of bnorm::Error";
  }
  return ::testing::AssertionFailure() << "the call was accepted";
}

// One bad call in this process: rejected with a message naming `names`, and
// `snapshot` unchanged.
#define EXPECT_REJECTED(snapshot, names, ...)          \
  do {                                                 \
    ++g_cases;                                         \
    EXPECT_TRUE(Rejects([&] { __VA_ARGS__; }, names)); \
    EXPECT_TRUE((snapshot).Unchanged());               \
  } while (false)

// The same in a child process, for calls that would read or write out of
// bounds if the check were missing.
#define EXPECT_REJECTED_IN_CHILD(snapshot, names, ...)                               \
  do {                                                                               \
    ++g_cases;                                                                       \
    EXPECT_EXIT(                                                                     \
        {                                                                            \
          const ::testing::AssertionResult r = Rejects([&] { __VA_ARGS__; }, names); \
          const ::testing::AssertionResult u = (snapshot).Unchanged();               \
          if (!r) std::fprintf(stderr, "%s\n", r.message());                         \
          if (!u) std::fprintf(stderr, "%s\n", u.message());                         \
          std::fflush(stderr);                                                       \
          const bool passed = r && u;                                                \
          _exit(passed ? 0 : 1);                                                     \
        },                                                                           \
        ::testing::ExitedWithCode(0), "");                                           \
  } while (false)

using Names = std::vector<std::string>;

std::vector<float> Ramp(size_t n, float scale = 0.25f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i % 7) * scale - 0.5f;
  return v;
}

size_t Count(const Shape& shape) {
  size_t n = 1;
  for (int64_t s : shape) n *= static_cast<size_t>(s);
  return n;
}

// A layer built for `shape` that has taken one training step, so that its
// state differs from the initial values.
BatchNorm TrainedLayer(const Options& options, const Shape& shape) {
  BatchNorm layer(options);
  const std::vector<float> x = Ramp(Count(shape));
  std::vector<float> y(x.size());
  layer.Forward(x.data(), y.data(), shape, true);
  return layer;
}

class BadInput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // "threadsafe" re-executes this binary, which an emulated process cannot do.
    GTEST_FLAG_SET(death_test_style, BNORM_TEST_LAUNCHER[0] != '\0' ? "fast" : "threadsafe");
  }
};

// ---------------------------------------------------------------------------
// Options (the constructor): nothing exists yet, so only the message counts.

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
}

TEST_F(BadInput, EpsilonNotFinitePositive) {
  Snapshot none;
  for (float e : {0.0f, -0.0f, -1e-3f, kNaN, kInf, -kInf}) {
    Options o;
    o.epsilon = e;
    EXPECT_REJECTED(none, Names({"epsilon"}), BatchNorm{o});
  }
}

TEST_F(BadInput, VirtualBatchSizeZeroOrNegative) {
  Snapshot none;
  for (int64_t v : {int64_t{0}, int64_t{-1}, std::numeric_limits<int64_t>::min()}) {
    Options o;
    o.virtual_batch_size = v;
    EXPECT_REJECTED(none, Names({"virtual_batch_size"}), BatchNorm{o});
  }
}

TEST_F(BadInput, EmptyAxisList) {
  Snapshot none;
  Options o;
  o.axis.clear();
  EXPECT_REJECTED(none, Names({"axis"}), BatchNorm{o});
}

TEST_F(BadInput, InvalidRenormClipping) {
  Snapshot none;
  EXPECT_REJECTED(none, Names({"renorm_clipping", "rmaxx"}),
                  RenormClipping::FromMap({{"rmaxx", 1.0f}}));
  const auto with = [](RenormClipping c) {
    Options o;
    o.renorm = true;
    o.renorm_clipping = c;
    return o;
  };
  RenormClipping negative_dmax;
  negative_dmax.dmax = -1.0f;
  EXPECT_REJECTED(none, Names({"dmax"}), BatchNorm{with(negative_dmax)});
  RenormClipping crossed;
  crossed.rmin = 2.0f;
  crossed.rmax = 1.0f;
  EXPECT_REJECTED(none, Names({"rmin"}), BatchNorm{with(crossed)});
  RenormClipping nan_rmax;
  nan_rmax.rmax = kNaN;
  EXPECT_REJECTED(none, Names({"rmax"}), BatchNorm{with(nan_rmax)});
}

TEST_F(BadInput, FusedWithWhatTheFusedKernelLacks) {
  Snapshot none;
  Options renorm;
  renorm.fused = Fused::kTrue;
  renorm.renorm = true;
  EXPECT_REJECTED(none, Names({"fused", "renorm"}), BatchNorm{renorm});
  Options ghost;
  ghost.fused = Fused::kTrue;
  ghost.virtual_batch_size = 2;
  EXPECT_REJECTED(none, Names({"fused", "virtual_batch_size"}), BatchNorm{ghost});
  Options adjusted;
  adjusted.fused = Fused::kTrue;
  adjusted.adjustment = [](const Shape&, float*, float*) {};
  EXPECT_REJECTED(none, Names({"fused", "adjustment"}), BatchNorm{adjusted});
  // Unsupported rank for the fused kernel: found at build, so the layer
  // stays unbuilt.
  Options rank2;
  rank2.fused = Fused::kTrue;
  BatchNorm layer(rank2);
  std::vector<float> x = Ramp(12), y(12, 9.0f);
  Snapshot s;
  s.Add(y, "y");
  EXPECT_REJECTED(s, Names({"fused", "rank"}), layer.Forward(x.data(), y.data(), {4, 3}, true));
  EXPECT_FALSE(layer.built());
}

TEST_F(BadInput, AdjustmentWithGhostBatches) {
  Snapshot none;
  Options o;
  o.virtual_batch_size = 2;
  o.adjustment = [](const Shape&, float*, float*) {};
  EXPECT_REJECTED(none, Names({"adjustment", "virtual_batch_size"}), BatchNorm{o});
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
  // The geometry planner of the low-level API says the same.
  Snapshot none;
  EXPECT_REJECTED(none, Names({"axis 3"}), PlanGeometry({2, 3, 4}, {3}));
  EXPECT_REJECTED(none, Names({"axis -4"}), PlanGeometry({2, 3, 4}, {-4}));
  EXPECT_REJECTED(none, Names({"axis"}), PlanGeometry({2, 3, 4}, {0, 2}));
  EXPECT_REJECTED(none, Names({"axis"}), PlanGeometry({2, 3, 4}, {}));
}

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
}

// ---------------------------------------------------------------------------
// Shapes through Forward of a trained layer built for [4, 3].

TEST_F(BadInput, ShapeDisagreesWithTheBuiltLayer) {
  BatchNorm layer = TrainedLayer(Options(), {4, 3});
  std::vector<float> x = Ramp(64), y(64, 9.0f);
  Snapshot s;
  s.Add(y, "y").AddLayer(layer);
  EXPECT_REJECTED(s, Names({"rank"}), layer.Forward(x.data(), y.data(), {4, 3, 1}, true));
  EXPECT_REJECTED(s, Names({"rank"}), layer.Forward(x.data(), y.data(), {12}, true));
  EXPECT_REJECTED(s, Names({"shape[1]", "5"}), layer.Forward(x.data(), y.data(), {4, 5}, true));
  EXPECT_REJECTED(s, Names({"shape[1]", "5"}), layer.Forward(x.data(), y.data(), {4, 5}, false));
}

TEST_F(BadInput, NegativeSizes) {
  BatchNorm layer = TrainedLayer(Options(), {4, 3});
  std::vector<float> x = Ramp(12), y(12, 9.0f);
  Snapshot s;
  s.Add(y, "y").AddLayer(layer);
  EXPECT_REJECTED(s, Names({"shape[0]", "-4"}), layer.Forward(x.data(), y.data(), {-4, 3}, true));
  EXPECT_REJECTED(
      s, Names({"shape[0]"}),
      layer.Forward(x.data(), y.data(), {std::numeric_limits<int64_t>::min(), 3}, true));
  BatchNorm fresh{Options()};
  EXPECT_REJECTED(s, Names({"shape[1]", "-3"}), fresh.Forward(x.data(), y.data(), {4, -3}, true));
  EXPECT_FALSE(fresh.built());
  Snapshot none;
  EXPECT_REJECTED(none, Names({"shape[1]"}), PlanGeometry({2, -1, 3}, {1}));
}

TEST_F(BadInput, RankZero) {
  BatchNorm layer{Options()};
  float x = 1.0f, y = 9.0f;
  Snapshot s;
  s.Add(&y, sizeof(y), "y");
  EXPECT_REJECTED(s, Names({"rank"}), layer.Forward(&x, &y, {}, true));
  EXPECT_FALSE(layer.built());
  Snapshot none;
  EXPECT_REJECTED(none, Names({"rank"}), PlanGeometry({}, {-1}));
}

// Element counts that do not fit in size_t: no tensor can have them.
TEST_F(BadInput, ElementCountOverflowsSizeT) {
  BatchNorm layer = TrainedLayer(Options(), {4, 4});
  std::vector<float> x = Ramp(16), y(16, 9.0f);
  Snapshot s;
  s.Add(y, "y").AddLayer(layer);
  EXPECT_REJECTED(s, Names({"shape", "size_t"}),
                  layer.Forward(x.data(), y.data(), {int64_t{1} << 62, 4}, true));
  EXPECT_REJECTED(s, Names({"shape", "size_t"}),
                  layer.Forward(x.data(), y.data(), {kInt64Max, 4}, false));
  Options three_d;
  BatchNorm layer3 = TrainedLayer(three_d, {2, 2, 3});
  Snapshot s3;
  s3.Add(y, "y").AddLayer(layer3);
  EXPECT_REJECTED(
      s3, Names({"shape", "size_t"}),
      layer3.Forward(x.data(), y.data(), {int64_t{1} << 32, int64_t{1} << 32, 3}, true));
  Snapshot none;
  EXPECT_REJECTED(none, Names({"shape", "size_t"}),
                  PlanGeometry({int64_t{1} << 32, int64_t{1} << 32, 2}, {-1}));
}

// Element counts that fit in size_t but whose byte count does not (or
// exceeds the largest object, PTRDIFF_MAX bytes): the product overflows
// int64 or the byte size overflows size_t, so no buffer can hold them. A
// library that accepts them reads far past the caller's buffer.
TEST_F(BadInput, ByteCountOverflows) {
  std::vector<float> x = Ramp(12), y(12, 9.0f);
  {
    // (2^63 - 1) * 2 elements: fits in size_t, overflows int64 and bytes.
    BatchNorm layer = TrainedLayer(Options(), {4, 2});
    Snapshot s;
    s.Add(y, "y").AddLayer(layer);
    EXPECT_REJECTED_IN_CHILD(s, Names({"shape"}),
                             layer.Forward(x.data(), y.data(), {kInt64Max, 2}, false));
  }
  {
    // 2^62 and 3 * 2^62 elements of 4 bytes.
    BatchNorm layer = TrainedLayer(Options(), {4, 2});
    Snapshot s;
    s.Add(y, "y").AddLayer(layer);
    EXPECT_REJECTED_IN_CHILD(s, Names({"shape"}),
                             layer.Forward(x.data(), y.data(), {int64_t{1} << 61, 2}, true));
    BatchNorm layer3 = TrainedLayer(Options(), {4, 3});
    Snapshot s3;
    s3.Add(y, "y").AddLayer(layer3);
    EXPECT_REJECTED_IN_CHILD(s3, Names({"shape"}),
                             layer3.Forward(x.data(), y.data(), {int64_t{1} << 62, 3}, false));
  }
  {
    // The same through the 16-bit entry point (2^62 elements of 2 bytes is
    // 2^63 bytes, beyond PTRDIFF_MAX).
    BatchNorm layer = TrainedLayer(Options(), {4, 2});
    std::vector<uint16_t> x16(12, 0x3c00), y16(12, 0x1234);
    Snapshot s;
    s.Add(y16, "y").AddLayer(layer);
    EXPECT_REJECTED_IN_CHILD(
        s, Names({"shape"}),
        layer.Forward(x16.data(), y16.data(), DType::kFloat16, {int64_t{1} << 61, 2}, false));
  }
  {
    // A parameter shape of 2^62 channels on a fresh layer: its variables
    // cannot be allocated; the answer must still be a bnorm::Error.
    BatchNorm layer{Options()};
    Snapshot s;
    s.Add(y, "y");
    EXPECT_REJECTED(s, Names({"shape"}),
                    layer.Forward(x.data(), y.data(), {1, int64_t{1} << 62}, true));
    BatchNorm empty{Options()};
    EXPECT_REJECTED(s, Names({"shape"}),
                    empty.Forward(nullptr, nullptr, {0, int64_t{1} << 62}, true));
  }
}

// ---------------------------------------------------------------------------
// Ghost batches against the batch size (training; inference ignores them).

TEST_F(BadInput, VirtualBatchSizeLargerThanOrNotDividingTheBatch) {
  Options o;
  o.virtual_batch_size = 4;
  BatchNorm layer = TrainedLayer(o, {8, 3});
  std::vector<float> x = Ramp(64), y(64, 9.0f);
  Snapshot s;
  s.Add(y, "y").AddLayer(layer);
  EXPECT_REJECTED(s, Names({"virtual_batch_size", "larger"}),
                  layer.Forward(x.data(), y.data(), {2, 3}, true));
  EXPECT_REJECTED(s, Names({"virtual_batch_size", "divide"}),
                  layer.Forward(x.data(), y.data(), {6, 3}, true));
  EXPECT_REJECTED(s, Names({"virtual_batch_size", "divide"}),
                  layer.Forward(x.data(), y.data(), {10, 3}, true));
  // Non-adjacent feature axes (a transposed copy inside): same rules.
  Options apart;
  apart.axis = {1, 3};
  apart.virtual_batch_size = 2;
  BatchNorm layer4 = TrainedLayer(apart, {4, 2, 2, 2});
  Snapshot s4;
  s4.Add(y, "y").AddLayer(layer4);
  EXPECT_REJECTED(s4, Names({"virtual_batch_size"}),
                  layer4.Forward(x.data(), y.data(), {3, 2, 2, 2}, true));
}

// ---------------------------------------------------------------------------
// Pointers.

TEST_F(BadInput, NullDataPointers) {
  BatchNorm layer = TrainedLayer(Options(), {4, 3});
  std::vector<float> x = Ramp(12), y(12, 9.0f);
  Snapshot s;
  s.Add(y, "y").Add(x, "x").AddLayer(layer);
  EXPECT_REJECTED(s, Names({"x", "null"}), layer.Forward(nullptr, y.data(), {4, 3}, true));
  EXPECT_REJECTED(s, Names({"y", "null"}), layer.Forward(x.data(), nullptr, {4, 3}, true));
  EXPECT_REJECTED(s, Names({"x", "null"}), layer.Forward(nullptr, y.data(), {4, 3}, false));
  std::vector<uint16_t> x16(12, 0x3c00), y16(12, 0x1234);
  Snapshot s16;
  s16.Add(y16, "y").AddLayer(layer);
  EXPECT_REJECTED(s16, Names({"x", "null"}),
                  layer.Forward(nullptr, y16.data(), DType::kBFloat16, {4, 3}, true));
  EXPECT_REJECTED(s16, Names({"y", "null"}),
                  layer.Forward(x16.data(), nullptr, DType::kFloat16, {4, 3}, true));
  EXPECT_REJECTED(s16, Names({"dtype"}),
                  layer.Forward(x16.data(), y16.data(), DType::kFloat32, {4, 3}, true));
}

TEST_F(BadInput, NullPointersIntoTheKernels) {
  const Geometry g = Geometry::Dense(4, 3, 1);
  std::vector<float> x = Ramp(12), y(12, 9.0f);
  std::vector<double> mean(3, 7.0), variance(3, 7.0);
  Snapshot s;
  s.Add(mean, "mean").Add(variance, "variance").Add(y, "y");
  EXPECT_REJECTED_IN_CHILD(s, Names({"x"}), BatchMoments(nullptr, g, mean.data(), variance.data()));
  EXPECT_REJECTED_IN_CHILD(s, Names({"mean"}), BatchMoments(x.data(), g, nullptr, variance.data()));
  EXPECT_REJECTED_IN_CHILD(s, Names({"variance"}), BatchMoments(x.data(), g, mean.data(), nullptr));
  const std::vector<float> hi(3, 0.0f), scale(3, 1.0f), shift(3, 0.0f);
  NormalizeParams p;
  p.mean_hi = hi.data();
  p.scale = scale.data();
  p.shift = shift.data();
  EXPECT_REJECTED_IN_CHILD(s, Names({"x"}), Normalize(nullptr, y.data(), g, p));
  EXPECT_REJECTED_IN_CHILD(s, Names({"y"}), Normalize(x.data(), nullptr, g, p));
  NormalizeParams no_scale = p;
  no_scale.scale = nullptr;
  EXPECT_REJECTED_IN_CHILD(s, Names({"scale"}), Normalize(x.data(), y.data(), g, no_scale));
  NormalizeParams no_mean = p;
  no_mean.mean_hi = nullptr;
  EXPECT_REJECTED_IN_CHILD(s, Names({"mean_hi"}), Normalize(x.data(), y.data(), g, no_mean));
}

// BatchMoments needs at least one value per channel (its stated
// precondition): an empty geometry must be an error, not uninitialized means.
TEST_F(BadInput, MomentsOfAnEmptyGeometry) {
  std::vector<float> x = Ramp(4);
  std::vector<double> mean(3, 7.0), variance(3, 7.0);
  Snapshot s;
  s.Add(mean, "mean").Add(variance, "variance");
  EXPECT_REJECTED_IN_CHILD(
      s, Names({}), BatchMoments(x.data(), Geometry::Dense(0, 3, 1), mean.data(), variance.data()));
  EXPECT_REJECTED_IN_CHILD(
      s, Names({}), BatchMoments(x.data(), Geometry::Dense(2, 3, 0), mean.data(), variance.data()));
}

// A float* one byte off its alignment is undefined behaviour in C++ already;
// bnorm must refuse it rather than run on it (the C ABI does).
TEST_F(BadInput, MisalignedDataPointers) {
  BatchNorm layer = TrainedLayer(Options(), {4, 3});
  std::vector<float> storage(32, 1.0f), y(12, 9.0f);
  const float* x =
      reinterpret_cast<const float*>(reinterpret_cast<const char*>(storage.data()) + 1);
  float* y_odd = reinterpret_cast<float*>(reinterpret_cast<char*>(storage.data() + 16) + 2);
  Snapshot s;
  s.Add(y, "y").Add(storage, "storage").AddLayer(layer);
  EXPECT_REJECTED_IN_CHILD(s, Names({"x"}), layer.Forward(x, y.data(), {4, 3}, true));
  EXPECT_REJECTED_IN_CHILD(s, Names({"y"}), layer.Forward(storage.data(), y_odd, {4, 3}, false));
  std::vector<uint16_t> x16(16, 0x3c00), y16(12, 0x1234);
  const uint16_t* x16_odd =
      reinterpret_cast<const uint16_t*>(reinterpret_cast<const char*>(x16.data()) + 1);
  Snapshot s16;
  s16.Add(y16, "y").AddLayer(layer);
  EXPECT_REJECTED_IN_CHILD(s16, Names({"x"}),
                           layer.Forward(x16_odd, y16.data(), DType::kFloat16, {4, 3}, true));
}

// y == x is in place and fine; any other overlap would read values already
// written and must be rejected (kernels.hpp calls it the caller's error, so
// the checks are a finding if they fail).
TEST_F(BadInput, PartiallyOverlappingInputAndOutput) {
  BatchNorm layer = TrainedLayer(Options(), {4, 3});
  std::vector<float> buffer = Ramp(24);
  Snapshot s;
  s.Add(buffer, "the shared buffer").AddLayer(layer);
  EXPECT_REJECTED(s, Names({"overlap"}),
                  layer.Forward(buffer.data(), buffer.data() + 1, {4, 3}, true));
  EXPECT_REJECTED(s, Names({"overlap"}),
                  layer.Forward(buffer.data() + 5, buffer.data(), {4, 3}, false));
  std::vector<uint16_t> b16(24, 0x3c00);
  Snapshot s16;
  s16.Add(b16, "the shared buffer").AddLayer(layer);
  EXPECT_REJECTED(s16, Names({"overlap"}),
                  layer.Forward(b16.data(), b16.data() + 3, DType::kFloat16, {4, 3}, true));
  const Geometry g = Geometry::Dense(4, 3, 1);
  const std::vector<float> hi(3, 0.0f), scale(3, 2.0f), shift(3, 1.0f);
  NormalizeParams p;
  p.mean_hi = hi.data();
  p.scale = scale.data();
  p.shift = shift.data();
  Snapshot sn;
  sn.Add(buffer, "the shared buffer");
  EXPECT_REJECTED(sn, Names({"overlap"}), Normalize(buffer.data(), buffer.data() + 2, g, p));
  EXPECT_REJECTED(sn, Names({"overlap"}), Normalize(buffer.data() + 11, buffer.data(), g, p));
}

// ---------------------------------------------------------------------------
// State setters and getters.

TEST_F(BadInput, ParameterLengthsThatDisagreeWithTheParameterShape) {
  Options o;
  o.renorm = true;
  BatchNorm layer = TrainedLayer(o, {4, 3});
  Snapshot s;
  s.AddLayer(layer);
  const std::vector<std::vector<float>> wrong = {{}, {1.0f, 2.0f}, {1.0f, 2.0f, 3.0f, 4.0f}};
  for (const std::vector<float>& v : wrong) {
    EXPECT_REJECTED(s, Names({"gamma", std::to_string(v.size())}), layer.set_gamma(v));
    EXPECT_REJECTED(s, Names({"beta"}), layer.set_beta(v));
    EXPECT_REJECTED(s, Names({"moving_mean"}), layer.set_moving_mean(v));
    EXPECT_REJECTED(s, Names({"moving_variance"}), layer.set_moving_variance(v));
    EXPECT_REJECTED(s, Names({"moving_stddev"}), layer.set_moving_stddev(v));
    EXPECT_REJECTED(s, Names({"renorm_mean"}), layer.set_renorm_mean(v));
    EXPECT_REJECTED(s, Names({"renorm_stddev"}), layer.set_renorm_stddev(v));
  }
}

TEST_F(BadInput, VariablesThatDoNotExist) {
  Options o;
  o.scale = false;
  o.center = false;
  BatchNorm layer = TrainedLayer(o, {4, 3});
  Snapshot s;
  s.AddLayer(layer);
  const std::vector<float> three(3, 1.0f);
  EXPECT_REJECTED(s, Names({"gamma"}), layer.set_gamma(three));
  EXPECT_REJECTED(s, Names({"beta"}), layer.set_beta(three));
  EXPECT_REJECTED(s, Names({"renorm_mean"}), layer.set_renorm_mean(three));
  EXPECT_REJECTED(s, Names({"moving_stddev"}), layer.moving_stddev());
  BatchNorm unbuilt{Options()};
  EXPECT_REJECTED(s, Names({"moving_mean", "not built"}), unbuilt.set_moving_mean(three));
  EXPECT_REJECTED(s, Names({"gamma", "not built"}), unbuilt.gamma());
  EXPECT_REJECTED(s, Names({"parameter_shape"}), unbuilt.parameter_shape());
  EXPECT_FALSE(unbuilt.built());
}

// ---------------------------------------------------------------------------
// Fold and FoldIntoWeights.

TEST_F(BadInput, FoldArguments) {
  const std::vector<float> gamma(3, 1.0f), beta(3, 0.0f), mean(3, 0.5f), var(3, 2.0f);
  const std::vector<float> negative_var = {1.0f, -0.5f, 1.0f};
  std::vector<float> scale(3, 9.0f), shift(3, 9.0f);
  Snapshot s;
  s.Add(scale, "scale").Add(shift, "shift");
  EXPECT_REJECTED(
      s, Names({"moving_mean"}),
      Fold(gamma.data(), beta.data(), nullptr, var.data(), 3, 1e-3f, scale.data(), shift.data()));
  EXPECT_REJECTED(
      s, Names({"moving_variance"}),
      Fold(gamma.data(), beta.data(), mean.data(), nullptr, 3, 1e-3f, scale.data(), shift.data()));
  EXPECT_REJECTED(
      s, Names({"scale"}),
      Fold(gamma.data(), beta.data(), mean.data(), var.data(), 3, 1e-3f, nullptr, shift.data()));
  EXPECT_REJECTED(
      s, Names({"shift"}),
      Fold(gamma.data(), beta.data(), mean.data(), var.data(), 3, 1e-3f, scale.data(), nullptr));
  EXPECT_REJECTED(s, Names({"channels"}),
                  Fold(gamma.data(), beta.data(), mean.data(), var.data(), 0, 1e-3f, scale.data(),
                       shift.data()));
  for (float e : {0.0f, -1e-3f, kNaN, kInf}) {
    EXPECT_REJECTED(
        s, Names({"epsilon"}),
        Fold(gamma.data(), beta.data(), mean.data(), var.data(), 3, e, scale.data(), shift.data()));
  }
  EXPECT_REJECTED(s, Names({"moving_variance[1]"}),
                  Fold(gamma.data(), beta.data(), mean.data(), negative_var.data(), 3, 1e-3f,
                       scale.data(), shift.data()));
}

TEST_F(BadInput, FoldIntoWeightsArguments) {
  const std::vector<float> gamma(3, 1.0f), beta(3, 0.0f), mean(3, 0.5f), var(3, 2.0f);
  std::vector<float> weights = Ramp(24), bias(3, 0.25f);
  Snapshot s;
  s.Add(weights, "weights").Add(bias, "bias");
  const auto fold = [&](float* w, const Shape& shape, WeightLayout layout, float* b,
                        size_t channels, float epsilon) {
    FoldIntoWeights(w, shape, layout, b, gamma.data(), beta.data(), mean.data(), var.data(),
                    channels, epsilon);
  };
  const WeightLayout first = WeightLayout::kOutputFirst, last = WeightLayout::kOutputLast;
  EXPECT_REJECTED(s, Names({"weights"}), fold(nullptr, {3, 8}, first, bias.data(), 3, 1e-3f));
  EXPECT_REJECTED(s, Names({"bias"}), fold(weights.data(), {3, 8}, first, nullptr, 3, 1e-3f));
  EXPECT_REJECTED(s, Names({"weight_shape", "rank"}),
                  fold(weights.data(), {3}, first, bias.data(), 3, 1e-3f));
  EXPECT_REJECTED(s, Names({"weight_shape"}),
                  fold(weights.data(), {3, 0}, first, bias.data(), 3, 1e-3f));
  EXPECT_REJECTED(s, Names({"weight_shape"}),
                  fold(weights.data(), {3, -8}, first, bias.data(), 3, 1e-3f));
  EXPECT_REJECTED(s, Names({"weight_shape[1]"}),
                  fold(weights.data(), {3, 8}, last, bias.data(), 3, 1e-3f));
  EXPECT_REJECTED(s, Names({"weight_shape[0]"}),
                  fold(weights.data(), {8, 3}, first, bias.data(), 3, 1e-3f));
  EXPECT_REJECTED(s, Names({"epsilon"}), fold(weights.data(), {3, 8}, first, bias.data(), 3, kNaN));
  // Sizes whose product wraps around size_t: to 0 (nothing folded, silently)
  // or to a huge count (a wild read and write).
  EXPECT_REJECTED_IN_CHILD(
      s, Names({"weight_shape"}),
      fold(weights.data(), {2, int64_t{1} << 62, int64_t{1} << 62}, first, bias.data(), 2, 1e-3f));
  EXPECT_REJECTED_IN_CHILD(
      s, Names({"weight_shape"}),
      fold(weights.data(), {3, int64_t{1} << 62, 5}, first, bias.data(), 3, 1e-3f));
  // Elements fit in size_t, bytes do not (found by fuzz/c_api_fuzz).
  EXPECT_REJECTED_IN_CHILD(
      s, Names({"weight_shape"}),
      fold(weights.data(), {3, 1, int64_t{1} << 58, 6, 1}, first, bias.data(), 3, 1e-3f));
}

// ---------------------------------------------------------------------------
// .npy files.

class BadNpy : public BadInput {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "bnorm_bad_input_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  void TearDown() override {
    for (const std::string& p : written_) std::remove(p.c_str());
  }

  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = dir_ + "_" + name;
    std::ofstream(path, std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    written_.push_back(path);
    return path;
  }

  // A .npy file: magic, version, header length, the header padded to 64
  // bytes, then the payload.
  static std::string Npy(const std::string& dict, const std::string& payload, int major = 1) {
    const size_t length_bytes = major == 1 ? 2 : 4;
    const size_t prefix = 8 + length_bytes;
    std::string header = dict;
    const size_t total = (prefix + header.size() + 1 + 63) / 64 * 64;
    header.append(total - prefix - header.size() - 1, ' ');
    header += '\n';
    std::string out = std::string("\x93NUMPY", 6);
    out += static_cast<char>(major);
    out += '\0';
    for (size_t i = 0; i < length_bytes; ++i)
      out += static_cast<char>((header.size() >> (8 * i)) & 0xFF);
    return out + header + payload;
  }

  static std::string Dict(const std::string& descr, const std::string& shape,
                          bool fortran = false) {
    return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
           ", 'shape': " + shape + ", }";
  }

  // Read must fail naming the path and `what`; `out` keeps its old contents.
  void ExpectUnreadable(const std::string& path, const Names& what) {
    npy::Array out = npy::FromFloats({1.0f, 2.0f}, {2}, npy::ElementType::kFloat32);
    const npy::Array before = out;
    Names names = what;
    names.push_back(path);
    Snapshot none;
    EXPECT_REJECTED(none, names, out = npy::Read(path));
    EXPECT_EQ(out.data, before.data);
    EXPECT_EQ(out.shape, before.shape);
  }

  std::string dir_;
  std::vector<std::string> written_;
};

TEST_F(BadNpy, Truncated) {
  const std::string good = Npy(Dict("<f4", "(2, 3)"), std::string(24, '\0'));
  ExpectUnreadable(Write("empty.npy", ""), {"truncated"});
  ExpectUnreadable(Write("preamble.npy", good.substr(0, 7)), {"truncated"});
  ExpectUnreadable(Write("length.npy", good.substr(0, 9)), {"truncated"});
  ExpectUnreadable(Write("header.npy", good.substr(0, 40)), {"truncated"});
  ExpectUnreadable(Write("payload.npy", good.substr(0, good.size() - 1)), {"truncated payload"});
  ExpectUnreadable(Write("nopayload.npy", good.substr(0, good.size() - 24)), {"truncated payload"});
  ExpectUnreadable(dir_ + "_missing.npy", {"cannot open"});
}

TEST_F(BadNpy, WrongMagic) {
  std::string bytes = Npy(Dict("<f4", "(1,)"), std::string(4, '\0'));
  bytes[1] = 'M';
  ExpectUnreadable(Write("magic.npy", bytes), {"magic"});
  ExpectUnreadable(Write("text.npy", "hello, world, this is not numpy"), {"magic"});
  std::string version = Npy(Dict("<f4", "(1,)"), std::string(4, '\0'));
  version[6] = 9;
  ExpectUnreadable(Write("version.npy", version), {"version"});
}

TEST_F(BadNpy, HugeHeaderLength) {
  std::string v2 = std::string("\x93NUMPY\x02\x00", 8) + std::string("\xF0\xFF\xFF\xFF", 4) +
                   Dict("<f4", "(1,)");
  ExpectUnreadable(Write("v2.npy", v2), {"header length"});
  std::string v1 =
      std::string("\x93NUMPY\x01\x00", 8) + std::string("\xFF\xFF", 2) + Dict("<f4", "(1,)");
  ExpectUnreadable(Write("v1.npy", v1), {"header length"});
}

TEST_F(BadNpy, UnsupportedDtype) {
  for (const char* descr : {"<i4", ">f4", "|b1", "<c8", "<f16", "|u1", ">f8", ""}) {
    SCOPED_TRACE(descr);
    ExpectUnreadable(Write("dtype.npy", Npy(Dict(descr, "(2,)"), std::string(8, '\0'))), {"dtype"});
  }
  ExpectUnreadable(Write("structured.npy",
                         Npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }",
                             std::string(8, '\0'))),
                   {"dtype"});
}

TEST_F(BadNpy, FortranOrder) {
  ExpectUnreadable(Write("fortran.npy", Npy(Dict("<f4", "(2, 3)", true), std::string(24, '\0'))),
                   {"fortran_order"});
}

TEST_F(BadNpy, ShapeDisagreesWithThePayload) {
  ExpectUnreadable(Write("short.npy", Npy(Dict("<f4", "(2, 3)"), std::string(20, '\0'))),
                   {"truncated payload", "[2, 3]"});
  ExpectUnreadable(Write("long.npy", Npy(Dict("<f4", "(2, 3)"), std::string(28, '\0'))),
                   {"trailing data", "[2, 3]"});
  ExpectUnreadable(Write("f8.npy", Npy(Dict("<f8", "(3,)"), std::string(12, '\0'))),
                   {"truncated payload"});
  ExpectUnreadable(Write("negative.npy", Npy(Dict("<f4", "(-1, 3)"), "")), {"negative"});
  ExpectUnreadable(Write("overflow.npy", Npy(Dict("<f4", "(4611686018427387904, 8)"), "")),
                   {"shape"});
  ExpectUnreadable(Write("int64.npy", Npy(Dict("<f4", "(99999999999999999999,)"), "")), {"int64"});
  ExpectUnreadable(Write("notuple.npy", Npy(Dict("<f4", "(3)"), std::string(12, '\0'))), {"tuple"});
}

TEST_F(BadNpy, MalformedHeaderDict) {
  ExpectUnreadable(Write("dup.npy", Npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, "
                                        "'shape': (1,), }",
                                        std::string(4, '\0'))),
                   {"duplicate"});
  ExpectUnreadable(
      Write("missing.npy", Npy("{'descr': '<f4', 'shape': (1,), }", std::string(4, '\0'))),
      {"fortran_order"});
  ExpectUnreadable(Write("garbage.npy", Npy("[1, 2, 3]", std::string(4, '\0'))), {"malformed"});
}

// A failed Write leaves an existing file exactly as it was.
TEST_F(BadNpy, FailedWriteLeavesTheOldFile) {
  const std::string path = Write("keep.npy", Npy(Dict("<f4", "(1,)"), std::string(4, '\x11')));
  std::ifstream in(path, std::ios::binary);
  const std::string before((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  npy::Array bad{npy::ElementType::kFloat32, {3}, std::vector<uint8_t>(8)};
  Snapshot none;
  EXPECT_REJECTED(none, Names({path, "bytes"}), npy::Write(path, bad));
  EXPECT_REJECTED(none, Names({"nonexistent"}),
                  npy::Write(dir_ + "_nonexistent/dir/x.npy",
                             npy::FromFloats({1.0f}, {1}, npy::ElementType::kFloat32)));
  std::ifstream again(path, std::ios::binary);
  const std::string after((std::istreambuf_iterator<char>(again)),
                          std::istreambuf_iterator<char>());
  EXPECT_EQ(before, after);
}

// ---------------------------------------------------------------------------
// Not errors: empty batches and non-finite data.

TEST_F(BadInput, EmptyBatchUpdatesNothing) {
  Options renorm;
  renorm.renorm = true;
  Options ghost;
  ghost.virtual_batch_size = 2;
  for (const Options& o : {Options(), renorm, ghost}) {
    BatchNorm layer = TrainedLayer(o, {4, 3});
    Snapshot s;
    s.AddLayer(layer);
    ++g_cases;
    EXPECT_NO_THROW(layer.Forward(nullptr, nullptr, {0, 3}, true));
    EXPECT_TRUE(s.Unchanged());
    std::vector<uint16_t> none;
    ++g_cases;
    EXPECT_NO_THROW(layer.Forward(none.data(), none.data(), DType::kBFloat16, {0, 3}, true));
    EXPECT_TRUE(s.Unchanged());
  }
  // A zero feature size: no channels, nothing to do.
  BatchNorm zero_channels{Options()};
  ++g_cases;
  EXPECT_NO_THROW(zero_channels.Forward(nullptr, nullptr, {4, 0}, true));
  // The low-level normalize of an empty geometry writes nothing.
  std::vector<float> y(4, 9.0f);
  Snapshot s;
  s.Add(y, "y");
  ++g_cases;
  EXPECT_NO_THROW(Normalize(y.data(), y.data(), Geometry::Dense(0, 4, 1), NormalizeParams()));
  EXPECT_TRUE(s.Unchanged());
}

// NaN and Inf propagate per IEEE: the channel holding them gets NaN
// statistics and outputs; the others are exact; nothing crashes.
TEST_F(BadInput, NonFiniteDataPropagatesPerChannel) {
  for (float bad : {kNaN, kInf, -kInf}) {
    SCOPED_TRACE(bad);
    BatchNorm layer{Options()};
    std::vector<float> x = Ramp(12);
    x[4] = bad;  // row 1, channel 1
    std::vector<float> y(12, 9.0f);
    ++g_cases;
    ASSERT_NO_THROW(layer.Forward(x.data(), y.data(), {4, 3}, true));
    for (size_t i = 0; i < 12; ++i) {
      if (i % 3 == 1) {
        EXPECT_TRUE(std::isnan(y[i])) << i;
      } else {
        EXPECT_TRUE(std::isfinite(y[i])) << i;
      }
    }
    // The mean of a channel holding an Inf is that Inf; its variance NaN.
    EXPECT_FALSE(std::isfinite(layer.moving_mean()[1]));
    EXPECT_TRUE(std::isnan(layer.moving_variance()[1]));
    EXPECT_TRUE(std::isfinite(layer.moving_mean()[0]) && std::isfinite(layer.moving_mean()[2]));
    // Inference with the poisoned channel: NaN there, finite elsewhere.
    std::vector<float> z(12, 9.0f), clean = Ramp(12);
    ++g_cases;
    ASSERT_NO_THROW(layer.Forward(clean.data(), z.data(), {4, 3}, false));
    for (size_t i = 0; i < 12; ++i) EXPECT_EQ(std::isnan(z[i]), i % 3 == 1) << i;
  }
  // Inference on a healthy layer: only the non-finite elements themselves.
  BatchNorm healthy = TrainedLayer(Options(), {4, 3});
  std::vector<float> x = Ramp(12), y(12, 9.0f);
  x[0] = kNaN;
  x[5] = kInf;
  ++g_cases;
  ASSERT_NO_THROW(healthy.Forward(x.data(), y.data(), {4, 3}, false));
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_TRUE(std::isinf(y[5]));
  for (size_t i : {1, 2, 3, 4, 6, 7, 8, 9, 10, 11}) EXPECT_TRUE(std::isfinite(y[i])) << i;
}

// Element-aligned pointers at every float offset within a 64-byte line are
// valid and give the same result as aligned ones.
TEST_F(BadInput, VectorMisalignedPointersAreValid) {
  const Shape shape = {37, 5};
  const std::vector<float> data = Ramp(Count(shape));
  std::vector<float> expected(data.size());
  BatchNorm reference_layer{Options()};
  reference_layer.Forward(data.data(), expected.data(), shape, true);
  for (size_t offset = 0; offset < 16; ++offset) {
    SCOPED_TRACE(offset);
    std::vector<float> xs(data.size() + 32, 7.0f), ys(data.size() + 32, 7.0f);
    std::copy(data.begin(), data.end(), xs.begin() + static_cast<std::ptrdiff_t>(offset));
    BatchNorm layer{Options()};
    ++g_cases;
    layer.Forward(xs.data() + offset, ys.data() + offset, shape, true);
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(),
                           ys.begin() + static_cast<std::ptrdiff_t>(offset)));
    for (size_t i = 0; i < offset; ++i) EXPECT_EQ(ys[i], 7.0f);
    for (size_t i = offset + data.size(); i < ys.size(); ++i) EXPECT_EQ(ys[i], 7.0f);
    EXPECT_EQ(layer.moving_mean(), reference_layer.moving_mean());
  }
}

// Prints the number of bad inputs this run tried.
class CountReporter : public ::testing::Environment {
 public:
  void TearDown() override { std::printf("bad_input_test: %d bad inputs tried\n", g_cases); }
};
[[maybe_unused]] const auto* const kReporter =
    ::testing::AddGlobalTestEnvironment(new CountReporter);

}  // namespace
}  // namespace bnorm
