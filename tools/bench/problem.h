// SPDX-License-Identifier: Apache-2.0
// bnorm-bench's problem: a case (shape, memory order, geometry), its buffers and data, the layer
// state and folded coefficients, and the calls that are timed (inference, training forward,
// backward).
#ifndef BNORM_TOOLS_BENCH_PROBLEM_H_
#define BNORM_TOOLS_BENCH_PROBLEM_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/dtype.hpp"
#include "bnorm/execution.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "tools/bench/settings.h"
#include "tools/common/buffer.h"

namespace bnorm {
namespace bench {

constexpr float kEpsilon = 1e-3f;
constexpr float kMomentum = 0.99f;

// The timed calls, in the order each case runs them.
enum class Pass { kInference, kTraining, kBackward };
constexpr Pass kPasses[] = {Pass::kInference, Pass::kTraining, Pass::kBackward};
// "inference", "training", "backward": the mode of the JSON rows.
const char* PassName(Pass pass);
// Elements of minimum traffic per value: x read, y written; x read twice, y written; x and dy
// read twice, dx written. An inference with a residual reads z too (Problem::Volumes).
int PassVolumes(Pass pass);

// A case: a shape and how its channels lie in memory.
struct Case {
  std::vector<int64_t> shape;  // as given
  Layout layout = Layout::kNhwc;
  std::vector<int64_t> memory_shape;  // row-major order of the buffer
  std::vector<int> axes;              // feature axes of memory_shape
  std::string label;                  // nhwc, nchw, nc, axis=1,2
  Geometry geometry;
  std::optional<SweepPoint> sweep;  // a case of --sweep
};

// The case of a spec; a UsageError naming the spec's origin when bnorm cannot plan it.
Case MakeCase(const CaseSpec& spec);

// The layer that training runs under --virtual-batch-size or --renorm, or null:
// Keras' options with the case's axes (fused auto resolves to non-fused with
// these). Built up front, so that a case it cannot run fails before any timing.
std::unique_ptr<BatchNorm> MakeLayer(const Case& c, const Options& o);

// The first `count` values of a `dtype` buffer, as floats (exact).
std::vector<float> WidenPrefix(DType dtype, const uint8_t* in, size_t count);
// Value k of a `dtype` buffer, as a float (exact).
float ElementAt(DType dtype, const uint8_t* data, size_t k);

struct Coefficients {
  std::vector<float> hi, lo, scale, shift;
  explicit Coefficients(size_t channels)
      : hi(channels), lo(channels), scale(channels), shift(channels) {}
  NormalizeParams params() const {
    return NormalizeParams{hi.data(), lo.data(), scale.data(), shift.data()};
  }
};

// What the kernels' backward reads and writes besides the tensors: the saved statistics of the
// training forward it differentiates, the sums of the last call, the per-channel constants of
// the data pass, and the parameter gradients.
struct BackwardState {
  std::vector<float> mean_hi, mean_lo;  // the forward's batch mean, split
  std::vector<double> variance;         // the forward's batch variance
  std::vector<double> rho;              // 1 / sqrt(batch variance + epsilon)
  std::vector<double> sum_dy, sum_dy_xmu;
  std::vector<float> k, a, b;
  std::vector<float> dgamma, dbeta;
  explicit BackwardState(size_t channels)
      : mean_hi(channels),
        mean_lo(channels),
        variance(channels),
        rho(channels),
        sum_dy(channels),
        sum_dy_xmu(channels),
        k(channels),
        a(channels),
        b(channels),
        dgamma(channels),
        dbeta(channels) {}
};

struct Problem {
  Case c;
  DType dtype;
  size_t elements = 0;
  testing::AlignedBuffer x, y;
  // With the backward only (empty otherwise): seeded dy and bnorm's dx.
  testing::AlignedBuffer dy, dx;
  // With --residual only (empty otherwise): the seeded residual z that inference adds before
  // its ReLU, allocated as y is.
  testing::AlignedBuffer z;
  // The whole Keras layer that training runs with ghost batches or renorm; null
  // otherwise (training is then the kernels an engine calls).
  BatchNorm* layer;
  std::vector<float> gamma, beta, moving_mean, moving_variance;
  Coefficients inference;  // folded once from the moving statistics
  // Training scratch: batch moments and the updated state.
  std::vector<double> batch_mean, batch_variance;
  std::vector<float> train_moving_mean, train_moving_variance;
  BackwardState backward;

  // Seeded data: channels with their own mean and spread, like activations after a conv. With
  // `with_backward`, also dy and dx, and the one training forward the backward differentiates;
  // with `with_residual`, z.
  Problem(const Case& cs, DType type, BatchNorm* training_layer, bool with_backward,
          bool with_residual);

  // Elements of traffic per value that `pass` really moves from memory: PassVolumes, except
  // 3 for an inference that adds z, 2 for a training forward that reads x once and 3 for a
  // backward that reads x and dy once (channel-resident, src/ops/resident_training.h and
  // resident_backward.h).
  int Volumes(Pass pass) const;

  // Bytes of x (and of y, dy, dx).
  size_t bytes() const { return elements * SizeOf(dtype); }

  // What an inference engine calls per layer: Normalize with the folded moving statistics, and
  // with z, y = relu(bn(x) + z) in the same pass.
  void Inference(const Execution& exec);
  // The training forward: the layer's, or the kernels'.
  void Training(const Execution& exec) {
    layer != nullptr ? LayerTraining(exec) : KernelTraining(exec);
  }
  // bnorm::TrainingNormalize (statistics and normalize; channel-resident where
  // it pays) and the moving-average update (Keras: moving -= (moving - batch) *
  // (1 - momentum)).
  void KernelTraining(const Execution& exec);
  // One training call of the layer; its moving statistics update every time.
  void LayerTraining(const Execution& exec);

  // What a training framework calls per layer for the gradients: the layer's
  // Backward, or the kernels'.
  void Backward(const Execution& exec) {
    layer != nullptr ? LayerBackward(exec) : KernelBackward(exec);
  }
  // BackwardReduce around the saved mean, the constants k = gamma·rho, a = S1/n,
  // b = rho²·S2/n and the gradients dgamma = rho·S2, dbeta = S1 (double ->
  // float), then BackwardData into dx.
  void KernelBackward(const Execution& exec);
  // The layer's Backward of its most recent Forward.
  void LayerBackward(const Execution& exec);
};

}  // namespace bench
}  // namespace bnorm

#endif  // BNORM_TOOLS_BENCH_PROBLEM_H_
