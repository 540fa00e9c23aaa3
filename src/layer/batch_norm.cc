// SPDX-License-Identifier: Apache-2.0
// bnorm::BatchNorm: Keras' build() and call() over the kernels. Option rules
// live in options.cc, the state and build() in state.cc, the training steps in
// training.cc; this file holds the public API and the per-call flow: the
// checks, training resolution and the transpose for non-adjacent axes.
#include "bnorm/batch_norm.hpp"

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bnorm/error.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "src/layer/options.h"
#include "src/layer/state.h"
#include "src/ops/half.h"
#include "src/ops/transpose.h"
#include "src/plan/checks.h"
#include "src/sync/agreement.h"

namespace bnorm {
namespace {

// The data of a call with `total` > 0 elements of `shape`: non-null, within
// the largest buffer there can be (the float32 working copy's, when the
// feature axes are transposed), aligned, and in place or disjoint.
void CheckData(const void* x, const void* y, DType type, const std::vector<int64_t>& shape,
               size_t total, bool transposed) {
  if (x == nullptr || y == nullptr) {
    throw Error(ErrorCode::kNullPointer, std::string(x == nullptr ? "x" : "y") +
                                             " is null for a shape of " + std::to_string(total) +
                                             " elements");
  }
  TensorBytes("shape", shape.data(), shape.size(), total, transposed ? DType::kFloat32 : type);
  CheckAligned("x", x, type);
  CheckAligned("y", y, type);
  CheckInPlaceOrDisjoint(x, y, total * SizeOf(type));
}

}  // namespace

BatchNorm::BatchNorm(Options options) : options_(std::move(options)) { ValidateOptions(options_); }

bool BatchNorm::built() const { return state_ != nullptr; }

const Options& BatchNorm::options() const { return options_; }

void BatchNorm::set_trainable(bool trainable) { options_.trainable = trainable; }

void BatchNorm::Build(const std::vector<int64_t>& input_shape) {
  if (built()) {
    state_->CheckInput(input_shape);
    return;
  }
  state_ = State::Create(options_, input_shape);
}

void BatchNorm::Forward(const float* x, float* y, const std::vector<int64_t>& shape,
                        std::optional<bool> training, const Execution& exec) {
  State::Call(this, x, y, DType::kFloat32, shape, training, exec);
}

void BatchNorm::Forward(const uint16_t* x, uint16_t* y, DType dtype,
                        const std::vector<int64_t>& shape, std::optional<bool> training,
                        const Execution& exec) {
  if (dtype == DType::kFloat32) {
    throw Error(ErrorCode::kInvalidArgument,
                "dtype is float32 for 16-bit data; expected float16 or bfloat16");
  }
  State::Call(this, x, y, dtype, shape, training, exec);
}

void BatchNorm::State::Call(BatchNorm* layer, const void* x, void* y, DType type,
                            const std::vector<int64_t>& shape, std::optional<bool> training,
                            const Execution& exec) {
  // Keras: unset means inference (no learning phase here), and trainable=false
  // forces inference (the fine-tuning behaviour of TF 2).
  const bool train = training.value_or(false) && layer->options_.trainable;
  Communicator* comm = train ? Synchronizing(*layer) : nullptr;
  if (comm != nullptr) {
    CallSynchronized(layer, x, y, type, shape, *comm, exec);
    return;
  }
  // Everything is checked before the layer is built or y is written: a
  // rejected call leaves both as they were.
  const std::shared_ptr<State> state =
      layer->state_ ? layer->state_ : Create(layer->options_, shape);
  State& s = *state;
  const size_t total = s.CheckInput(shape);
  if (total != 0) CheckData(x, y, type, shape, total, !s.permutation.empty());
  layer->state_ = state;
  s.saved.synchronized = false;
  if (total != 0) s.RunInLayout(layer->options_, x, y, type, shape, total, train, exec);
  // An empty batch writes nothing and learns nothing, but its Backward is
  // defined (an empty dx, zero parameter gradients).
  s.saved.valid = true;
  s.saved.trained = train;
  s.saved.shape = shape;
}

Communicator* BatchNorm::State::Synchronizing(const BatchNorm& layer) {
  Communicator* comm = layer.communicator_.get();
  return layer.options_.synchronized && comm != nullptr && comm->size() > 1 ? comm : nullptr;
}

void BatchNorm::State::CallSynchronized(BatchNorm* layer, const void* x, void* y, DType type,
                                        const std::vector<int64_t>& shape, Communicator& comm,
                                        const Execution& exec) {
  const Options& options = layer->options_;
  CallHeader header = MakeHeader(CallKind::kForward, layer->collective_calls_++, options);
  std::shared_ptr<State> state;
  size_t total = 0;
  AdjustmentTerms adjustment;
  // The checks of Call, the ghost count and the adjustment (a user callback),
  // whose error travels in the header: a rank that threw before the exchange
  // would leave the others waiting in it.
  try {
    state = layer->state_ ? layer->state_ : Create(options, shape);
    total = state->CheckInput(shape);
    header.channels = state->channels;
    if (total != 0) {
      CheckData(x, y, type, shape, total, !state->permutation.empty());
      header.groups = GhostCount(options, static_cast<size_t>(shape[0]));
      header.count = total / (state->channels * header.groups);
    }
    try {
      Adjust(options, shape, state->channels, &adjustment);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error(ErrorCode::kInvalidArgument, std::string("the adjustment threw: ") + e.what());
    }
  } catch (const Error& e) {
    RecordError(e, &header);
  }
  const Agreement agreed = Agree(comm, header);
  layer->state_ = state;
  State& s = *state;
  const Peers peers{&comm, agreed.groups, agreed.count, std::move(adjustment)};
  if (total != 0) {
    s.RunInLayout(options, x, y, type, shape, total, true, exec, &peers);
  } else {
    s.Train(options, nullptr, nullptr, type, shape, Geometry::Dense(0, s.channels, 1), exec,
            &peers);
  }
  s.saved.valid = true;
  s.saved.trained = true;
  s.saved.shape = shape;
}

void BatchNorm::State::RunInLayout(const Options& options, const void* x, void* y, DType type,
                                   const std::vector<int64_t>& shape, size_t total, bool train,
                                   const Execution& exec, const Peers* peers) {
  State& s = *this;
  if (s.permutation.empty()) {
    const Geometry g = PlanGeometry(shape.data(), s.rank, s.axes.data(), s.axes.size());
    s.Run(options, x, y, type, shape, g, train, exec, peers);
    return;
  }
  // Feature axes apart: work channels-last on a transposed float32 copy.
  std::vector<float> wide;
  const float* in = static_cast<const float*>(x);
  if (type != DType::kFloat32) {
    wide.resize(total);
    WidenToFloat(static_cast<const uint16_t*>(x), type, total, wide.data());
    in = wide.data();
  }
  std::vector<float> work(total);
  Transpose(in, shape, s.permutation, work.data());
  s.Run(options, work.data(), work.data(), DType::kFloat32, shape,
        Geometry::Dense(total / s.channels, s.channels, 1), train, exec, peers);
  std::vector<int64_t> permuted(s.rank);
  for (size_t k = 0; k < s.rank; ++k) permuted[k] = shape[static_cast<size_t>(s.permutation[k])];
  float* out = type == DType::kFloat32 ? static_cast<float*>(y) : wide.data();
  Transpose(work.data(), permuted, InversePermutation(s.permutation), out);
  if (type != DType::kFloat32) NarrowFromFloat(out, type, total, static_cast<uint16_t*>(y));
}

void BatchNorm::State::Run(const Options& options, const void* x, void* y, DType type,
                           const std::vector<int64_t>& shape, const Geometry& g, bool training,
                           const Execution& exec, const Peers* peers) {
  if (training) {
    Train(options, x, y, type, shape, g, exec, peers);
  } else {
    Normalize(x, y, type, g, InferenceParams(), exec);
    SaveInference(g);
  }
}

std::vector<int64_t> BatchNorm::parameter_shape() const {
  if (!state_) {
    throw Error(ErrorCode::kInvalidArgument,
                "parameter_shape is not known yet: the layer is not built");
  }
  return state_->parameter_shape;
}

void BatchNorm::set_communicator(std::shared_ptr<Communicator> communicator) {
  if (communicator && !options_.synchronized) {
    throw Error(ErrorCode::kInvalidArgument,
                "a communicator is set on a layer with synchronized=false; expected "
                "synchronized=true");
  }
  communicator_ = std::move(communicator);
}

const std::shared_ptr<Communicator>& BatchNorm::communicator() const { return communicator_; }

bool BatchNorm::fused() const {
  if (!state_) {
    throw Error(ErrorCode::kInvalidArgument, "fused is resolved at build: the layer is not built");
  }
  return state_->fused;
}

const std::vector<float>& BatchNorm::gamma() const { return State::Require(*this, Var::kGamma); }
const std::vector<float>& BatchNorm::beta() const { return State::Require(*this, Var::kBeta); }
const std::vector<float>& BatchNorm::moving_mean() const {
  return State::Require(*this, Var::kMovingMean);
}
const std::vector<float>& BatchNorm::moving_variance() const {
  return State::Require(*this, Var::kMovingVariance);
}
const std::vector<float>& BatchNorm::moving_stddev() const {
  return State::Require(*this, Var::kMovingStddev);
}
const std::vector<float>& BatchNorm::renorm_mean() const {
  return State::Require(*this, Var::kRenormMean);
}
const std::vector<float>& BatchNorm::renorm_stddev() const {
  return State::Require(*this, Var::kRenormStddev);
}

void BatchNorm::set_gamma(const std::vector<float>& v) { State::Assign(this, Var::kGamma, v); }
void BatchNorm::set_beta(const std::vector<float>& v) { State::Assign(this, Var::kBeta, v); }
void BatchNorm::set_moving_mean(const std::vector<float>& v) {
  State::Assign(this, Var::kMovingMean, v);
}
void BatchNorm::set_moving_variance(const std::vector<float>& v) {
  State::Assign(this, Var::kMovingVariance, v);
}
void BatchNorm::set_moving_stddev(const std::vector<float>& v) {
  State::Assign(this, Var::kMovingStddev, v);
}
void BatchNorm::set_renorm_mean(const std::vector<float>& v) {
  State::Assign(this, Var::kRenormMean, v);
}
void BatchNorm::set_renorm_stddev(const std::vector<float>& v) {
  State::Assign(this, Var::kRenormStddev, v);
}

}  // namespace bnorm
