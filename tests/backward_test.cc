// SPDX-License-Identifier: Apache-2.0
// bnorm::BackwardReduce and bnorm::BackwardData on every supported target (the
// test parameter: --gtest_filter='*/avx2' runs one) against the float64
// reference: both layouts, odd sizes, unaligned and strided views, in place,
// every element type, ReLU/ReLU6 masks, |mean| >> std, thread counts,
// non-finite values and bad arguments. S1 and S2 must be within 1e-6 of
// Σ|g| and Σ|g·(x − μ)|, dx within 1e-5 of its channel's largest |dx|
// (plus, for 16-bit outputs, half a unit in the last place of the type).
#include "bnorm/backward.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "bnorm/error.hpp"
#include "bnorm/kernels.hpp"
#include "bnorm/targets.hpp"
#include "src/ops/streaming.h"
#include "tests/backward_problem.h"
#include "tests/target_test.h"
#include "tests/test_util.h"
#include "tools/common/random.h"

namespace bnorm {
namespace test {
namespace {

class BackwardTest : public TargetTest {};
BNORM_INSTANTIATE_TARGET_TEST_SUITE_P(BackwardTest);

// The heavy cases run on the best target and the fallback only, as the other
// kernels' tests do: together they cover the widest vectors and one lane.
class BackwardHeavyTest : public TargetTest {};
BNORM_INSTANTIATE_BEST_AND_FALLBACK_TARGET_TEST_SUITE_P(BackwardHeavyTest);

// Channels 1, 3, 17 and rows or runs of 1, 3, 17 and 1000003 values, both layouts.
std::vector<Geometry> OddSizes() {
  std::vector<Geometry> sizes;
  for (size_t rows : {1, 3, 17, 1000003}) {
    for (size_t channels : {1, 3, 17}) {
      if (rows == 1000003 && channels == 17) continue;  // 17 M values add no new path
      sizes.push_back(Geometry::Dense(rows, channels, 1));
    }
  }
  for (size_t outer : {1, 3, 17}) {
    for (size_t channels : {1, 3, 17}) {
      for (size_t inner : {3, 17, 197}) sizes.push_back(Geometry::Dense(outer, channels, inner));
    }
  }
  sizes.push_back(Geometry::Dense(1, 3, 1000003));
  sizes.push_back(Geometry::Dense(85, 17, 3));   // run tails only, packed
  sizes.push_back(Geometry::Dense(64, 3, 196));  // 14x14 maps
  sizes.push_back(Geometry::Dense(300, 37, 1));  // sub-blocks and channel tails
  return sizes;
}

TEST_P(BackwardTest, OddSizesMatchReference) {
  uint64_t seed = kSeed;
  for (const Geometry& g : OddSizes()) {
    Case c;
    c.g = g;
    c.seed = ++seed;
    ExpectMatchesReference(c);
  }
}

TEST_P(BackwardTest, LargeMeanTinyStdMatchesReference) {
  for (const Geometry& g :
       {Geometry::Dense(300, 17, 1), Geometry::Dense(5, 3, 1031), Geometry::Dense(4096, 3, 1)}) {
    Case c;
    c.g = g;
    c.x_mean = 1e4;
    c.x_std = 1e-2;
    ExpectMatchesReference(c);
  }
}

TEST_P(BackwardHeavyTest, ChannelWithLargeMeanMatchesReference) {
  for (const Geometry& g :
       {Geometry::Dense(kHeavyValues, 1, 1), Geometry::Dense(kHeavyValues / 10000, 1, 10000)}) {
    Case c;
    c.g = g;
    c.x_mean = 1e4;
    c.x_std = 1e-2;
    ExpectMatchesReference(c);
  }
}

// x, dy and dx each one element past a 64-byte boundary, or all three.
TEST_P(BackwardTest, UnalignedPointersMatchReference) {
  for (DType type : {DType::kFloat32, DType::kBFloat16}) {
    for (const Geometry& g :
         {Geometry::Dense(37, 19, 1), Geometry::Dense(5, 3, 37), Geometry::Dense(3, 2, 1031)}) {
      for (const std::array<size_t, 3>& offsets :
           {std::array<size_t, 3>{1, 0, 0}, std::array<size_t, 3>{0, 1, 0},
            std::array<size_t, 3>{0, 0, 1}, std::array<size_t, 3>{1, 1, 1}}) {
        Case c;
        c.g = g;
        c.type = type;
        c.x_offset = offsets[0];
        c.dy_offset = offsets[1];
        c.dx_offset = offsets[2];
        ExpectMatchesReference(c);
      }
    }
  }
}

// Channel slices of wider rows, padded channels, one-value runs of a strided
// channel axis and ghost batches (groups of rows): dx only in the view.
TEST_P(BackwardTest, StridedViewsMatchReferenceAndWriteOnlyTheView) {
  std::vector<Geometry> views;
  Geometry slice = Geometry::Dense(33, 5, 1);
  slice.row_stride = 12;
  views.push_back(slice);
  Geometry padded = Geometry::Dense(3, 4, 21);
  padded.channel_stride = 30;
  padded.row_stride = 125;
  views.push_back(padded);
  Geometry strided_channels = Geometry::Dense(17, 3, 1);
  strided_channels.channel_stride = 2;
  strided_channels.row_stride = 7;
  views.push_back(strided_channels);
  Geometry ghost_rows = Geometry::Dense(6, 6, 1);  // [24, 6], ghost 1 of 4
  ghost_rows.row_stride = 24;
  views.push_back(ghost_rows);
  Geometry ghost_samples = Geometry::Dense(20, 3, 1);  // 8 samples of 5x3, ghost of 2
  ghost_samples.group_rows = 5;
  ghost_samples.group_stride = 30;
  views.push_back(ghost_samples);
  Geometry ghost_maps = Geometry::Dense(4, 3, 10);  // NCHW [8, 3, 10], ghost of 2
  ghost_maps.row_stride = 60;
  ghost_maps.group_rows = 4;
  ghost_maps.group_stride = 240;
  views.push_back(ghost_maps);
  for (const Geometry& g : views) {
    for (DType type : {DType::kFloat32, DType::kFloat16}) {
      Case c;
      c.g = g;
      c.type = type;
      ExpectMatchesReference(c);
    }
  }
}

// dx == dy gives bit for bit the out-of-place result.
TEST_P(BackwardTest, InPlaceMatchesOutOfPlaceBitwise) {
  for (const Geometry& g :
       {Geometry::Dense(7, 47, 1), Geometry::Dense(3, 2, 47), Geometry::Dense(300, 17, 1)}) {
    for (DType type : {DType::kFloat32, DType::kBFloat16}) {
      Case c;
      c.g = g;
      c.type = type;
      c.mask = Activation::kRelu;
      c.dy_offset = 1;
      SCOPED_TRACE(Describe(c));
      Problem p(c);
      Tensor out(type, g, 1);
      BackwardData(p.x.data(), p.dy.data(), out.data(), type, g, p.data_params(c.mask));
      BackwardData(p.x.data(), p.dy.data(), p.dy.data(), type, g, p.data_params(c.mask));
      EXPECT_TRUE(DxNear(p, p.dy, c));
      size_t differing = 0;
      ForEachElement(g, [&](size_t, size_t i) { differing += out.Bits(i) != p.dy.Bits(i); });
      EXPECT_EQ(differing, 0u);
    }
  }
}

TEST_P(BackwardTest, HalfPrecisionTypesMatchReference) {
  for (DType type : {DType::kBFloat16, DType::kFloat16}) {
    for (const Geometry& g : {Geometry::Dense(255, 17, 1), Geometry::Dense(3, 3, 17),
                              Geometry::Dense(64, 3, 196), Geometry::Dense(1, 1, 100003)}) {
      Case c;
      c.g = g;
      c.type = type;
      ExpectMatchesReference(c);
    }
  }
}

TEST_P(BackwardTest, ReluMasksMatchReference) {
  for (Activation mask : {Activation::kRelu, Activation::kRelu6}) {
    for (DType type : {DType::kFloat32, DType::kBFloat16}) {
      for (const Geometry& g : {Geometry::Dense(300, 17, 1), Geometry::Dense(3, 3, 17),
                                Geometry::Dense(85, 17, 3), Geometry::Dense(4, 3, 1031)}) {
        Case c;
        c.g = g;
        c.type = type;
        c.mask = mask;
        ExpectMatchesReference(c);
      }
    }
  }
}

// Outputs beyond the streaming threshold (non-temporal stores), dx unaligned
// so that runs reach the alignment lane by lane.
TEST_P(BackwardTest, StreamedOutputsMatchReference) {
  const size_t floats = StreamingThresholdBytes() / sizeof(float) + 1;
  Case rows;
  rows.g = Geometry::Dense(floats / 64 + 1, 64, 1);
  ExpectMatchesReference(rows);
  Case runs;
  runs.g = Geometry::Dense(4, 2, floats / 8 + 1);
  runs.dx_offset = 1;
  ExpectMatchesReference(runs);
}

// Streamed dx (x, dy and dx beyond the caches) is bitwise the dx of 1/8
// slices that stay cached, at any alignment of dx: contiguous rows of whole
// vectors stream in vectors shifted to dx's alignment, other rows and runs
// reach the alignment lane by lane. Nothing outside dx is written.
TEST_P(BackwardTest, StreamedDxIsBitwiseTheCachedDxAtAnyAlignment) {
  constexpr size_t kSlices = 8;
  // Tensors beyond the caches take minutes per target under qemu.
  if (!kHeavyTests) GTEST_SKIP() << "tensors beyond the caches: heavy tests are off in this build";
  const std::vector<std::pair<size_t, size_t>> shapes = {{64, 1}, {100, 1}, {16, 1001}, {64, 49}};
  for (const auto& [channels, inner] : shapes) {
    const size_t rows = StreamingSliceRows(channels * inner * sizeof(float));
    Case c;
    c.g = Geometry::Dense(kSlices * rows, channels, inner);
    c.mask = Activation::kRelu;
    const Geometry slice = Geometry::Dense(rows, channels, inner);
    const size_t n = slice.elements();
    Problem p(c);
    const BackwardDataParams params = p.data_params(c.mask);
    Tensor cached(c.type, c.g, 0);
    const auto at = [n](void* base, size_t s) { return static_cast<float*>(base) + s * n; };
    for (size_t s = 0; s < kSlices; ++s) {
      BackwardDataParams part = params;
      part.y = at(p.y.data(), s);
      BackwardData(at(p.x.data(), s), at(p.dy.data(), s), at(cached.data(), s), c.type, slice,
                   part);
    }
    for (size_t offset : {0, 1, 3, 4}) {
      SCOPED_TRACE(Describe(c) + ", dx offset " + std::to_string(offset));
      Tensor dx(c.type, c.g, offset);
      BackwardData(p.x.data(), p.dy.data(), dx.data(), c.type, c.g, params);
      bool same = true;
      ForEachElement(c.g, [&](size_t, size_t i) { same = same && dx.Bits(i) == cached.Bits(i); });
      EXPECT_TRUE(same);
      EXPECT_TRUE(dx.OnlyViewWritten(c.g));
    }
  }
}

// The channels-first reduce walks up to 16 channels of a block (or tile)
// together along the rows, and the data pass rows of short runs as spans;
// every channel's sums and dx must be bitwise those of its strided slice
// alone: short runs with tails (7x7, 14x14), runs of 5 and 1, long runs
// split into blocks (56x56) and more channels than one walk takes, with the
// ReLU6 mask.
TEST_P(BackwardTest, ChannelsWalkedTogetherMatchEachChannelAlone) {
  const std::vector<std::pair<size_t, size_t>> cases = {{64, 49}, {9, 196}, {40, 5}, {7, 1},
                                                        {24, 3136}, {3, 1043}};
  for (const auto& [n, inner] : cases) {
    Case c;
    c.g = Geometry::Dense(n, 19, inner);
    c.mask = Activation::kRelu6;
    SCOPED_TRACE(Describe(c));
    Problem p(c);
    const size_t C = c.g.channels;
    std::vector<double> s1(C), s2(C);
    BackwardReduce(p.x.data(), p.dy.data(), c.type, c.g, p.reduce_params(c.mask), s1.data(),
                   s2.data());
    const Geometry alone =
        PlanStridedGeometry({static_cast<int64_t>(n), 1, static_cast<int64_t>(inner)},
                            {static_cast<int64_t>(C * inner), static_cast<int64_t>(inner), 1}, {1});
    for (size_t ch = 0; ch < C; ++ch) {
      const size_t offset = ch * inner * sizeof(float);
      const BackwardReduceParams params{p.hi.data() + ch, p.lo.data() + ch, c.mask,
                                        static_cast<const char*>(p.y.data()) + offset};
      double one1 = 0.0, one2 = 0.0;
      BackwardReduce(static_cast<const char*>(p.x.data()) + offset,
                     static_cast<const char*>(p.dy.data()) + offset, c.type, alone, params, &one1,
                     &one2);
      EXPECT_TRUE(SameBits(std::vector<double>{s1[ch], s2[ch]}, std::vector<double>{one1, one2}))
          << "channel " << ch;
    }
    // The data pass walks rows of short runs as spans: dx bitwise as per
    // channel (run by run).
    std::vector<float> together(c.g.elements()), apart(c.g.elements());
    BackwardData(p.x.data(), p.dy.data(), together.data(), c.type, c.g, p.data_params(c.mask));
    for (size_t ch = 0; ch < C; ++ch) {
      const size_t offset = ch * inner * sizeof(float);
      const BackwardDataParams params{p.hi.data() + ch, p.lo.data() + ch, p.k.data() + ch,
                                      p.a.data() + ch,  p.b.data() + ch,  c.mask,
                                      static_cast<const char*>(p.y.data()) + offset};
      BackwardData(static_cast<const char*>(p.x.data()) + offset,
                   static_cast<const char*>(p.dy.data()) + offset, apart.data() + ch * inner,
                   c.type, alone, params);
    }
    EXPECT_TRUE(SameBits(together, apart));
  }
}

// The sums and dx are bitwise the same serially and on 1, 2 or 3 threads.
TEST_P(BackwardTest, ResultsDoNotDependOnTheThreadCount) {
  for (const Geometry& g : {Geometry::Dense(4096, 96, 1), Geometry::Dense(8, 17, 5000),
                            Geometry::Dense(1, 3, 300001)}) {
    Case c;
    c.g = g;
    c.mask = Activation::kRelu6;
    SCOPED_TRACE(Describe(c));
    Problem p(c);
    struct Result {
      std::vector<double> s1, s2;
      std::vector<uint32_t> dx;  // the elements' bits, in view order
    };
    const auto run = [&](const Execution& exec) {
      Result r{std::vector<double>(g.channels), std::vector<double>(g.channels), {}};
      BackwardReduce(p.x.data(), p.dy.data(), c.type, g, p.reduce_params(c.mask), r.s1.data(),
                     r.s2.data(), exec);
      Tensor dx(c.type, g, 0);
      BackwardData(p.x.data(), p.dy.data(), dx.data(), c.type, g, p.data_params(c.mask), exec);
      ForEachElement(g, [&](size_t, size_t i) { r.dx.push_back(dx.Bits(i)); });
      return r;
    };
    const Result serial = run(Execution::Serial());
    EXPECT_TRUE(SumsNear(p, serial.s1, serial.s2));
    const auto expect_same = [&](const Result& r, const std::string& how) {
      EXPECT_TRUE(SameBits(serial.s1, r.s1) && SameBits(serial.s2, r.s2)) << how;
      EXPECT_TRUE(SameBits(serial.dx, r.dx)) << how;
    };
    for (int threads : {1, 2, 3}) {
      tbb::task_arena arena(threads);
      expect_same(run(Execution::Parallel(&arena)), std::to_string(threads) + " threads");
    }
    expect_same(run(Execution::Parallel()), "the global arena");
  }
}

// A NaN in dy makes its channel's sums NaN and only its own dx NaN; an Inf in
// dy makes S1 infinite; an Inf in x makes S2 and that element's dx infinite.
// Other channels are exact. A NaN where the mask is zero is masked out.
TEST_P(BackwardTest, NonFiniteValuesPropagateAsIeeeSays) {
  const float kNaN = std::numeric_limits<float>::quiet_NaN();
  const float kInf = std::numeric_limits<float>::infinity();
  for (const Geometry& g : {Geometry::Dense(40, 17, 1), Geometry::Dense(3, 5, 37)}) {
    Case c;
    c.g = g;
    c.mask = Activation::kRelu;
    SCOPED_TRACE(Describe(c));
    Problem p(c);
    const size_t row = g.RowOffset(1);
    const size_t nan_at = row, inf_at = row + 1 * g.ChannelStride(),
                 x_inf_at = row + 2 * g.ChannelStride();
    const size_t masked_at = row + 3 * g.ChannelStride();
    p.y.Set(nan_at, 1.0f);
    p.y.Set(inf_at, 1.0f);
    p.y.Set(x_inf_at, 1.0f);
    p.y.Set(masked_at, -1.0f);
    p.dy.Set(nan_at, kNaN);
    p.dy.Set(inf_at, kInf);
    p.dy.Set(x_inf_at, 0.5f);
    p.x.Set(x_inf_at, kInf);
    p.dy.Set(masked_at, kNaN);
    std::vector<double> variance(g.channels, 1.0);
    testing::Random rng(kSeed);
    p.SetCoefficients(c, variance, &rng);
    std::vector<double> s1(g.channels), s2(g.channels);
    BackwardReduce(p.x.data(), p.dy.data(), c.type, g, p.reduce_params(c.mask), s1.data(),
                   s2.data());
    EXPECT_TRUE(std::isnan(s1[0]) && std::isnan(s2[0]));
    EXPECT_TRUE(std::isinf(s1[1]) && s1[1] > 0);
    EXPECT_TRUE(std::isfinite(s1[2]) && std::isinf(s2[2]) && s2[2] > 0);
    for (size_t ch = 3; ch < g.channels; ++ch) {
      EXPECT_NEAR(s1[ch], p.s1[ch], kSumTolerance * p.abs1[ch]) << "channel " << ch;
      EXPECT_NEAR(s2[ch], p.s2[ch], kSumTolerance * p.abs2[ch]) << "channel " << ch;
    }
    // Finite coefficients: only the non-finite elements' dx are non-finite.
    BackwardDataParams params = p.data_params(c.mask);
    std::vector<float> finite_a(p.a), finite_b(p.b);
    for (size_t ch = 0; ch < 3; ++ch) finite_a[ch] = 0.25f, finite_b[ch] = 0.5f;
    params.a = finite_a.data();
    params.b = finite_b.data();
    Tensor dx(c.type, g, 0);
    BackwardData(p.x.data(), p.dy.data(), dx.data(), c.type, g, params);
    ForEachElement(g, [&](size_t ch, size_t i) {
      const float v = dx.Get(i);
      if (i == nan_at) {
        EXPECT_TRUE(std::isnan(v));
      } else if (i == inf_at || i == x_inf_at) {
        EXPECT_TRUE(std::isinf(v)) << "element " << i;
      } else if (ch >= 3) {
        EXPECT_NEAR(v, p.dx[i], kDxTolerance * p.scale[ch]) << "element " << i;
      } else {
        EXPECT_TRUE(std::isfinite(v)) << "element " << i;
      }
    });
  }
}

// No values per channel: the sums are 0; dx of an empty tensor writes nothing.
TEST_P(BackwardTest, EmptyBatchGivesZeroSums) {
  for (const Geometry& g : {Geometry::Dense(0, 3, 1), Geometry::Dense(0, 3, 5)}) {
    std::vector<double> s1(3, -1.0), s2(3, -1.0);
    BackwardReduce(nullptr, nullptr, DType::kFloat32, g, BackwardReduceParams{}, s1.data(),
                   s2.data());
    EXPECT_EQ(s1, std::vector<double>(3, 0.0));
    EXPECT_EQ(s2, std::vector<double>(3, 0.0));
    BackwardData(nullptr, nullptr, nullptr, DType::kFloat32, g, BackwardDataParams{});
  }
}

// Every bad argument throws bnorm::Error naming it and leaves the outputs as
// they were.
TEST_P(BackwardTest, BadArgumentsThrowNamingTheArgument) {
  Case c;
  c.g = Geometry::Dense(9, 5, 1);
  Problem p(c);
  const Geometry& g = c.g;
  std::vector<double> s1(5, -1.0), s2(5, -1.0);
  Tensor dx(c.type, g, 0);
  const auto expect_reduce_error = [&](const std::string& name, const void* x, const void* dy,
                                       const BackwardReduceParams& params, double* a, double* b) {
    SCOPED_TRACE(name);
    try {
      BackwardReduce(x, dy, c.type, g, params, a, b);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), ::testing::ContainsRegex("^" + name));
    }
    EXPECT_EQ(s1, std::vector<double>(5, -1.0));
    EXPECT_EQ(s2, std::vector<double>(5, -1.0));
  };
  const BackwardReduceParams good = p.reduce_params(Activation::kRelu);
  const char* xb = static_cast<const char*>(p.x.data());
  expect_reduce_error("x is null", nullptr, p.dy.data(), good, s1.data(), s2.data());
  expect_reduce_error("dy is null", p.x.data(), nullptr, good, s1.data(), s2.data());
  expect_reduce_error("x \\(0x[0-9a-f]+\\) is not aligned", xb + 1, p.dy.data(), good, s1.data(),
                      s2.data());
  expect_reduce_error("sum_dy is null", p.x.data(), p.dy.data(), good, nullptr, s2.data());
  expect_reduce_error("sum_dy_xmu is null", p.x.data(), p.dy.data(), good, s1.data(), nullptr);
  expect_reduce_error("sum_dy and sum_dy_xmu overlap", p.x.data(), p.dy.data(), good, s1.data(),
                      s1.data() + 2);
  BackwardReduceParams bad = good;
  bad.mean_hi = nullptr;
  expect_reduce_error("mean_hi is null", p.x.data(), p.dy.data(), bad, s1.data(), s2.data());
  bad = good;
  bad.mean_lo = nullptr;
  expect_reduce_error("mean_lo is null", p.x.data(), p.dy.data(), bad, s1.data(), s2.data());
  bad = good;
  bad.y = nullptr;
  expect_reduce_error("y is null", p.x.data(), p.dy.data(), bad, s1.data(), s2.data());
  bad.activation = static_cast<Activation>(7);
  expect_reduce_error("activation 7", p.x.data(), p.dy.data(), bad, s1.data(), s2.data());

