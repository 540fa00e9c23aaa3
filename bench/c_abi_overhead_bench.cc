// SPDX-License-Identifier: Apache-2.0
// The C ABI against the C++ call: bnorm_normalize and bnorm::Normalize timed in
// alternation on the same buffers (1 thread), median per call and their ratio.
// Run: build/bench/c_abi_overhead_bench
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>
#include "bnorm/bnorm.h"
#include "bnorm/kernels.hpp"
using namespace bnorm;
using Clock = std::chrono::steady_clock;
int main() {
  struct Case { const char* name; std::vector<int64_t> shape; int axis; };
  Case cases[] = {{"32x56x56x64 nhwc", {32, 56, 56, 64}, -1}, {"32x64x56x56 nchw", {32, 64, 56, 56}, 1},
                  {"64x14x14x256 nhwc", {64, 14, 14, 256}, -1}, {"4096x1024 nc", {4096, 1024}, -1},
                  {"1x28x28x64 nhwc", {1, 28, 28, 64}, -1}, {"1x64x28x28 nchw", {1, 64, 28, 28}, 1}};
  bnorm_set_max_threads(1);
  for (auto& c : cases) {
    size_t n = 1; for (auto s : c.shape) n *= s;
    const size_t C = c.shape[c.axis < 0 ? c.shape.size() - 1 : 1];
    std::vector<float> x(n), y(n), mean(C, 0.5f), scale(C, 2.f), shift(C, 1.f);
    for (size_t i = 0; i < n; ++i) x[i] = float(i % 101);
    const Geometry g = PlanGeometry(c.shape, {c.axis});
    NormalizeParams p; p.mean_hi = mean.data(); p.scale = scale.data(); p.shift = shift.data();
    std::vector<double> tc, tcpp;
    int reps = n > 1000000 ? 40 : 4000;
    for (int i = 0; i < reps; ++i) {
      // Alternate which call goes first, so neither always inherits the
      // other's cache state.
      auto c_abi = [&] {
        auto a = Clock::now();
        bnorm_normalize(x.data(), y.data(), BNORM_DTYPE_F32, c.shape.data(), c.shape.size(),
                        &c.axis, 1, mean.data(), scale.data(), shift.data(), C,
                        BNORM_ACTIVATION_NONE);
        tc.push_back(std::chrono::duration<double>(Clock::now() - a).count());
      };
      auto cpp = [&] {
        auto a = Clock::now();
        Normalize(x.data(), y.data(), g, p, Execution::Serial());
        tcpp.push_back(std::chrono::duration<double>(Clock::now() - a).count());
      };
      if (i % 2 == 0) {
        c_abi();
        cpp();
      } else {
        cpp();
        c_abi();
      }
    }
    std::sort(tc.begin(), tc.end()); std::sort(tcpp.begin(), tcpp.end());
    double mc = tc[tc.size() / 2], mcpp = tcpp[tcpp.size() / 2];
    printf("%-20s C ABI %9.2f us  C++ %9.2f us  C/C++ %.3f\n", c.name, mc * 1e6, mcpp * 1e6, mc / mcpp);
  }
}
