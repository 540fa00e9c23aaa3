// SPDX-License-Identifier: Apache-2.0
// bnorm-run --synchronized true under mpirun -n 2: each rank reads
// x_{rank}.npy (uneven slices) and writes out_{rank}; every rank's y is its
// slice of the float64 Keras oracle on the concatenated batch and every
// rank's moving statistics are the oracle's, bitwise the same on both ranks.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "src/io/npy.h"
#include "src/oracle/keras_reference.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {
namespace {

TEST(MpiRun, RanksReadAndWriteTheirOwnSlices) {
  char pattern[] = "/tmp/bnorm_mpi_run_XXXXXX";
  const std::string dir = mkdtemp(pattern);
  const std::vector<int64_t> batches = {5, 3};
  const size_t C = 3;
  const std::vector<float> global = Normal(8 * C, 2.0, 3.0, 11);
  size_t offset = 0;
  for (size_t r = 0; r < batches.size(); ++r) {
    const size_t n = static_cast<size_t>(batches[r]) * C;
    const std::vector<float> slice(global.begin() + offset, global.begin() + offset + n);
    npy::Write(dir + "/x_" + std::to_string(r) + ".npy",
               npy::FromFloats(slice, {batches[r], 3}, npy::ElementType::kFloat32));
    offset += n;
  }
  const std::string command = std::string(BNORM_MPIRUN) + " -n 2 " + BNORM_MPIRUN_FLAGS + " '" +
                              BNORM_RUN + "' --synchronized true --training true --steps 2 --x '" +
                              dir + "/x_{rank}.npy' --out '" + dir + "/out_{rank}'";
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << command;

  Options o;
  o.fused = Fused::kFalse;
  keras_reference::State state = keras_reference::Initial(o, C);
  std::vector<double> y(global.size());
  for (int step = 0; step < 2; ++step) {
    keras_reference::Forward(o, {8, 3}, global.data(), true, &state, y.data());
  }
  std::vector<std::vector<float>> means;
  offset = 0;
  for (size_t r = 0; r < batches.size(); ++r) {
    const std::string out = dir + "/out_" + std::to_string(r);
    const std::vector<float> got = npy::ToFloats(npy::Read(out + "/y.npy"));
    ASSERT_EQ(got.size(), static_cast<size_t>(batches[r]) * C);
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i], y[offset + i], 1e-6 * std::max(1.0, std::abs(y[offset + i])));
    }
    offset += got.size();
    means.push_back(npy::ToFloats(npy::Read(out + "/moving_mean.npy")));
    const std::vector<float> var = npy::ToFloats(npy::Read(out + "/moving_variance.npy"));
    for (size_t c = 0; c < C; ++c) {
      EXPECT_NEAR(means.back()[c], state.moving_mean[c], 1e-6);
      EXPECT_NEAR(var[c], state.moving_variance[c], 1e-6 * state.moving_variance[c]);
    }
  }
  EXPECT_EQ(means[0], means[1]);
  std::system(("rm -rf '" + dir + "'").c_str());
}

}  // namespace
}  // namespace test
}  // namespace bnorm
