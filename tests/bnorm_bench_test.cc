// SPDX-License-Identifier: Apache-2.0
// bnorm-bench end to end: tiny cases (well under a second each) in every dtype
// and layout with --json, every mode (the backward's 5-volume traffic), the layer
// flags, the residual add (--residual, and tools/pytorch-bench.py's), the oneDNN peer when
// built with it, the cache sweep (its list of cases, its JSON keys, tools/plot-cache-sweep.py
// over them), and bad flags, which must exit 2 with one line naming the flag before anything is
// timed.
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>
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

// A fresh directory for one test's files.
std::string MakeTempDir() {
  std::string dir = ::testing::TempDir() + "/bnorm_bench_test.XXXXXX";
  EXPECT_NE(mkdtemp(&dir[0]), nullptr);
  return dir;
}

// Runs a shell command, its output captured.
Result RunCommand(const std::string& command_line) {
  const std::string dir = MakeTempDir();
  const std::string out_path = dir + "/stdout.txt", err_path = dir + "/stderr.txt";
  const std::string command = command_line + " > '" + out_path + "' 2> '" + err_path + "'";
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

// Runs bnorm-bench with `args` (through the emulator in cross builds).
Result RunBench(const std::string& args) {
  return RunCommand(std::string(BNORM_TEST_LAUNCHER) + "'" + BNORM_TOOLS_DIR + "/bnorm-bench' " +
                    args);
}

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

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

// --residual: the inference adds z and a ReLU in its one pass, 3 volumes of traffic (x and z
// read, y written), checked against the reference with z; the training rows stay as they are.
TEST(BnormBench, ResidualInferenceReadsZAndCountsThreeVolumes) {
  for (const char* dtype : {"f32", "bf16", "f16"}) {
    for (const char* layout : {"nhwc", "nchw"}) {
      SCOPED_TRACE(std::string(dtype) + " " + layout);
      const Result r = RunBench(std::string(kTiny) + "--mode inference --residual --dtype " +
                                dtype + " --layout " + layout);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(r.err.find("WARNING"), std::string::npos) << r.err;
      const std::vector<nlohmann::json> rows = JsonRows(r.out);
      ASSERT_EQ(rows.size(), 1u) << r.out;
      const nlohmann::json& row = rows[0];
      EXPECT_EQ(Field(row, "mode"), "inference");
      EXPECT_EQ(Field(row, "residual"), true);
      EXPECT_EQ(Field(row, "traffic_volumes"), 3);
      EXPECT_NEAR(Volumes(row, std::string(dtype) == "f32" ? 4.0 : 2.0), 3.0, 1e-3) << row;
      EXPECT_GT(Number(row, "pct_roof"), 0.0) << row;
      EXPECT_GT(Number(row, "reference_seconds"), 0.0) << row;
      // y was checked against relu(reference + z): no WARNING above, and the difference is
      // recorded.
      EXPECT_TRUE(Field(row, "max_abs_diff_vs_reference").is_number()) << row;
    }
  }
}

TEST(BnormBench, ResidualLeavesTrainingRowsAsTheyAre) {
  const Result r = RunBench(std::string(kTiny) + "--mode both --residual");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("WARNING"), std::string::npos) << r.err;
  const std::vector<nlohmann::json> rows = JsonRows(r.out);
  ASSERT_EQ(rows.size(), 2u) << r.out;
  EXPECT_EQ(Field(rows[0], "residual"), true);
  EXPECT_EQ(Field(rows[0], "traffic_volumes"), 3);
  EXPECT_EQ(Field(rows[1], "mode"), "training");
  EXPECT_EQ(Field(rows[1], "residual"), false);
  EXPECT_EQ(Field(rows[1], "traffic_volumes"), 3);
  // Without the flag the rows have no residual key at all.
  const Result plain = RunBench(std::string(kTiny) + "--mode inference");
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  const std::vector<nlohmann::json> plain_rows = JsonRows(plain.out);
  ASSERT_EQ(plain_rows.size(), 1u) << plain.out;
  EXPECT_FALSE(plain_rows[0].contains("residual")) << plain_rows[0];
  EXPECT_EQ(Field(plain_rows[0], "traffic_volumes"), 2);
}

