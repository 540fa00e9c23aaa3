// SPDX-License-Identifier: Apache-2.0
// bnorm-run end to end: the test writes small .npy files, runs the binary and
// checks its files against numbers computed by hand (the inputs are chosen so
// that every mean, variance and square root is exact).
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "src/io/npy.h"
#include "bnorm/targets.hpp"
#include "gtest/gtest.h"

namespace bnorm {
namespace {

using npy::ElementType;

struct Result {
  int exit_code = -1;
  std::string err;
};

class BnormRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/bnorm_run_test.XXXXXX";
    ASSERT_NE(mkdtemp(&pattern[0]), nullptr);
    dir_ = pattern;
    out_ = dir_ + "/out";
  }
  void TearDown() override { RemoveTree(dir_); }

  static void RemoveTree(const std::string& path) {
    if (DIR* d = opendir(path.c_str())) {
      while (dirent* e = readdir(d)) {
        const std::string name = e->d_name;
        if (name != "." && name != "..") RemoveTree(path + "/" + name);
      }
      closedir(d);
      rmdir(path.c_str());
    } else {
      std::remove(path.c_str());
    }
  }

  // Writes `values` as `name` (in the temp dir) with this shape and dtype.
  std::string Write(const std::string& name, const std::vector<float>& values,
                    const std::vector<int64_t>& shape,
                    ElementType dtype = ElementType::kFloat32) {
    const std::string path = dir_ + "/" + name;
    npy::Write(path, npy::FromFloats(values, shape, dtype));
    return path;
  }

  npy::Array ReadOut(const std::string& name) const {
    return npy::Read(out_ + "/" + name);
  }
  std::vector<float> Out(const std::string& name) const {
    return npy::ToFloats(ReadOut(name));
  }

  std::set<std::string> OutFiles() const {
    std::set<std::string> names;
    if (DIR* d = opendir(out_.c_str())) {
      while (dirent* e = readdir(d)) {
        const std::string name = e->d_name;
        if (name != "." && name != "..") names.insert(name);
      }
      closedir(d);
    }
    return names;
  }

  bool OutExists() const {
    struct stat st;
    return stat(out_.c_str(), &st) == 0;
  }

  // Runs bnorm-run with `args` plus --out (unless `with_out` is false).
  Result Run(const std::string& args, bool with_out = true) const {
    const std::string err_path = dir_ + "/stderr.txt";
    const std::string command =
        std::string(BNORM_TEST_LAUNCHER) + "'" + BNORM_TOOLS_DIR + "/bnorm-run' " + args +
        (with_out ? " --out '" + out_ + "'" : "") + " > '" + dir_ +
        "/stdout.txt' 2> '" + err_path + "'";
    const int status = std::system(command.c_str());
    Result result;
    if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    std::ifstream in(err_path);
    result.err.assign(std::istreambuf_iterator<char>(in),
                      std::istreambuf_iterator<char>());
    return result;
  }

  std::string Stdout() const {
    std::ifstream in(dir_ + "/stdout.txt");
    return std::string(std::istreambuf_iterator<char>(in),
                       std::istreambuf_iterator<char>());
  }

  // A failing run: this exit status, one line on stderr mentioning `mention`,
  // and nothing written into the output directory.
  void ExpectFailure(const std::string& args, int exit_code,
                     const std::string& mention) {
    const Result r = Run(args);
    EXPECT_EQ(r.exit_code, exit_code) << args << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.back(), '\n') << r.err;
    EXPECT_NE(r.err.find(mention), std::string::npos) << r.err;
    EXPECT_TRUE(OutFiles().empty()) << args;
  }

  std::string dir_, out_;
};

void ExpectNear(const std::vector<float>& actual,
                const std::vector<float>& expected, float tolerance = 1e-6f) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(actual[i], expected[i], tolerance) << "element " << i;
  }
}

