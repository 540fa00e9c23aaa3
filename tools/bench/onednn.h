// SPDX-License-Identifier: Apache-2.0
// The oneDNN peer of bnorm-bench (--compare onednn; built only with oneDNN): its batch
// normalization, forward or backward, on the problem's own buffers and threads (with a
// residual, followed by a binary add and ReLU), and the comparison of two outputs through a
// sample of y or dx.
#ifndef BNORM_TOOLS_BENCH_ONEDNN_H_
#define BNORM_TOOLS_BENCH_ONEDNN_H_

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "tools/bench/problem.h"

namespace bnorm {
namespace bench {

// Evenly spread positions of y (or dx), to compare two implementations' outputs
// without a third full-size buffer.
struct Sample {
  std::vector<size_t> positions;
  std::vector<float> values;
};

Sample TakeSample(DType dtype, const uint8_t* y, size_t elements);

// Max |y - sample|, and the largest |sample| in *magnitude (for a relative tolerance).
double SampleDiff(const Sample& s, DType dtype, const uint8_t* y, double* magnitude);

// oneDNN's batch normalization of the problem's buffers with `threads`
// threads: created once, then each call runs it once. The backward
// (prop_kind::backward: dx, dgamma, dbeta) differentiates one training forward
// run here, reading its saved mean and variance; it writes bnorm's dx. An
// inference of a problem with a residual z is what an engine without a fused
// norm + add runs (oneDNN 2.6 has none): batch_normalization into y, then a
// binary add of z with a ReLU post-op in place on y, both in each call. Throws
// dnnl::error when this oneDNN has no implementation for the case.
class OneDnnBatchNorm {
 public:
  OneDnnBatchNorm(Problem& p, Pass pass, int threads);

  void operator()() {
    primitive_.execute(stream_, args_);
    if (residual_) residual_.execute(stream_, residual_args_);
    stream_.wait();
  }

 private:
  dnnl::engine engine_;
  dnnl::stream stream_;
  dnnl::primitive primitive_;
  std::vector<float> mean_, variance_, gamma_, beta_, dgamma_, dbeta_;
  std::vector<uint8_t> workspace_;
  std::unordered_map<int, dnnl::memory> args_;
  // The binary add and ReLU after an inference with a residual; empty otherwise.
  dnnl::primitive residual_;
  std::unordered_map<int, dnnl::memory> residual_args_;
};

}  // namespace bench
}  // namespace bnorm

#endif  // BNORM_TOOLS_BENCH_ONEDNN_H_