  const std::vector<uint8_t> before = dx.bytes();
  const auto expect_data_error = [&](const std::string& name, const void* x, const void* dy,
                                     void* out, const BackwardDataParams& params) {
    SCOPED_TRACE(name);
    try {
      BackwardData(x, dy, out, c.type, g, params);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), ::testing::ContainsRegex("^" + name));
    }
    EXPECT_TRUE(SameBits(before, dx.bytes()));
  };
  const BackwardDataParams data = p.data_params(Activation::kRelu);
  char* dxb = static_cast<char*>(dx.data());
  expect_data_error("x is null", nullptr, p.dy.data(), dx.data(), data);
  expect_data_error("dy is null", p.x.data(), nullptr, dx.data(), data);
  expect_data_error("dx is null", p.x.data(), p.dy.data(), nullptr, data);
  expect_data_error("dx \\(0x[0-9a-f]+\\) is not aligned", p.x.data(), p.dy.data(), dxb + 2, data);
  for (const char* name : {"mean_hi", "mean_lo", "k", "a", "b"}) {
    BackwardDataParams missing = data;
    const std::string n = name;
    (n == "mean_hi"   ? missing.mean_hi
     : n == "mean_lo" ? missing.mean_lo
     : n == "k"       ? missing.k
     : n == "a"       ? missing.a
                      : missing.b) = nullptr;
    expect_data_error(n + " is null", p.x.data(), p.dy.data(), dx.data(), missing);
  }
  BackwardDataParams no_y = data;
  no_y.y = nullptr;
  expect_data_error("y is null", p.x.data(), p.dy.data(), dx.data(), no_y);
  // Overlaps: dx one element into dy, x or y (the copy of dx's bytes stays put).
  Tensor shared(c.type, Geometry::Dense(10, 5, 1), 0);
  char* sb = static_cast<char*>(shared.data());
  const std::vector<uint8_t> shared_before = shared.bytes();
  for (const char* name : {"dy", "x", "y"}) {
    const std::string n = name;
    BackwardDataParams params = data;
    const void* x = p.x.data();
    const void* dy = p.dy.data();
    if (n == "y") params.y = sb;
    if (n == "x") x = sb;
    if (n == "dy") dy = sb;
    SCOPED_TRACE(n);
    try {
      BackwardData(x, dy, sb + 4 * 5, c.type, g, params);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), ::testing::ContainsRegex(
                                "^" + n + " \\(0x[0-9a-f]+\\) and dx \\(0x[0-9a-f]+\\) overlap"));
    }
    EXPECT_TRUE(SameBits(shared_before, shared.bytes()));
  }
}

}  // namespace
}  // namespace test
}  // namespace bnorm
