// SPDX-License-Identifier: Apache-2.0
// The bad-input matrix of the C++ API's calls (tests/bad_input.h has the
// machinery; the options and axes are bad_options_test.cc, the .npy files
// npy_test.cc): shapes, sizes whose byte count cannot exist, ghost batches
// against the batch, pointers, the state setters and getters, and Fold. Each
// bad call throws bnorm::Error naming the argument (or with the exact message
// a case gives) and leaves outputs and state byte for byte as they were.
//
// Not errors, documented here:
// - An empty batch (a zero size anywhere) is a no-op: no output, no state
//   update (docs/semantics.md), and null data pointers are fine for it.
// - NaN and Inf in the data propagate as IEEE arithmetic says: a channel
//   whose batch holds a NaN or an Inf gets NaN statistics, NaN outputs and
//   (in training) NaN moving statistics; other channels are unaffected;
//   nothing crashes.
// - Pointers aligned to their element but not to a SIMD vector are valid.
#include "tests/bad_input.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/fold.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"

namespace bnorm {
namespace bad_input {
namespace {

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
  BatchNorm built{Options()};
  built.Build({2, 3});
  Snapshot b;
  b.Add(y, "y").AddLayer(built);
  EXPECT_REJECTED_WITH_MESSAGE(b, "shape [2, 3, 4] has rank 3; the layer was built for rank 2",
                               built.Forward(x.data(), y.data(), {2, 3, 4}, true));
  EXPECT_REJECTED_WITH_MESSAGE(b,
                               "shape[1] is 4; the layer was built with size 3 on feature axis 1",
                               built.Forward(x.data(), y.data(), {2, 4}, true));
  EXPECT_REJECTED_WITH_MESSAGE(
      b, "shape[1] is 4; the layer was built with size 3 on feature axis 1", built.Build({5, 4}));
  // Another batch size is fine.
  std::vector<float> batch8 = Ramp(24), y8(24);
  EXPECT_NO_THROW(built.Forward(batch8.data(), y8.data(), {8, 3}, true));
}

TEST_F(BadInput, NegativeSizes) {
  BatchNorm layer = TrainedLayer(Options(), {4, 3});
  std::vector<float> x = Ramp(12), y(12, 9.0f);
  Snapshot s;
  s.Add(y, "y").AddLayer(layer);
  EXPECT_REJECTED(s, Names({"shape[0]", "-4"}), layer.Forward(x.data(), y.data(), {-4, 3}, true));
  EXPECT_REJECTED_WITH_MESSAGE(s, "shape[0] is -1; expected a size >= 0",
                               layer.Forward(x.data(), y.data(), {-1, 3}, true));
  EXPECT_REJECTED(
      s, Names({"shape[0]"}),
      layer.Forward(x.data(), y.data(), {std::numeric_limits<int64_t>::min(), 3}, true));
  BatchNorm fresh{Options()};
  EXPECT_REJECTED(s, Names({"shape[1]", "-3"}), fresh.Forward(x.data(), y.data(), {4, -3}, true));
  EXPECT_FALSE(fresh.built());
}

TEST_F(BadInput, RankZero) {
  BatchNorm layer{Options()};
  float x = 1.0f, y = 9.0f;
  Snapshot s;
  s.Add(&y, sizeof(y), "y");
  EXPECT_REJECTED(s, Names({"rank"}), layer.Forward(&x, &y, {}, true));
  EXPECT_FALSE(layer.built());
  EXPECT_REJECTED_WITH_MESSAGE(s, "input rank is 0; expected a tensor of rank >= 1",
                               layer.Build({}));
  EXPECT_FALSE(layer.built());
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
  BatchNorm three_channels = TrainedLayer(Options(), {2, 3});
  Snapshot s2;
  s2.Add(y, "y").AddLayer(three_channels);
  EXPECT_REJECTED_WITH_MESSAGE(
      s2, "shape [9223372036854775807, 3] has more elements than fit in size_t",
      three_channels.Forward(x.data(), y.data(), {kInt64Max, 3}, true));
  Options three_d;
  BatchNorm layer3 = TrainedLayer(three_d, {2, 2, 3});
  Snapshot s3;
  s3.Add(y, "y").AddLayer(layer3);
  EXPECT_REJECTED(
      s3, Names({"shape", "size_t"}),
      layer3.Forward(x.data(), y.data(), {int64_t{1} << 32, int64_t{1} << 32, 3}, true));
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
    EXPECT_REJECTED_IN_CHILD(s, Names({"shape", "bytes"}),
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
        s, Names({"shape", "bytes"}),
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
  EXPECT_REJECTED_WITH_MESSAGE(s, "virtual_batch_size 4 is larger than the batch size 2 (shape[0])",
                               layer.Forward(x.data(), y.data(), {2, 3}, true));
  EXPECT_REJECTED_WITH_MESSAGE(s,
                               "virtual_batch_size 4 does not divide the batch size 6 (shape[0])",
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
  EXPECT_REJECTED_WITH_MESSAGE(
      s16, "dtype is float32 for 16-bit data; expected float16 or bfloat16",
      layer.Forward(x16.data(), y16.data(), DType::kFloat32, {4, 3}, true));
  BatchNorm fresh{Options()};
  EXPECT_REJECTED_WITH_MESSAGE(s, "x is null for a shape of 3 elements",
                               fresh.Forward(nullptr, y.data(), {1, 3}, true));
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
      s, Names({"values per channel"}),
      BatchMoments(x.data(), Geometry::Dense(0, 3, 1), mean.data(), variance.data()));
  EXPECT_REJECTED_IN_CHILD(
      s, Names({"values per channel"}),
      BatchMoments(x.data(), Geometry::Dense(2, 3, 0), mean.data(), variance.data()));
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
  EXPECT_REJECTED_IN_CHILD(s, Names({"x", "aligned"}), layer.Forward(x, y.data(), {4, 3}, true));
  EXPECT_REJECTED_IN_CHILD(s, Names({"y", "aligned"}),
                           layer.Forward(storage.data(), y_odd, {4, 3}, false));
  std::vector<uint16_t> x16(16, 0x3c00), y16(12, 0x1234);
  const uint16_t* x16_odd =
      reinterpret_cast<const uint16_t*>(reinterpret_cast<const char*>(x16.data()) + 1);
  Snapshot s16;
  s16.Add(y16, "y").AddLayer(layer);
  EXPECT_REJECTED_IN_CHILD(s16, Names({"x", "aligned"}),
                           layer.Forward(x16_odd, y16.data(), DType::kFloat16, {4, 3}, true));
  // The low-level calls check their tensors the same way.
  const Geometry g = Geometry::Dense(4, 3, 1);
  std::vector<double> mean(3, 7.0), variance(3, 7.0);
  Snapshot sm;
  sm.Add(mean, "mean").Add(variance, "variance");
  EXPECT_REJECTED_IN_CHILD(sm, Names({"x", "aligned"}),
                           BatchMoments(x, g, mean.data(), variance.data()));
  const std::vector<float> hi(3, 0.0f), scale(3, 1.0f), shift(3, 0.0f);
  NormalizeParams p;
  p.mean_hi = hi.data();
  p.scale = scale.data();
  p.shift = shift.data();
  EXPECT_REJECTED_IN_CHILD(s, Names({"x", "aligned"}), Normalize(x, y.data(), g, p));
  EXPECT_REJECTED_IN_CHILD(s, Names({"y", "aligned"}), Normalize(storage.data(), y_odd, g, p));
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
  // Touching but not overlapping is fine.
  ++g_cases;
  EXPECT_NO_THROW(Normalize(buffer.data(), buffer.data() + 12, g, p));
}

// The residual of a fused add may be y itself (y += bn(x)) or any other
// buffer; overlapping y partially would read sums already written. A residual
// not aligned to its element is rejected like x and y.
TEST_F(BadInput, ResidualOverlappingTheOutputOrMisaligned) {
  const Geometry g = Geometry::Dense(4, 3, 1);
  const std::vector<float> hi(3, 0.0f), scale(3, 2.0f), shift(3, 1.0f);
  std::vector<float> x = Ramp(12), buffer = Ramp(24);
  NormalizeParams p;
  p.mean_hi = hi.data();
  p.scale = scale.data();
  p.shift = shift.data();
  Snapshot s;
  s.Add(buffer, "the shared buffer");
  NormalizeParams ahead = p;
  ahead.residual = buffer.data() + 1;
  EXPECT_REJECTED(s, Names({"residual", "overlap"}), Normalize(x.data(), buffer.data(), g, ahead));
  NormalizeParams behind = p;
  behind.residual = buffer.data();
  EXPECT_REJECTED(s, Names({"residual", "overlap"}),
                  Normalize(x.data(), buffer.data() + 11, g, behind));
  // In place and disjoint are fine.
  ++g_cases;
  NormalizeParams same = p;
  same.residual = buffer.data();
  EXPECT_NO_THROW(Normalize(x.data(), buffer.data(), g, same));
  NormalizeParams apart = p;
  apart.residual = buffer.data() + 12;
  EXPECT_NO_THROW(Normalize(x.data(), buffer.data(), g, apart));

  std::vector<float> y(12, 9.0f);
  std::vector<char> bytes(64);
  NormalizeParams odd = p;
  odd.residual = bytes.data() + 1;
  Snapshot sy;
  sy.Add(y, "y");
  EXPECT_REJECTED_IN_CHILD(sy, Names({"residual", "aligned"}),
                           Normalize(x.data(), y.data(), g, odd));
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
  BatchNorm four = TrainedLayer(o, {2, 4});
  Snapshot s4;
  s4.AddLayer(four);
  const std::string expected = " values; expected 4 (the parameter shape [4])";
  EXPECT_REJECTED_WITH_MESSAGE(s4, "gamma has 3" + expected, four.set_gamma({1, 2, 3}));
  EXPECT_REJECTED_WITH_MESSAGE(s4, "beta has 0" + expected, four.set_beta({}));
  EXPECT_REJECTED_WITH_MESSAGE(s4, "moving_mean has 1" + expected, four.set_moving_mean({1}));
  EXPECT_REJECTED_WITH_MESSAGE(s4, "moving_variance has 5" + expected,
                               four.set_moving_variance(std::vector<float>(5)));
  EXPECT_REJECTED_WITH_MESSAGE(s4, "moving_stddev has 5" + expected,
                               four.set_moving_stddev(std::vector<float>(5)));
  EXPECT_REJECTED_WITH_MESSAGE(s4, "renorm_mean has 5" + expected,
                               four.set_renorm_mean(std::vector<float>(5)));
  EXPECT_REJECTED_WITH_MESSAGE(s4, "renorm_stddev has 5" + expected,
                               four.set_renorm_stddev(std::vector<float>(5)));
  Options multi;
  multi.axis = {1, 2};
  BatchNorm grid(multi);
  grid.Build({2, 2, 3});
  Snapshot sg;
  sg.AddLayer(grid);
  EXPECT_REJECTED_WITH_MESSAGE(sg, "gamma has 1 values; expected 6 (the parameter shape [2, 3])",
                               grid.set_gamma({1}));
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
  EXPECT_REJECTED_WITH_MESSAGE(s, "gamma does not exist with scale=false", layer.gamma());
  EXPECT_REJECTED_WITH_MESSAGE(s, "beta does not exist with center=false", layer.beta());
  EXPECT_REJECTED_WITH_MESSAGE(s, "gamma does not exist with scale=false", layer.set_gamma({1.0f}));
  EXPECT_REJECTED_WITH_MESSAGE(s, "beta does not exist with center=false", layer.set_beta({1.0f}));
  const std::string not_built =
      " does not exist yet: the layer is not built (call Build or Forward first)";
  EXPECT_REJECTED_WITH_MESSAGE(s, "gamma" + not_built, unbuilt.gamma());
  EXPECT_REJECTED_WITH_MESSAGE(s, "beta" + not_built, unbuilt.beta());
  EXPECT_REJECTED_WITH_MESSAGE(s, "moving_mean" + not_built, unbuilt.moving_mean());
  EXPECT_REJECTED_WITH_MESSAGE(s, "moving_variance" + not_built, unbuilt.moving_variance());
  EXPECT_REJECTED_WITH_MESSAGE(s, "gamma" + not_built, unbuilt.set_gamma({1}));
  EXPECT_REJECTED_WITH_MESSAGE(s, "moving_variance" + not_built, unbuilt.set_moving_variance({1}));
  EXPECT_REJECTED_WITH_MESSAGE(s, "parameter_shape is not known yet: the layer is not built",
                               unbuilt.parameter_shape());
  EXPECT_REJECTED_WITH_MESSAGE(s, "fused is resolved at build: the layer is not built",
                               unbuilt.fused());
  EXPECT_FALSE(unbuilt.built());
  // The renorm variables exist only with renorm.
  BatchNorm plain = TrainedLayer(Options(), {2, 3});
  Snapshot sp;
  sp.AddLayer(plain);
  const std::vector<float> ones(3, 1.0f);
  const std::string renorm_only = " exists only with renorm=true";
  EXPECT_REJECTED_WITH_MESSAGE(sp, "moving_stddev" + renorm_only, plain.moving_stddev());
  EXPECT_REJECTED_WITH_MESSAGE(sp, "renorm_mean" + renorm_only, plain.renorm_mean());
  EXPECT_REJECTED_WITH_MESSAGE(sp, "renorm_stddev" + renorm_only, plain.renorm_stddev());
  EXPECT_REJECTED_WITH_MESSAGE(sp, "moving_stddev" + renorm_only, plain.set_moving_stddev(ones));
  EXPECT_REJECTED_WITH_MESSAGE(sp, "renorm_mean" + renorm_only, plain.set_renorm_mean(ones));
  EXPECT_REJECTED_WITH_MESSAGE(sp, "renorm_stddev" + renorm_only, plain.set_renorm_stddev(ones));
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
  EXPECT_REJECTED(s, Names({"channels is 0"}),
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
  // The batch norm's statistics are checked as Fold checks them.
  EXPECT_REJECTED(s, Names({"moving_mean"}),
                  FoldIntoWeights(weights.data(), {3, 8}, first, bias.data(), gamma.data(),
                                  beta.data(), nullptr, var.data(), 3, 1e-3f));
  EXPECT_REJECTED(s, Names({"moving_variance"}),
                  FoldIntoWeights(weights.data(), {3, 8}, first, bias.data(), gamma.data(),
                                  beta.data(), mean.data(), nullptr, 3, 1e-3f));
  const std::vector<float> negative_var = {1.0f, 1.0f, -0.25f};
  EXPECT_REJECTED(s, Names({"moving_variance[2]"}),
                  FoldIntoWeights(weights.data(), {3, 8}, first, bias.data(), gamma.data(),
                                  beta.data(), mean.data(), negative_var.data(), 3, 1e-3f));
  for (float e : {0.0f, -1e-3f, kNaN, kInf}) {
    EXPECT_REJECTED(s, Names({"epsilon"}), fold(weights.data(), {3, 8}, first, bias.data(), 3, e));
  }
  EXPECT_REJECTED(s, Names({"weight_shape", "rank"}),
                  fold(weights.data(), {3}, first, bias.data(), 3, 1e-3f));
  EXPECT_REJECTED(s, Names({"weight_shape[1] is 0"}),
                  fold(weights.data(), {3, 0}, first, bias.data(), 3, 1e-3f));
  EXPECT_REJECTED(s, Names({"weight_shape[1] is -8"}),
                  fold(weights.data(), {3, -8}, first, bias.data(), 3, 1e-3f));
  // The output channels of the weights against the batch norm's, in either layout.
  EXPECT_REJECTED_AS(s, ErrorCode::kShapeMismatch, Names({"weight_shape[1]", "output channels"}),
                     fold(weights.data(), {3, 8}, last, bias.data(), 3, 1e-3f));
  EXPECT_REJECTED_AS(s, ErrorCode::kShapeMismatch, Names({"weight_shape[0]", "output channels"}),
                     fold(weights.data(), {8, 3}, first, bias.data(), 3, 1e-3f));
  EXPECT_REJECTED(s, Names({"weight_shape[0] is 3", "expected 2"}),
                  fold(weights.data(), {3, 8}, first, bias.data(), 2, 1e-3f));
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

}  // namespace
}  // namespace bad_input
}  // namespace bnorm
