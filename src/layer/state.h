// SPDX-License-Identifier: Apache-2.0
// BatchNorm's state: what Keras' build() creates (the canonical feature axes,
// the parameter shape, the fused convention and the variables) and the
// inference coefficients kept in step with the variables.
#ifndef BNORM_SRC_LAYER_STATE_H_
#define BNORM_SRC_LAYER_STATE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/communicator.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"

namespace bnorm {

// The layer's variables, in bnorm_state order.
enum class Var {
  kGamma,
  kBeta,
  kMovingMean,
  kMovingVariance,
  kMovingStddev,
  kRenormMean,
  kRenormStddev
};

// Keras' variable names ("gamma", "moving_mean", ...).
const char* Name(Var v);

// What Backward needs of the most recent Forward, and the backward's working
// arrays: O(groups) values, sized at build for one group per channel and
// grown once by the first training call with ghost batches, so that later
// calls reuse them. A group is a (ghost, channel) pair, ghost-major.
struct Saved {
  bool valid = false;         // a Forward has run
  bool trained = false;       // it ran in training mode
  bool synchronized = false;  // with statistics over every rank
  // The values per group behind the statistics: this rank's, or every rank's
  // when synchronized (a synchronized Backward divides by it).
  double count = 0.0;
  std::vector<int64_t> shape;
  // The forward's geometry as its kernels saw it (channels-last after a
  // transpose), as `ghosts` views `sample_elements` apart.
  Geometry view;
  size_t ghosts = 1;
  size_t sample_elements = 0;
  // Per group: the mean the forward subtracted (the batch mean split in two
  // floats, or the moving mean in inference) and rho = 1/sqrt(var + eps).
  std::vector<float> mean_hi, mean_lo;
  std::vector<double> rho;
  // Per channel: renorm's r and d (1 and 0 without renorm or in inference),
  // the adjustment's scale and bias (1 and 0 without one) and gamma, as the
  // forward used them.
  std::vector<double> r, d, adjustment_scale, adjustment_bias, gamma;
  // Per group: the forward's y = ((x - mean_hi) - mean_lo) * scale + shift
  // coefficients, to recover x - mean from y (BackwardFromOutput), and zeros
  // (the low part of shift as a mean).
  std::vector<float> scale, shift, zeros;
  // Backward's sums and data-pass coefficients per group.
  std::vector<double> sum_dy, sum_dy_xmu;
  // A synchronized Backward's sums over every rank: S1 of every group, then S2.
  std::vector<double> global_sums;
  std::vector<float> k, a, b;
  // The variables' version (BatchNorm::State::version) whose inference values
  // the arrays above hold, or kNone: an inference call after another with the
  // same variables only records its geometry.
  static constexpr uint64_t kNone = ~uint64_t{0};
  uint64_t inference_of = kNone;

  // Sizes the per-group arrays for `groups` groups (no allocation once they
  // have held as many).
  void Resize(size_t groups);
};

// Keras' adjustment(shape): per-channel scale and bias (1 and 0 without one).
struct AdjustmentTerms {
  std::vector<float> scale, bias;
};
void Adjust(const Options& options, const std::vector<int64_t>& shape, size_t C,
            AdjustmentTerms* adjustment);

// Per-channel mean and biased variance; per (ghost, channel) for the ghosts'
// own statistics.
struct Moments {
  std::vector<double> mean, variance;
  void Resize(size_t n) { mean.resize(n), variance.resize(n); }
  void Zero(size_t n) { mean.assign(n, 0.0), variance.assign(n, 0.0); }
};

// Renorm's r and d per channel (1 and 0 without renorm), and the batch stddev
// that the renorm statistics track (only with renorm).
struct RenormCorrection {
  std::vector<double> r, d, stddev;
  void Resize(size_t n) { r.resize(n), d.resize(n), stddev.resize(n); }
};

// The normalize coefficients per (ghost, channel): the mean as a float pair,
// the scale and the shift.
struct Coefficients {
  std::vector<float> hi, lo, scale, shift;
  void Resize(size_t n) { hi.resize(n), lo.resize(n), scale.resize(n), shift.resize(n); }
};

// A training call's working values, kept between calls so that a training
// call allocates nothing once a call of as many groups has run.
struct TrainingScratch {
  AdjustmentTerms adjustment;
  Moments ghost;            // per group
  Moments batch;            // per channel: the average over ghosts
  RenormCorrection renorm;  // per channel
  Coefficients coefficients;
};

// The ranks of a synchronized call and the ghost batches they agreed on
// (src/sync/agreement.h); a rank whose batch is empty takes the others'.
struct Peers {
  Communicator* comm = nullptr;
  size_t groups = 0;
  uint64_t count = 0;          // the values per group over every rank
  AdjustmentTerms adjustment;  // this rank's, asked for before the agreement
};

// The ghost batches of a batch of `batch` samples: batch / virtual_batch_size
// (1 without ghost batches); an error when it does not divide evenly.
size_t GhostCount(const Options& options, size_t batch);

struct BatchNorm::State {
  size_t rank = 0;
  std::vector<int> axes;  // canonical feature axes
  std::vector<int64_t> parameter_shape;
  size_t channels = 0;
  bool fused = false;
  double epsilon = 0.0;  // after the fused floor
  // Non-adjacent feature axes: the permutation that moves them last (empty
  // when they are adjacent and the kernels read the input directly).
  std::vector<int> permutation;