// oneDNN's residual peer (no fused norm + add in 2.6): batch_normalization, then a binary add
// with a ReLU post-op, whose output must agree with bnorm's.
TEST(BnormBench, OneDnnResidualIsNormThenBinaryAdd) {
  for (const char* layout : {"nhwc", "nchw"}) {
    SCOPED_TRACE(layout);
    const Result r = RunBench(std::string(kTiny) + "--mode inference --residual --layout " +
                              layout + " --compare onednn");
    if (r.exit_code == 2 && r.err.find("oneDNN was not found") != std::string::npos) {
      GTEST_SKIP() << "bnorm-bench was built without oneDNN";
    }
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err.find("WARNING"), std::string::npos) << r.err;
    const std::vector<nlohmann::json> rows = JsonRows(r.out);
    ASSERT_EQ(rows.size(), 1u) << r.out;
    EXPECT_EQ(Field(rows[0], "residual"), true);
    EXPECT_GT(Number(rows[0], "onednn_seconds"), 0.0) << rows[0];
    EXPECT_TRUE(Field(rows[0], "onednn_max_abs_diff").is_number()) << rows[0];
  }
}

// tools/pytorch-bench.py --residual times batch_norm, add_ and relu_ with 3 volumes of traffic,
// and --bnorm-json pairs its residual rows with bnorm-bench --residual's only.
TEST(BnormBench, PyTorchResidualRowsPairWithResidualRows) {
  if (RunCommand("/usr/bin/python3 -c 'import torch'").exit_code != 0) {
    GTEST_SKIP() << "/usr/bin/python3 has no torch (python3-torch)";
  }
  const Result bench = RunBench(std::string(kTiny) + "--mode both --residual");
  ASSERT_EQ(bench.exit_code, 0) << bench.err;
  const std::vector<nlohmann::json> bnorm_rows = JsonRows(bench.out);
  ASSERT_EQ(bnorm_rows.size(), 2u) << bench.out;
  const std::string dir = MakeTempDir();
  const std::string bnorm_json = dir + "/bnorm.json";
  WriteFile(bnorm_json, bench.out);
  const std::string torch = std::string("/usr/bin/python3 '") + BNORM_SOURCE_DIR +
                            "/tools/pytorch-bench.py' --shape 4,8,5,5 --threads 1 --repeat 1 "
                            "--min-time 0 --json --bnorm-json '" +
                            bnorm_json + "' ";
  const Result r = RunCommand(torch + "--mode both --residual");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<nlohmann::json> rows = JsonRows(r.out);
  ASSERT_EQ(rows.size(), 2u) << r.out;
  EXPECT_EQ(Field(rows[0], "mode"), "inference");
  EXPECT_EQ(Field(rows[0], "residual"), true);
  EXPECT_NEAR(Volumes(rows[0], 4.0), 3.0, 1e-6) << rows[0];
  EXPECT_EQ(Field(rows[0], "bnorm_seconds"), Field(bnorm_rows[0], "seconds"));
  EXPECT_EQ(Field(rows[1], "mode"), "training");
  EXPECT_EQ(Field(rows[1], "residual"), false);
  EXPECT_EQ(Field(rows[1], "bnorm_seconds"), Field(bnorm_rows[1], "seconds"));
  // A plain inference row has no residual bnorm row to pair with.
  const Result plain = RunCommand(torch + "--mode inference");
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  const std::vector<nlohmann::json> plain_rows = JsonRows(plain.out);
  ASSERT_EQ(plain_rows.size(), 1u) << plain.out;
  EXPECT_FALSE(plain_rows[0].contains("residual")) << plain_rows[0];
  EXPECT_EQ(Field(plain_rows[0], "bnorm_seconds"), nullptr) << plain_rows[0];
  std::remove(bnorm_json.c_str());
  rmdir(dir.c_str());
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

TEST(BnormBench, UnknownSweepIsRejected) {
  ExpectUsageError("--sweep everything", "--sweep", "unknown sweep 'everything'; expected cache");
}

TEST(BnormBench, SweepMaxMustKeepASize) {
  ExpectUsageError("--sweep cache --sweep-max 1K", "--sweep-max",
                   "keeps none of the sweep's sizes");
}

// z is an input of the inference pass: modes without one, and the synchronized training step,
// have nothing for it to add to.
TEST(BnormBench, ResidualNeedsAnInferencePass) {
  ExpectUsageError("--shape 4,8,5,5 --residual --mode backward", "--residual",
                   "--mode backward does not run; expected --mode inference, both or all");
  ExpectUsageError("--shape 4,8,5,5 --residual --mode training", "--residual",
                   "--mode training does not run; expected --mode inference, both or all");
  ExpectUsageError("--shape 4,8,5,5 --residual --synchronized", "--residual",
                   "--synchronized times a training step only");
}

// One line of a --list-cases shapes file.
struct ListedCase {
  std::string shape, layout, label;
  int64_t values = 1;
  int64_t channels = 0;
  int64_t working_set = 0, target = 0;  // a sweep's, from the comment
};

// The cases of a --list-cases output ("N,C,H,W layout  # label: working set W B (target T B)").
std::vector<ListedCase> ListedCases(const std::string& out) {
  static const std::regex line_pattern(
      R"(^(\S+)\s+(\S+)\s*(?:# (.+): working set (\d+) B \(target (\d+) B\))?\s*$)");
  std::vector<ListedCase> cases;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::smatch m;
    EXPECT_TRUE(std::regex_match(line, m, line_pattern)) << line;
    if (m.empty()) continue;
    ListedCase c;
    c.shape = m[1].str();
    c.layout = m[2].str();
    c.label = m[3].str();
    if (m[4].matched) c.working_set = std::stoll(m[4].str());
    if (m[5].matched) c.target = std::stoll(m[5].str());
    std::istringstream sizes(c.shape);
    std::string size;
    for (int axis = 0; std::getline(sizes, size, ','); ++axis) {
      c.values *= std::stoll(size);
      if (axis == 1) c.channels = std::stoll(size);
    }
    cases.push_back(c);
  }
  return cases;
}

