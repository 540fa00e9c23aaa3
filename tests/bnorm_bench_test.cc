// SPDX-License-Identifier: Apache-2.0
// bnorm-bench end to end: tiny cases (well under a second each) in every dtype
// and layout with --json, every mode (the backward's 5-volume traffic), the layer
// flags, the oneDNN peer when built with it, and bad flags, which must exit 2 with
// one line naming the flag before anything is timed.
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace bnorm {
namespace {

struct Result {
  int exit_code = -1;
  std::string out, err;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Runs bnorm-bench with `args` (through the emulator in cross builds).
Result RunBench(const std::string& args) {
  std::string dir = ::testing::TempDir() + "/bnorm_bench_test.XXXXXX";
  EXPECT_NE(mkdtemp(&dir[0]), nullptr);
  const std::string out_path = dir + "/stdout.txt", err_path = dir + "/stderr.txt";
  const std::string command = std::string(BNORM_TEST_LAUNCHER) + "'" + BNORM_TOOLS_DIR +
                              "/bnorm-bench' " + args + " > '" + out_path + "' 2> '" + err_path +
                              "'";
  const int status = std::system(command.c_str());
  Result result;
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  std::remove(out_path.c_str());
  std::remove(err_path.c_str());
  rmdir(dir.c_str());
  return result;
}

// The objects of bnorm-bench's JSON array (an empty list if stdout is not one).
std::vector<nlohmann::json> JsonRows(const std::string& out) {
  const nlohmann::json json = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  if (!json.is_array()) return {};
  return std::vector<nlohmann::json>(json.begin(), json.end());
}

// The value of `key` in a row, or the string "<missing>".
nlohmann::json Field(const nlohmann::json& row, const std::string& key) {
  return row.value(key, nlohmann::json("<missing>"));
}

// A numeric value, or 0 when the key is missing or not a number (null).
double Number(const nlohmann::json& row, const std::string& key) {
  const nlohmann::json value = Field(row, key);
  return value.is_number() ? value.get<double>() : 0.0;
}

constexpr char kTiny[] = "--shape 4,8,5,5 --threads 1 --repeat 1 --min-time 0 --json ";

TEST(BnormBench, EveryDtypeAndLayoutTimesBothModes) {
  for (const char* dtype : {"f32", "bf16", "f16"}) {
    for (const char* layout : {"nhwc", "nchw"}) {
      SCOPED_TRACE(std::string(dtype) + " " + layout);
      const Result r = RunBench(std::string(kTiny) + "--dtype " + dtype + " --layout " + layout);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(r.err.find("WARNING"), std::string::npos) << r.err;
      const std::vector<nlohmann::json> rows = JsonRows(r.out);
      ASSERT_EQ(rows.size(), 2u) << r.out;
      EXPECT_EQ(Field(rows[0], "mode"), "inference");
      EXPECT_EQ(Field(rows[1], "mode"), "training");
      for (const nlohmann::json& row : rows) {
        EXPECT_EQ(Field(row, "dtype"), dtype);
        EXPECT_EQ(Field(row, "layout"), layout);
        EXPECT_EQ(Field(row, "virtual_batch_size"), nullptr);
        EXPECT_EQ(Field(row, "renorm"), false);
        EXPECT_GT(Number(row, "seconds"), 0.0) << row;
        EXPECT_GT(Number(row, "pct_roof"), 0.0) << row;
        EXPECT_GT(Number(row, "reference_seconds"), 0.0) << row;
      }
    }
  }
}

TEST(BnormBench, GhostBatchesAndRenormRunTheLayer) {
  const Result r = RunBench(std::string(kTiny) + "--dtype bf16 --virtual-batch-size 2 --renorm");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<nlohmann::json> rows = JsonRows(r.out);
  ASSERT_EQ(rows.size(), 2u) << r.out;
  for (const nlohmann::json& row : rows) {
    EXPECT_EQ(Field(row, "virtual_batch_size"), 2);
    EXPECT_EQ(Field(row, "renorm"), true);
    EXPECT_GT(Number(row, "seconds"), 0.0) << row;
    EXPECT_GT(Number(row, "reference_seconds"), 0.0) << row;
  }
}

TEST(BnormBench, RenormTakesAnyBatchSize) {
  const Result r = RunBench(
      "--shape 3,8,5,5 --layout nchw --mode training --renorm --threads 1 --repeat 1 "
      "--min-time 0 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<nlohmann::json> rows = JsonRows(r.out);
  ASSERT_EQ(rows.size(), 1u) << r.out;
  EXPECT_EQ(Field(rows[0], "mode"), "training");
  EXPECT_EQ(Field(rows[0], "renorm"), true);
}

// Bytes of minimum traffic per value of a row, from its GB/s and seconds (six
// significant digits each), in elements of `value_bytes`.
double Volumes(const nlohmann::json& row, double value_bytes) {
  return Number(row, "gbps") * 1e9 * Number(row, "seconds") / Number(row, "elements") / value_bytes;
}

TEST(BnormBench, BackwardRowsCountFiveVolumes) {
  for (const char* dtype : {"f32", "bf16", "f16"}) {
    for (const char* layout : {"nhwc", "nchw"}) {
      SCOPED_TRACE(std::string(dtype) + " " + layout);
      const Result r =
          RunBench(std::string(kTiny) + "--mode backward --dtype " + dtype + " --layout " + layout);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(r.err.find("WARNING"), std::string::npos) << r.err;
      const std::vector<nlohmann::json> rows = JsonRows(r.out);
      ASSERT_EQ(rows.size(), 1u) << r.out;
      const nlohmann::json& row = rows[0];
      EXPECT_EQ(Field(row, "mode"), "backward");
      EXPECT_EQ(Field(row, "dtype"), dtype);
      EXPECT_NEAR(Volumes(row, std::string(dtype) == "f32" ? 4.0 : 2.0), 5.0, 1e-3) << row;
      EXPECT_GT(Number(row, "pct_roof"), 0.0) << row;
      EXPECT_GT(Number(row, "reference_seconds"), 0.0) << row;
      // dx was checked against the reference.
      EXPECT_TRUE(Field(row, "max_abs_diff_vs_reference").is_number()) << row;
    }
  }
}

TEST(BnormBench, ModeAllGivesThreeRowsPerCaseAndThreadCount) {
  const Result r = RunBench(
      "--shape 4,8,5,5 --shape 6,3 --threads 1,2 --mode all --repeat 1 --min-time 0 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("WARNING"), std::string::npos) << r.err;
  const std::vector<nlohmann::json> rows = JsonRows(r.out);
  ASSERT_EQ(rows.size(), 12u) << r.out;
  const char* modes[] = {"inference", "training", "backward"};
  const double volumes[] = {2.0, 3.0, 5.0};
  for (size_t i = 0; i < rows.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(Field(rows[i], "shape"), (i < 6 ? nlohmann::json{4, 8, 5, 5} : nlohmann::json{6, 3}));
    EXPECT_EQ(Field(rows[i], "threads"), i % 6 < 3 ? 1 : 2);
    EXPECT_EQ(Field(rows[i], "mode"), modes[i % 3]);
    EXPECT_NEAR(Volumes(rows[i], 4.0), volumes[i % 3], 1e-3) << rows[i];
  }
}

TEST(BnormBench, BackwardRunsTheLayerWithGhostBatchesOrRenorm) {
  struct Run {
    const char* flags;
    size_t rows;
    bool checked;  // the Keras oracle checks dx
  };
  // With renorm, dx depends on the moving statistics: checked only when no training rows
  // update them after the set-up call.
  for (const Run& run :
       {Run{"--mode all --virtual-batch-size 2", 3, true}, Run{"--mode all --renorm", 3, false},
        Run{"--mode backward --renorm", 1, true},
        Run{"--mode backward --virtual-batch-size 2 --renorm", 1, true}}) {
    SCOPED_TRACE(run.flags);
    const Result r = RunBench(std::string(kTiny) + run.flags);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err.find("WARNING"), std::string::npos) << r.err;
    const std::vector<nlohmann::json> rows = JsonRows(r.out);
    ASSERT_EQ(rows.size(), run.rows) << r.out;
    const nlohmann::json& row = rows.back();
    EXPECT_EQ(Field(row, "mode"), "backward");
    EXPECT_GT(Number(row, "seconds"), 0.0) << row;
    EXPECT_GT(Number(row, "reference_seconds"), 0.0) << row;
    EXPECT_EQ(Field(row, "max_abs_diff_vs_reference").is_number(), run.checked) << row;
    EXPECT_EQ(r.err.find("backward dx not checked") == std::string::npos, run.checked) << r.err;
  }
}

// Built without oneDNN, --compare onednn is a usage error that says so.
TEST(BnormBench, OneDnnComparesTheBackward) {
  const Result r = RunBench(std::string(kTiny) + "--mode all --compare onednn");
  if (r.exit_code == 2 && r.err.find("oneDNN was not found") != std::string::npos) {
    GTEST_SKIP() << "bnorm-bench was built without oneDNN";
  }
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("WARNING"), std::string::npos) << r.err;
  const std::vector<nlohmann::json> rows = JsonRows(r.out);
  ASSERT_EQ(rows.size(), 3u) << r.out;
  for (const nlohmann::json& row : rows) {
    SCOPED_TRACE(Field(row, "mode").dump());
    EXPECT_GT(Number(row, "onednn_seconds"), 0.0) << row;
    EXPECT_TRUE(Field(row, "onednn_max_abs_diff").is_number()) << row;
  }
}

// Exit status 2, one line on stderr that names the flag and says what it expects,
// and no table: the check comes before any timing.
void ExpectUsageError(const std::string& args, const std::string& flag,
                      const std::string& expected) {
  SCOPED_TRACE(args);
  const Result r = RunBench(args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  EXPECT_NE(r.err.find(flag + ": "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(expected), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(BnormBench, VirtualBatchSizeMustDivideTheBatch) {
  ExpectUsageError("--shape 4,8,5,5 --virtual-batch-size 3", "--virtual-batch-size",
                   "expected a divisor of 4");
}

TEST(BnormBench, VirtualBatchSizeMustBePositive) {
  ExpectUsageError("--shape 4,8,5,5 --virtual-batch-size 0", "--virtual-batch-size",
                   "expected an integer >= 1");
}

TEST(BnormBench, UnknownModeIsRejected) {
  ExpectUsageError("--shape 4,8,5,5 --mode sideways", "--mode",
                   "expected inference, training, both, backward or all");
}

TEST(BnormBench, UnknownDtypeIsRejected) {
  ExpectUsageError("--shape 4,8,5,5 --dtype f8", "--dtype", "expected f32, bf16 or f16");
}

}  // namespace
}  // namespace bnorm