  std::vector<float> gamma, beta, moving_mean, moving_variance;
  std::vector<float> moving_stddev, renorm_mean, renorm_stddev;

  // Bumped by every change of a variable (VariablesChanged): what is derived
  // from the variables is recomputed only when it moved, so a training loop
  // never computes the inference coefficients and an inference loop once.
  uint64_t version = 0;
  void VariablesChanged() { ++version; }

  // Inference coefficients (sized at build), valid for inference_version:
  // InferenceParams refreshes them first when a variable has changed since.
  std::vector<float> inference_scale, inference_shift;
  uint64_t inference_version = Saved::kNone;

  Saved saved;
  TrainingScratch scratch;
  // The gradients of the last Backward (empty when not defined).
  std::vector<float> dgamma, dbeta, dadjustment_scale, dadjustment_bias;

  // Keras' build() for inputs of `shape`: checks the shape against the
  // options and creates the variables. The caller installs the result, so a
  // rejected shape leaves a layer unbuilt.
  static std::shared_ptr<State> Create(const Options& options, const std::vector<int64_t>& shape);

  std::vector<float>& Get(Var v);
  // The variable `v` of a built layer that has it, else an error naming it.
  static std::vector<float>& Require(const BatchNorm& layer, Var v);
  // Sets a variable (size checked, constraint applied, inference refreshed).
  static void Assign(BatchNorm* layer, Var v, const std::vector<float>& values);

  // y = (x - moving_mean) * (gamma / sqrt(moving_variance + eps)) + beta,
  // recomputed here when a variable has changed since the last call.
  NormalizeParams InferenceParams();

  // Checks a later input against the built rank and feature sizes; returns
  // its element count.
  size_t CheckInput(const std::vector<int64_t>& shape) const;

  // Both Forwards: checks, training resolution, and the transpose for
  // non-adjacent feature axes around Run.
  static void Call(BatchNorm* layer, const void* x, void* y, DType type,
                   const std::vector<int64_t>& shape, std::optional<bool> training,
                   const Execution& exec);
  // A training call of a layer whose communicator spans several ranks: the
  // same checks, whose error waits for the header exchange, then Train over
  // every rank's statistics (an empty local batch contributes nothing).
  static void CallSynchronized(BatchNorm* layer, const void* x, void* y, DType type,
                               const std::vector<int64_t>& shape, Communicator& comm,
                               const Execution& exec);
  // The layer's communicator when its calls span several ranks, else null.
  static Communicator* Synchronizing(const BatchNorm& layer);

  // A non-empty call of `total` elements in the kernels' layout: x directly,
  // or channels-last on a transposed float32 copy for non-adjacent feature axes.
  void RunInLayout(const Options& options, const void* x, void* y, DType type,
                   const std::vector<int64_t>& shape, size_t total, bool train,
                   const Execution& exec, const Peers* peers = nullptr);

  // One call on x and y of `type` and geometry g (channels-last after a
  // transpose); `shape` is the caller's, for the batch size and the adjustment.
  void Run(const Options& options, const void* x, void* y, DType type,
           const std::vector<int64_t>& shape, const Geometry& g, bool training,
           const Execution& exec, const Peers* peers);

  // Keeps what an inference Backward needs: the moving mean, rho_m and gamma
  // over the geometry g.
  void SaveInference(const Geometry& g);

  // Both Backwards (backward.cc): checks against the last Forward, the
  // transpose for non-adjacent feature axes around RunBackward.
  // With `from_output`, `x` is the forward's output y instead of its input.
  static void Backward(BatchNorm* layer, const void* x, const void* dy, void* dx, DType type,
                       const std::vector<int64_t>& shape, bool from_output, const Execution& exec);
  // The gradients over x (or y), dy and dx of `type` laid out as the
  // forward's kernels saw them.
  // With `peers`, the sums are every rank's (and n the count over ranks).
  void RunBackward(const void* x, const void* dy, void* dx, DType type, bool from_output,
                   const Execution& exec, const Peers* peers);
  // Backward's checks of x, dy, dx and the shape; returns the element count.
  size_t CheckBackward(const void* x, const void* dy, const void* dx, DType type,
                       const std::vector<int64_t>& shape, bool from_output) const;
  // The rank-ordered sums of every rank's S1 and S2 into saved.global_sums
  // (this rank's zeros for an empty batch).
  void ShareSums(const Peers& peers);
  // BackwardFromOutput divides by the forward's scale coefficients: none may be 0.
  void CheckRecoverable() const;
  // The parameter gradients from the sums of RunBackward (zero for an `empty` batch).
  void Gradients(const Options& options, bool empty);
  // gradient_gamma, _beta, _adjustment_scale, _adjustment_bias (`which` 0..3):
  // empty before build.
  static const std::vector<float>& Gradient(const BatchNorm& layer, int which);

  // Keras' training call (training.cc): batch or ghost statistics, renorm,
  // adjustment, normalize, and the moving-average updates.
  // With `peers`, the statistics are merged over every rank (x and y may be
  // null for an empty local batch); a globally empty batch updates nothing.
  void Train(const Options& options, const void* x, void* y, DType type,
             const std::vector<int64_t>& shape, const Geometry& g, const Execution& exec,
             const Peers* peers);
};

}  // namespace bnorm

#endif  // BNORM_SRC_LAYER_STATE_H_
