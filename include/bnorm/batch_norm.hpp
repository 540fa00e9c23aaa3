// SPDX-License-Identifier: Apache-2.0
// bnorm::BatchNorm: the complete semantics of Keras' BatchNormalization layer
// (tf-keras 2.x), option by option. docs/semantics.md is the math.
#ifndef BNORM_BATCH_NORM_HPP_
#define BNORM_BATCH_NORM_HPP_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bnorm/communicator.hpp"
#include "bnorm/dtype.hpp"
#include "bnorm/execution.hpp"
#include "bnorm/export.h"

namespace bnorm {

// Keras' `fused`: None (auto), True, False.
enum class Fused { kAuto, kTrue, kFalse };

// Keras' "zeros", "ones" and Constant(value) initializers.
struct Initializer {
  float value = 0.0f;
  static Initializer Zeros() { return Initializer{0.0f}; }
  static Initializer Ones() { return Initializer{1.0f}; }
  static Initializer Constant(float v) { return Initializer{v}; }
};

// Keras' renorm_clipping: missing rmax, rmin, dmax mean inf, 0, inf.
struct BNORM_API RenormClipping {
  std::optional<float> rmax, rmin, dmax;
  // From a Keras-style dict; keys other than rmax, rmin, dmax are an error.
  static RenormClipping FromMap(const std::map<std::string, float>& clipping);
};

// Keras' adjustment: from the input shape to per-channel (scale, bias), written
// into two arrays of the parameter size. Applied in training only.
using Adjustment = std::function<void(const std::vector<int64_t>& input_shape,
                                      float* scale, float* bias)>;

// Keras' gamma/beta constraints: applied in place whenever the variable is
// updated (set_gamma / set_beta, the equivalent of an optimizer step).
// Regularizers are out of scope: they add to the caller's loss, not to the
// layer's math.
using Constraint = std::function<void(float* values, size_t count)>;

struct Options {
  std::vector<int> axis{-1};
  float momentum = 0.99f;
  float epsilon = 1e-3f;
  bool center = true;
  bool scale = true;
  Initializer beta_initializer = Initializer::Zeros();
  Initializer gamma_initializer = Initializer::Ones();
  Initializer moving_mean_initializer = Initializer::Zeros();
  Initializer moving_variance_initializer = Initializer::Ones();
  Constraint beta_constraint;
  Constraint gamma_constraint;
  bool renorm = false;
  RenormClipping renorm_clipping;
  float renorm_momentum = 0.99f;
  Fused fused = Fused::kAuto;
  bool trainable = true;
  std::optional<int64_t> virtual_batch_size;
  Adjustment adjustment;
  // Keras' synchronized (TF >= 2.12): training statistics over the whole
  // batch of every rank. The ranks are reached through a Communicator; without
  // one the layer is its own single rank, bitwise the unsynchronized path.
  // An error with fused=kTrue; fused=kAuto resolves to non-fused.
  bool synchronized = false;
  // Not Keras: with synchronized, Backward's dγ, dβ (and the adjustment's
  // gradients) are the sums over every rank instead of this rank's share (the
  // default: the training framework all-reduces parameter gradients like any
  // weight's). An error without synchronized.
  bool synchronized_gradients = false;
};

class BNORM_API BatchNorm {
 public:
  // Validates every option that does not depend on the input shape; throws
  // bnorm::Error naming the argument.
  explicit BatchNorm(Options options);
  // A layer owns its state: copying would have to choose between sharing and
  // duplicating it, so it is not copyable; moving is fine.
  BatchNorm(const BatchNorm&) = delete;
  BatchNorm& operator=(const BatchNorm&) = delete;
  BatchNorm(BatchNorm&&) noexcept = default;
  BatchNorm& operator=(BatchNorm&&) noexcept = default;

  // Creates the state for inputs of this shape (the first Forward does it too).
  void Build(const std::vector<int64_t>& input_shape);
  bool built() const;

  // One call of the layer. x and y are C-order tensors of `shape` (y may equal
  // x). `training` resolves as in Keras: unset means inference, and
  // trainable == false forces inference. In training the moving statistics
  // (and renorm statistics) are updated; an empty batch updates nothing.
  void Forward(const float* x, float* y, const std::vector<int64_t>& shape,
               std::optional<bool> training = std::nullopt,
               const Execution& exec = Execution());
  // float16 / bfloat16 I/O as raw 16-bit patterns (`dtype` says which).
  void Forward(const uint16_t* x, uint16_t* y, DType dtype,
               const std::vector<int64_t>& shape,
               std::optional<bool> training = std::nullopt,
               const Execution& exec = Execution());