// Two channels of a batch of four whose statistics are exact: channel 0 has
// mean 2 and variance 2.25, channel 1 mean -4 and variance 2.25. With
// epsilon 1.75, sqrt(var + eps) = 2, so x-hat = +-0.75.
const std::vector<float> kBatch = {0.5f, -5.5f, 3.5f, -2.5f,
                                   0.5f, -2.5f, 3.5f, -5.5f};
const std::vector<float> kBatchHat = {-0.75f, -0.75f, 0.75f, 0.75f,
                                      -0.75f, 0.75f,  0.75f, -0.75f};

TEST_F(BnormRunTest, HelpPrintsTheContractAndExitsZero) {
  const Result r = Run("--help", false);
  EXPECT_EQ(r.exit_code, 0);
  const std::string text = Stdout();
  EXPECT_NE(text.find("usage: bnorm-run"), std::string::npos);
  EXPECT_NE(text.find("float64 is computed via"), std::string::npos);
  EXPECT_NE(text.find("Exit status"), std::string::npos);
  EXPECT_FALSE(OutExists());
}

TEST_F(BnormRunTest, SynchronizedAloneIsOneRankWithItsRankInThePaths) {
  // One process is rank 0 of one (with MPI in the build, a singleton job):
  // {rank} in --x and --out becomes 0, and the results are the unsynchronized
  // layer's, bitwise.
  Write("x_0.npy", kBatch, {4, 2});
  const std::string args = " --training true --steps 2 --momentum 0.5";
  ASSERT_EQ(Run("--x '" + dir_ + "/x_0.npy'" + args).exit_code, 0);
  const std::vector<float> y = Out("y.npy"), mean = Out("moving_mean.npy");
  const Result r = Run("--synchronized true --x '" + dir_ + "/x_{rank}.npy'" + args + " --out '" +
                           dir_ + "/out_{rank}'",
                       false);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<float> sync_y = npy::ToFloats(npy::Read(dir_ + "/out_0/y.npy"));
  const std::vector<float> sync_mean = npy::ToFloats(npy::Read(dir_ + "/out_0/moving_mean.npy"));
  EXPECT_EQ(sync_y, y);
  EXPECT_EQ(sync_mean, mean);
}

TEST_F(BnormRunTest, InferenceUsesTheMovingStatistics) {
  // sqrt(moving_variance + 0.25) is 2 and 1.
  const std::string x = Write("x.npy", {1, 2, 3, -1, 5, 0}, {3, 2});
  const std::string args =
      "--x " + x + " --moving-mean " + Write("mm.npy", {1, -1}, {2}) +
      " --moving-variance " + Write("mv.npy", {3.75f, 0.75f}, {2}) +
      " --gamma " + Write("g.npy", {2, 1}, {2}) + " --beta " +
      Write("b.npy", {0.5f, 0}, {2}) + " --epsilon 0.25";
  // Unset --training is Keras' default (inference); trainable=false forces it.
  for (const char* extra :
       {"", " --training false", " --training true --trainable false"}) {
    SCOPED_TRACE(extra);
    const Result r = Run(args + extra);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(OutFiles(), (std::set<std::string>{"y.npy", "moving_mean.npy",
                                                 "moving_variance.npy",
                                                 "gamma.npy", "beta.npy"}));
    const npy::Array y = ReadOut("y.npy");
    EXPECT_EQ(y.shape, (std::vector<int64_t>{3, 2}));
    ExpectNear(npy::ToFloats(y), {0.5f, 3, 2.5f, 0, 4.5f, 1});
    EXPECT_EQ(Out("moving_mean.npy"), (std::vector<float>{1, -1}));
    EXPECT_EQ(Out("moving_variance.npy"), (std::vector<float>{3.75f, 0.75f}));
    EXPECT_EQ(Out("gamma.npy"), (std::vector<float>{2, 1}));
    EXPECT_EQ(Out("beta.npy"), (std::vector<float>{0.5f, 0}));
  }
}