TEST(BnormBench, CacheSweepListsGrowingSizesNearTheirTargets) {
  for (const char* dtype : {"f32", "bf16"}) {
    SCOPED_TRACE(dtype);
    const int64_t value_bytes = std::string(dtype) == "f32" ? 4 : 2;
    const Result r = RunBench(std::string("--sweep cache --list-cases --dtype ") + dtype);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::vector<ListedCase> cases = ListedCases(r.out);
    // 1/4 L2 .. 8 LLC: ten sizes unless some coincide, each C in both layouts.
    ASSERT_GE(cases.size(), 6u * 6u) << r.out;
    ASSERT_EQ(cases.size() % 6, 0u) << r.out;
    EXPECT_NE(cases.front().label.find("1/4 L2"), std::string::npos) << r.out;
    EXPECT_NE(cases.back().label.find("8 LLC"), std::string::npos) << r.out;
    for (size_t i = 0; i < cases.size(); ++i) {
      const ListedCase& c = cases[i];
      SCOPED_TRACE(c.shape + " " + c.layout + " " + c.label);
      EXPECT_EQ(std::count(c.shape.begin(), c.shape.end(), ','), 3);
      EXPECT_EQ(c.layout, i % 2 == 0 ? "nhwc" : "nchw");
      const int64_t channels[] = {64, 256, 2048};
      EXPECT_EQ(c.channels, channels[i / 2 % 3]);
      EXPECT_EQ(c.working_set, 2 * value_bytes * c.values);
      EXPECT_NEAR(static_cast<double>(c.working_set), static_cast<double>(c.target),
                  0.1 * static_cast<double>(c.target));
      if (i % 6 != 0) {
        EXPECT_EQ(c.target, cases[i - 1].target);
        EXPECT_EQ(c.label, cases[i - 1].label);
      } else if (i != 0) {
        EXPECT_GT(c.target, cases[i - 1].target);
      }
    }
  }
}

// The list is a shapes file: bnorm-bench (and pytorch-bench.py) read it back.
TEST(BnormBench, ListedCasesReadBackAsAShapesFile) {
  const Result listed = RunBench("--sweep cache --list-cases");
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  const std::string dir = MakeTempDir();
  const std::string path = dir + "/sweep.txt";
  WriteFile(path, listed.out);
  const Result again = RunBench("--shapes-file '" + path + "' --list-cases");
  std::remove(path.c_str());
  rmdir(dir.c_str());
  ASSERT_EQ(again.exit_code, 0) << again.err;
  const std::vector<ListedCase> a = ListedCases(listed.out), b = ListedCases(again.out);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].shape, b[i].shape);
    EXPECT_EQ(a[i].layout, b[i].layout);
  }
}

TEST(BnormBench, ResNet50BatchOneShapesFileHoldsBothLayouts) {
  const Result r = RunBench(std::string("--shapes-file '") + BNORM_SOURCE_DIR +
                            "/tools/shapes-resnet50-n1.txt' --list-cases");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<ListedCase> cases = ListedCases(r.out);
  ASSERT_EQ(cases.size(), 26u) << r.out;
  std::set<std::string> shapes;
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(cases[i].shape.rfind("1,", 0), 0u) << cases[i].shape;
    EXPECT_EQ(cases[i].layout, i % 2 == 0 ? "nhwc" : "nchw");
    if (i % 2 == 1) {
      EXPECT_EQ(cases[i].shape, cases[i - 1].shape);
    }
    shapes.insert(cases[i].shape);
  }
  EXPECT_EQ(shapes.size(), 13u);
  EXPECT_EQ(shapes.count("1,64,8,8"), 1u);
}