  // The gradients of the most recent Forward of this layer (same shape) for
  // the loss gradient dy: writes dx (may be dy itself, in place) and keeps dγ,
  // dβ and the adjustment's gradients for the accessors below. A training
  // forward gives Keras' training gradient (docs/semantics.md, "Backward
  // (gradients)"): renorm's r, d and the moving statistics are constants; an
  // inference forward (trainable=false included) gives the gradient of its
  // affine map. Needs only what the Forward saved: x must be the Forward's
  // input. Throws bnorm::Error naming the argument, before writing anything:
  // no Forward yet, a shape other than the last Forward's, null or misaligned
  // data, dx overlapping x or dy other than being the same buffer.
  void Backward(const float* x, const float* dy, float* dx, const std::vector<int64_t>& shape,
                const Execution& exec = Execution());
  // float16 / bfloat16 x, dy and dx as raw 16-bit patterns (float32 math).
  void Backward(const uint16_t* x, const uint16_t* dy, uint16_t* dx, DType dtype,
                const std::vector<int64_t>& shape, const Execution& exec = Execution());
  // In-place training (as inplace-ABN): the same gradients from the Forward's
  // output y instead of x, which the Forward may then have overwritten (y ==
  // x). x - mean is recovered as (y - shift) / scale with the forward's own
  // per-channel coefficients, so it is exact up to y's rounding. An error when
  // a scale coefficient is 0 (gamma = 0, say): y holds nothing of x there.
  void BackwardFromOutput(const float* y, const float* dy, float* dx,
                          const std::vector<int64_t>& shape, const Execution& exec = Execution());
  void BackwardFromOutput(const uint16_t* y, const uint16_t* dy, uint16_t* dx, DType dtype,
                          const std::vector<int64_t>& shape, const Execution& exec = Execution());
  // The last Backward's parameter gradients (float32, parameter size): dγ with
  // scale, dβ with center, the adjustment's after a training forward with an
  // adjustment. Empty when not defined or before the first Backward.
  const std::vector<float>& gradient_gamma() const;
  const std::vector<float>& gradient_beta() const;
  const std::vector<float>& gradient_adjustment_scale() const;
  const std::vector<float>& gradient_adjustment_bias() const;

  const Options& options() const;
  // Keras' `layer.trainable = False` after construction (fine-tuning): from
  // then on every call runs in inference mode.
  void set_trainable(bool trainable);
  std::vector<int64_t> parameter_shape() const;  // after Build
  // Whether this layer uses the fused convention (resolved at Build as Keras does).
  bool fused() const;

  // The ranks a synchronized layer spans (docs/semantics.md, "Synchronized").
  // Every rank's layer must make the same sequence of training Forwards and
  // their Backwards: each is a collective call, preceded by a header exchange
  // that turns a local error or a disagreement (channels, ghost batches,
  // options, call sequence) into the same bnorm::Error on every rank.
  // Inference calls stay local. Without a communicator, or with one of size
  // 1, the layer is bitwise the unsynchronized one. An error unless
  // options.synchronized; null removes the communicator.
  void set_communicator(std::shared_ptr<Communicator> communicator);
  const std::shared_ptr<Communicator>& communicator() const;

  // State (float32, parameter size). Setters check the size and apply constraints.
  const std::vector<float>& gamma() const;
  const std::vector<float>& beta() const;
  const std::vector<float>& moving_mean() const;
  const std::vector<float>& moving_variance() const;
  const std::vector<float>& moving_stddev() const;  // renorm only
  const std::vector<float>& renorm_mean() const;    // renorm only
  const std::vector<float>& renorm_stddev() const;  // renorm only
  void set_gamma(const std::vector<float>& values);
  void set_beta(const std::vector<float>& values);
  void set_moving_mean(const std::vector<float>& values);
  void set_moving_variance(const std::vector<float>& values);
  void set_moving_stddev(const std::vector<float>& values);
  void set_renorm_mean(const std::vector<float>& values);
  void set_renorm_stddev(const std::vector<float>& values);

 private:
  struct State;
  Options options_;
  std::shared_ptr<State> state_;
  std::shared_ptr<Communicator> communicator_;
  // The collective calls made so far, the header's call sequence number.
  uint64_t collective_calls_ = 0;
};

}  // namespace bnorm

#endif  // BNORM_BATCH_NORM_HPP_