TEST_F(BnormRunTest, MissingStateTakesKerasInitialValues) {
  const Result r =
      Run("--x " + Write("x.npy", {0, 2, -4}, {3}) + " --axis 0 --epsilon 3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Inference with moving_mean 0, moving_variance 1, gamma 1, beta 0.
  ExpectNear(Out("y.npy"), {0, 1, -2});
  EXPECT_EQ(Out("moving_mean.npy"), (std::vector<float>{0, 0, 0}));
  EXPECT_EQ(Out("moving_variance.npy"), (std::vector<float>{1, 1, 1}));
  EXPECT_EQ(Out("gamma.npy"), (std::vector<float>{1, 1, 1}));
  EXPECT_EQ(Out("beta.npy"), (std::vector<float>{0, 0, 0}));
}

TEST_F(BnormRunTest, TrainingStepsUpdateMovingStatisticsByMomentum) {
  const Result r = Run(
      "--x " + Write("x.npy", kBatch, {4, 2}) + " --moving-mean " +
      Write("mm.npy", {0, 8}, {2}) + " --moving-variance " +
      Write("mv.npy", {6.25f, 10.25f}, {2}) + " --gamma " +
      Write("g.npy", {2, 1}, {2}) + " --beta " + Write("b.npy", {0, 1}, {2}) +
      " --epsilon 1.75 --momentum 0.5 --training true --steps 3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<float> expected(8);
  for (size_t i = 0; i < 8; ++i)
    expected[i] = i % 2 ? kBatchHat[i] + 1 : kBatchHat[i] * 2;
  ExpectNear(Out("y.npy"), expected);
  // After K steps toward a fixed batch statistic s: s + (initial - s) * 0.5^K.
  EXPECT_EQ(Out("moving_mean.npy"),
            (std::vector<float>{2 + (0 - 2) * 0.125f, -4 + 12 * 0.125f}));
  EXPECT_EQ(Out("moving_variance.npy"),
            (std::vector<float>{2.25f + 4 * 0.125f, 2.25f + 8 * 0.125f}));
  EXPECT_EQ(Out("gamma.npy"), (std::vector<float>{2, 1}));
}

TEST_F(BnormRunTest, FourDimensionalInputUsesTheFusedConvention) {
  // Shape (4, 1, 1, 2), axis -1: Keras auto-selects fused, whose moving
  // variance takes the Bessel-corrected 2.25 * 4 / 3 = 3; --fused false does
  // not.
  const std::string x = Write("x.npy", kBatch, {4, 1, 1, 2});
  const std::string args =
      "--x " + x + " --epsilon 1.75 --momentum 0 --training true";
  ASSERT_EQ(Run(args).exit_code, 0);
  ExpectNear(Out("moving_variance.npy"), {3, 3});
  ExpectNear(Out("y.npy"), kBatchHat);
  ASSERT_EQ(Run(args + " --fused false").exit_code, 0);
  ExpectNear(Out("moving_variance.npy"), {2.25f, 2.25f});
}

TEST_F(BnormRunTest, RenormWritesItsExtraState) {
  // stddev = sqrt(2.25 + 1.75) = 2; r and d are clipped to 1 and 0, so y is the
  // plain x-hat. Momenta 0.5 move every statistic halfway.
  const Result r = Run(
      "--x " + Write("x.npy", kBatch, {4, 2}) +
      " --renorm true --rmax 1 --dmax 0 --renorm-momentum 0.5 --momentum 0.5"
      " --epsilon 1.75 --training true");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(OutFiles(), (std::set<std::string>{
                            "y.npy", "moving_mean.npy", "moving_variance.npy",
                            "gamma.npy", "beta.npy", "moving_stddev.npy",
                            "renorm_mean.npy", "renorm_stddev.npy"}));
  ExpectNear(Out("y.npy"), kBatchHat);
  EXPECT_EQ(Out("renorm_mean.npy"), (std::vector<float>{1, -2}));
  EXPECT_EQ(Out("renorm_stddev.npy"), (std::vector<float>{1.5f, 1.5f}));
  EXPECT_EQ(Out("moving_stddev.npy"), (std::vector<float>{1.5f, 1.5f}));
  EXPECT_EQ(Out("moving_mean.npy"), (std::vector<float>{1, -2}));
  // moving_variance = max(moving_stddev^2 - epsilon, 0) = 2.25 - 1.75.
  EXPECT_EQ(Out("moving_variance.npy"), (std::vector<float>{0.5f, 0.5f}));
}

TEST_F(BnormRunTest, RenormStateFilesAreRead) {
  // renorm_stddev 4 and renorm_mean 0: r = 2 / 4, d = (2 - 0) / 4 and (-4 - 0)
  // / 4.
  const Result r =
      Run("--x " + Write("x.npy", kBatch, {4, 2}) +
          " --renorm true --renorm-mean " + Write("rm.npy", {0, 0}, {2}) +
          " --renorm-stddev " + Write("rs.npy", {4, 4}, {2}) +
          " --moving-stddev " + Write("ms.npy", {3, 3}, {2}) +
          " --momentum 0.5 --epsilon 1.75 --training true");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<float> expected(8);
  for (size_t i = 0; i < 8; ++i)
    expected[i] = kBatchHat[i] * 0.5f + (i % 2 ? -1.0f : 0.5f);
  ExpectNear(Out("y.npy"), expected);
  EXPECT_EQ(Out("moving_stddev.npy"), (std::vector<float>{2.5f, 2.5f}));
  EXPECT_EQ(Out("moving_variance.npy"), (std::vector<float>{4.5f, 4.5f}));
}

TEST_F(BnormRunTest, GhostBatchesAreStridedAndAcceptKerasFullRankState) {
  // Batch 4, virtual batch 2: ghost 0 holds samples 0 and 2, ghost 1 samples
  // 1 and 3. Each ghost has variance 1; their means 1 and 11 average to 6.
  const std::string x = Write("x.npy", {0, 10, 2, 12}, {4, 1});
  // Keras stores ghost-batch parameters as (1, 1, C).
  const Result r =
      Run("--x " + x + " --virtual-batch-size 2 --momentum 0 --epsilon 3" +
          " --training true --moving-mean " + Write("mm.npy", {5}, {1, 1, 1}) +
          " --gamma " + Write("g.npy", {1}, {1, 1, 1}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectNear(Out("y.npy"), {-0.5f, -0.5f, 0.5f, 0.5f});
  EXPECT_EQ(ReadOut("moving_mean.npy").shape, std::vector<int64_t>{1});
  EXPECT_EQ(Out("moving_mean.npy"), std::vector<float>{6});
  EXPECT_EQ(Out("moving_variance.npy"), std::vector<float>{1});
}

TEST_F(BnormRunTest, StateMayBeFlatOrFullRankForSeveralAxes) {
  // Axes 1 and 2 of (2, 2, 3): parameter shape (2, 3); Keras stores (1, 2, 3).
  std::vector<float> x(12, 1.0f);
  const Result r =
      Run("--x " + Write("x.npy", x, {2, 2, 3}) + " --axis 1,2 --moving-mean " +
          Write("mm.npy", {1, 1, 1, 1, 1, 1}, {6}) + " --beta " +
          Write("b.npy", {0, 1, 2, 3, 4, 5}, {1, 2, 3}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadOut("beta.npy").shape, (std::vector<int64_t>{2, 3}));
  ExpectNear(Out("y.npy"), {0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5});
}

TEST_F(BnormRunTest, AdjustmentScalesAndShiftsXHat) {
  const Result r =
      Run("--x " + Write("x.npy", kBatch, {4, 2}) + " --adjustment-scale " +
          Write("as.npy", {2, 1}, {2}) + " --adjustment-bias " +
          Write("ab.npy", {0, 1}, {2}) + " --gamma " +
          Write("g.npy", {1, 3}, {2}) + " --epsilon 1.75 --training true");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // y = x-hat * (adj_scale * gamma) + adj_bias * gamma + beta.
  std::vector<float> expected(8);
  for (size_t i = 0; i < 8; ++i)
    expected[i] = i % 2 ? kBatchHat[i] * 3 + 3 : kBatchHat[i] * 2;
  ExpectNear(Out("y.npy"), expected);
}

// kBatch with epsilon 1.75 (rho = 1/2, x - mean = +-1.5) and dy = 1 on channel 0,
// (2, 0, 0, 0) on channel 1: S1 = (4, 2), S2 = (0, -3), n = 4. The training
// gradient dx = gamma * rho * (dy - S1 / n - (x - mean) * rho^2 * S2 / n).
const std::vector<float> kBatchDy = {1, 2, 1, 0, 1, 0, 1, 0};

TEST_F(BnormRunTest, DyWritesTheTrainingGradientsOfTheLastCall) {
  const Result r = Run("--x " + Write("x.npy", kBatch, {4, 2}) + " --dy " +
                       Write("dy.npy", kBatchDy, {4, 2}) + " --gamma " +
                       Write("g.npy", {2, 1}, {2}) + " --epsilon 1.75 --training true --steps 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectNear(Out("dx.npy"), {0, 0.609375f, 0, -0.109375f, 0, -0.109375f, 0, -0.390625f});
  ExpectNear(Out("dbeta.npy"), {4, 2});
  ExpectNear(Out("dgamma.npy"), {0, -1.5f});  // rho * S2
  EXPECT_EQ(OutFiles(), (std::set<std::string>{"y.npy", "moving_mean.npy", "moving_variance.npy",
                                               "gamma.npy", "beta.npy", "dx.npy", "dgamma.npy",
                                               "dbeta.npy"}));
}

TEST_F(BnormRunTest, DyWithAnAdjustmentWritesItsGradients) {
  const Result r = Run("--x " + Write("x.npy", kBatch, {4, 2}) + " --dy " +
                       Write("dy.npy", kBatchDy, {4, 2}) + " --adjustment-scale " +
                       Write("as.npy", {2, 1}, {2}) + " --adjustment-bias " +
                       Write("ab.npy", {0, 1}, {2}) + " --gamma " + Write("g.npy", {1, 3}, {2}) +
                       " --epsilon 1.75 --training true --center false");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // dgamma = a_s * rho * S2 + a_b * S1; d_adjustment_scale = gamma * rho * S2;
  // d_adjustment_bias = gamma * S1.
  ExpectNear(Out("dgamma.npy"), {0, 0.5f});
  ExpectNear(Out("d_adjustment_scale.npy"), {0, -4.5f});
  ExpectNear(Out("d_adjustment_bias.npy"), {4, 6});
  EXPECT_EQ(OutFiles().count("dbeta.npy"), 0u);  // no center, no dbeta
  // dx scales by gamma * a_s: channel 1 is 3 times the plain case.
  ExpectNear(Out("dx.npy"), {0, 1.828125f, 0, -0.328125f, 0, -0.328125f, 0, -1.171875f});
}

TEST_F(BnormRunTest, DyAfterInferenceIsTheAffineMapsGradientInTheInputDType) {
  // Initial state and epsilon 3: rho_m = 1/2, so dx = dy * gamma / 2,
  // dgamma = sum(dy * x) / 2, dbeta = sum(dy); exact in float16.
  const Result r =
      Run("--x " + Write("x.npy", {1, -3, 0.5f, 8}, {2, 2}, ElementType::kFloat16) + " --dy " +
          Write("dy.npy", {2, 1, -1, 4}, {2, 2}, ElementType::kFloat16) + " --epsilon 3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const npy::Array dx = ReadOut("dx.npy");
  EXPECT_EQ(dx.dtype, ElementType::kFloat16);
  EXPECT_EQ(npy::ToFloats(dx), (std::vector<float>{1, 0.5f, -0.5f, 2}));
  ExpectNear(Out("dgamma.npy"), {0.75f, 14.5f});
  ExpectNear(Out("dbeta.npy"), {1, 5});
}

TEST_F(BnormRunTest, DyOfAnotherShapeOrDTypeIsAUsageError) {
  const std::string x = "--x " + Write("x.npy", kBatch, {4, 2});
  ExpectFailure(x + " --dy " + Write("dy.npy", kBatchDy, {2, 4}), 2, "--dy");
  ExpectFailure(x + " --dy " + Write("dy16.npy", kBatchDy, {4, 2}, ElementType::kFloat16), 2,
                "expected --x's float32 of shape [4, 2]");
  ExpectFailure(x + " --dy " + dir_ + "/missing.npy", 1, "--dy");
  EXPECT_FALSE(OutExists());
}

TEST_F(BnormRunTest, OutputKeepsTheInputDType) {
  // Inference with the initial state and epsilon 3: y = x / 2, exact in every
  // dtype.
  for (ElementType dtype :
       {ElementType::kFloat32, ElementType::kFloat64, ElementType::kFloat16, ElementType::kBFloat16}) {
    SCOPED_TRACE(npy::Name(dtype));
    const Result r =
        Run("--x " + Write("x.npy", {1, -3, 0.5f, 8}, {2, 2}, dtype) +
            " --epsilon 3");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const npy::Array y = ReadOut("y.npy");
    EXPECT_EQ(y.dtype, dtype);
    EXPECT_EQ(npy::ToFloats(y), (std::vector<float>{0.5f, -1.5f, 0.25f, 4}));
    EXPECT_EQ(ReadOut("moving_mean.npy").dtype, ElementType::kFloat32);
  }
}

TEST_F(BnormRunTest, ScaleAndCenterFalseOmitGammaAndBeta) {
  const Result r = Run("--x " + Write("x.npy", kBatch, {4, 2}) +
                       " --scale false --center false");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(OutFiles(), (std::set<std::string>{"y.npy", "moving_mean.npy",
                                               "moving_variance.npy"}));
}

TEST_F(BnormRunTest, ThreadsAndTargetsGiveBitwiseEqualResults) {
  std::vector<float> x(64 * 3);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>((i * 37) % 101) * 0.25f;
  const std::string base =
      "--x " + Write("x.npy", x, {64, 3}) + " --training true --steps 2";
  ASSERT_EQ(Run(base).exit_code, 0);
  const npy::Array expected = ReadOut("y.npy");
  const std::vector<float> expected_mean = Out("moving_mean.npy");
  const std::vector<std::string> variants = {
      " --threads 1", " --threads 3",
      " --target " + SupportedTargets().back().name};
  for (const std::string& extra : variants) {
    SCOPED_TRACE(extra);
    const Result r = Run(base + extra);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(ReadOut("y.npy").data, expected.data);
    EXPECT_EQ(Out("moving_mean.npy"), expected_mean);
  }
}

TEST_F(BnormRunTest, UnknownFlagIsAUsageError) {
  ExpectFailure("--x " + Write("x.npy", kBatch, {4, 2}) + " --bogus 1", 2,
                "--bogus");
  EXPECT_FALSE(OutExists());
}

TEST_F(BnormRunTest, MissingOrMalformedValuesAreUsageErrors) {
  const std::string x = "--x " + Write("x.npy", kBatch, {4, 2});
  ExpectFailure(x + " --momentum 0.9x", 2, "--momentum");
  ExpectFailure(x + " --momentum ''", 2, "--momentum");
  ExpectFailure(x + " --momentum nan", 2, "momentum");
  ExpectFailure(x + " --axis 1,", 2, "--axis");
  ExpectFailure(x + " --center yes", 2, "--center");
  ExpectFailure(x + " --fused maybe", 2, "--fused");
  ExpectFailure(x + " --steps 0", 2, "--steps");
  ExpectFailure(x + " --threads 0", 2, "--threads");
  ExpectFailure(x + " --target no_such_target", 2, "no_such_target");
  ExpectFailure(x + " --x " + Write("x2.npy", kBatch, {4, 2}), 2, "--x");
  ExpectFailure("--momentum 0.5", 2, "--x");
  ExpectFailure(x + " --axis", 2, "--axis");
  EXPECT_FALSE(OutExists());
}

TEST_F(BnormRunTest, BadDTypeFileIsAnIoError) {
  npy::Array ints = npy::FromFloats({1, 2}, {2}, ElementType::kFloat32);
  npy::Write(dir_ + "/ints.npy", ints);
  // Turn '<f4' into '<i4' in place.
  std::fstream f(dir_ + "/ints.npy",
                 std::ios::in | std::ios::out | std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)),
                    std::istreambuf_iterator<char>());
  bytes.replace(bytes.find("<f4"), 3, "<i4");
  f.seekp(0);
  f << bytes;
  f.close();
  ExpectFailure("--x " + dir_ + "/ints.npy", 1, "ints.npy");
  ExpectFailure("--x " + Write("x.npy", kBatch, {4, 2}) + " --gamma " + dir_ +
                    "/ints.npy",
                1, "--gamma");
  ExpectFailure("--x " + dir_ + "/missing.npy", 1, "missing.npy");
  EXPECT_FALSE(OutExists());
}

TEST_F(BnormRunTest, MismatchedGammaLengthIsAUsageError) {
  ExpectFailure("--x " + Write("x.npy", kBatch, {4, 2}) + " --gamma " +
                    Write("g.npy", {1, 2, 3}, {3}),
                2, "--gamma");
  // The right count in a shape that is not Keras' is rejected too.
  ExpectFailure("--x " + Write("x.npy", std::vector<float>(12), {2, 2, 3}) +
                    " --axis 1,2 --beta " +
                    Write("b.npy", std::vector<float>(6), {3, 2}),
                2, "--beta");
  EXPECT_FALSE(OutExists());
}

TEST_F(BnormRunTest, VirtualBatchNotDividingTheBatchIsAnError) {
  ExpectFailure("--x " + Write("x.npy", std::vector<float>(10), {5, 2}) +
                    " --virtual-batch-size 2 --training true",
                2, "virtual_batch_size");
  EXPECT_FALSE(OutExists());
}

TEST_F(BnormRunTest, FusedWithRenormIsAnError) {
  ExpectFailure("--x " + Write("x.npy", kBatch, {4, 1, 1, 2}) +
                    " --fused true --renorm true",
                2, "renorm");
  EXPECT_FALSE(OutExists());
}

TEST_F(BnormRunTest, IncompleteOrMisplacedFlagsAreUsageErrors) {
  const std::string x = "--x " + Write("x.npy", kBatch, {4, 2});
  ExpectFailure(x + " --adjustment-scale " + Write("as.npy", {1, 1}, {2}), 2,
                "--adjustment-bias");
  ExpectFailure(x + " --rmax 3", 2, "--rmax");
  ExpectFailure(
      x + " --gamma " + Write("g.npy", {1, 1}, {2}) + " --scale false", 2,
      "gamma");
  EXPECT_FALSE(OutExists());
}

TEST_F(BnormRunTest, FailureLeavesAnExistingOutputDirectoryUntouched) {
  ASSERT_EQ(mkdir(out_.c_str(), 0777), 0);
  ExpectFailure("--x " + Write("x.npy", std::vector<float>(10), {5, 2}) +
                    " --virtual-batch-size 2 --training true",
                2, "virtual_batch_size");
  EXPECT_TRUE(OutExists());
  EXPECT_TRUE(OutFiles().empty());
}

}  // namespace
}  // namespace bnorm