TEST(BnormBench, SubMillisecondRowsPrintMicroseconds) {
  const Result r = RunBench("--shape 4,8,5,5 --mode inference --threads 1 --repeat 1 --min-time 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(4x8x5x5 +nhwc +inference .* [0-9.e+]+ us )")))
      << r.out;
}

// Runs tools/plot-cache-sweep.py with `args` under Debian's python3.
Result RunPlot(const std::string& args) {
  return RunCommand(std::string("/usr/bin/python3 '") + BNORM_SOURCE_DIR +
                    "/tools/plot-cache-sweep.py' " + args);
}

bool HaveMatplotlib() {
  return RunCommand("/usr/bin/python3 -c 'import matplotlib'").exit_code == 0;
}

// The sweep's two smallest sizes, run for real (tiny), then plotted with a PyTorch file made of
// the same cases.
TEST(BnormBench, CacheSweepRowsRecordTheirSizeAndPlot) {
  const std::vector<ListedCase> listed = ListedCases(RunBench("--sweep cache --list-cases").out);
  ASSERT_GE(listed.size(), 12u);
  const int64_t second = listed[6].target;
  const Result r = RunBench("--sweep cache --sweep-max " + std::to_string(second) +
                            " --mode inference --threads 1 --repeat 1 --min-time 0 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("WARNING"), std::string::npos) << r.err;
  const std::vector<nlohmann::json> rows = JsonRows(r.out);
  ASSERT_EQ(rows.size(), 12u) << r.out;
  nlohmann::json torch = nlohmann::json::array();
  for (size_t i = 0; i < rows.size(); ++i) {
    const nlohmann::json& row = rows[i];
    SCOPED_TRACE(row.dump());
    EXPECT_EQ(Field(row, "sweep"), "cache");
    EXPECT_EQ(Field(row, "size_label"), listed[i].label);
    EXPECT_EQ(Field(row, "target_working_set_bytes"), listed[i].target);
    EXPECT_EQ(Number(row, "working_set_bytes"), 8 * Number(row, "elements"));
    EXPECT_EQ(Field(row, "working_set_bytes"), listed[i].working_set);
    EXPECT_GT(Number(row, "l2_bytes"), 0.0);
    EXPECT_GE(Number(row, "llc_bytes"), Number(row, "l2_bytes"));
    torch.push_back({{"shape", row["shape"]},
                     {"layout", row["layout"]},
                     {"mode", row["mode"]},
                     {"dtype", "f32"},
                     {"threads", row["threads"]},
                     {"seconds", 2.0 * Number(row, "seconds")}});
  }
  if (!HaveMatplotlib()) GTEST_SKIP() << "/usr/bin/python3 has no matplotlib (python3-matplotlib)";
  const std::string dir = MakeTempDir();
  const std::string bnorm_json = dir + "/sweep.json", torch_json = dir + "/torch.json",
                    png = dir + "/sweep.png";
  WriteFile(bnorm_json, r.out);
  WriteFile(torch_json, torch.dump());
  const Result plot =
      RunPlot("'" + bnorm_json + "' --pytorch '" + torch_json + "' -o '" + png + "'");
  EXPECT_EQ(plot.exit_code, 0) << plot.err;
  EXPECT_EQ(plot.err.find("no PyTorch lines"), std::string::npos) << plot.err;
  EXPECT_EQ(ReadFile(png).substr(0, 8), "\x89PNG\r\n\x1a\n");
  for (const std::string& path : {bnorm_json, torch_json, png}) std::remove(path.c_str());
  rmdir(dir.c_str());
}

// A missing or garbled JSON file is one line that names it, exit status 1, and no image (the
// script reads its input before it imports matplotlib).
TEST(BnormBench, PlotRejectsMissingAndGarbledJson) {
  const std::string dir = MakeTempDir();
  const std::string garbled = dir + "/garbled.json", other = dir + "/other.json",
                    png = dir + "/out.png";
  WriteFile(garbled, "[{\"shape\": [1, 2");
  WriteFile(other, "[{\"shape\": [4, 8], \"mode\": \"inference\"}]");
  struct Case {
    std::string file, message;
  };
  for (const Case& c : {Case{dir + "/missing.json", "cannot read"}, Case{garbled, "is not JSON"},
                        Case{other, "holds no rows of bnorm-bench --sweep cache"}}) {
    SCOPED_TRACE(c.file);
    const Result r = RunPlot("'" + c.file + "' -o '" + png + "'");
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("plot-cache-sweep.py: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.file), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  }
  EXPECT_FALSE(std::ifstream(png).good());
  for (const std::string& path : {garbled, other}) std::remove(path.c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace bnorm
