// SPDX-License-Identifier: Apache-2.0
// The layer's state: build() (the checks of the input shape against the
// options, the variables and their initial values), the variables' accessors
// and the inference coefficients.
#include "src/layer/state.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "bnorm/error.hpp"
#include "src/layer/options.h"
#include "src/plan/checks.h"
#include "src/plan/format.h"

namespace bnorm {
namespace {

// Why the variable does not exist with these options (empty when it does):
// Keras creates gamma only with scale, beta only with center, and the renorm
// variables only with renorm.
std::string Absence(Var v, const Options& options) {
  if (v == Var::kGamma && !options.scale) return "gamma does not exist with scale=false";
  if (v == Var::kBeta && !options.center) return "beta does not exist with center=false";
  const bool renorm_var =
      v == Var::kMovingStddev || v == Var::kRenormMean || v == Var::kRenormStddev;
  if (renorm_var && !options.renorm) return std::string(Name(v)) + " exists only with renorm=true";
  return "";
}

}  // namespace

const char* Name(Var v) {
  switch (v) {
    case Var::kGamma:
      return "gamma";
    case Var::kBeta:
      return "beta";
    case Var::kMovingMean:
      return "moving_mean";
    case Var::kMovingVariance:
      return "moving_variance";
    case Var::kMovingStddev:
      return "moving_stddev";
    case Var::kRenormMean:
      return "renorm_mean";
    case Var::kRenormStddev:
      return "renorm_stddev";
  }
  return "";
}

std::shared_ptr<BatchNorm::State> BatchNorm::State::Create(const Options& o,
                                                           const std::vector<int64_t>& shape) {
  if (shape.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "input rank is 0; expected a tensor of rank >= 1");
  }
  ShapeElements("shape", shape.data(), shape.size());
  auto s = std::make_shared<State>();
  s->rank = shape.size();
  s->axes = CanonicalAxes(o.axis, s->rank);
  s->fused = ResolveAtBuild(o, s->axes, s->rank);
  s->epsilon = EffectiveEpsilon(o, s->fused);
  s->parameter_shape = ParameterShape(shape, s->axes);
  // The variables must fit in memory even when the batch is empty.
  const int64_t* params = s->parameter_shape.data();
  const size_t num_params = s->parameter_shape.size();
  s->channels = ShapeElements("parameter shape", params, num_params);
  TensorBytes("parameter shape", params, num_params, s->channels, DType::kFloat32);
  if (s->axes.back() - s->axes.front() + 1 != static_cast<int>(s->axes.size())) {
    for (size_t k = 0; k < s->rank; ++k) {
      if (!std::binary_search(s->axes.begin(), s->axes.end(), static_cast<int>(k))) {
        s->permutation.push_back(static_cast<int>(k));
      }
    }
    s->permutation.insert(s->permutation.end(), s->axes.begin(), s->axes.end());
  }

  const size_t C = s->channels;
  s->gamma.assign(C, o.scale ? o.gamma_initializer.value : 1.0f);
  s->beta.assign(C, o.center ? o.beta_initializer.value : 0.0f);
  s->moving_mean.assign(C, o.moving_mean_initializer.value);
  s->moving_variance.assign(C, o.moving_variance_initializer.value);
  if (o.renorm) {
    // Keras tracks the inference stddev with renorm: sqrt of the variance init.
    const float stddev = std::sqrt(o.moving_variance_initializer.value);
    s->moving_stddev.assign(C, stddev);
    s->renorm_mean.assign(C, o.moving_mean_initializer.value);
    s->renorm_stddev.assign(C, stddev);
  }
  s->inference_scale.resize(C);
  s->inference_shift.resize(C);
  // Backward's arrays, allocated here once for a group per channel.
  s->saved.shape.reserve(s->rank);
  s->saved.Resize(C);
  for (std::vector<double>* v : {&s->saved.r, &s->saved.d, &s->saved.adjustment_scale,
                                 &s->saved.adjustment_bias, &s->saved.gamma}) {
    v->assign(C, 0.0);
  }
  for (std::vector<float>* v :
       {&s->dgamma, &s->dbeta, &s->dadjustment_scale, &s->dadjustment_bias}) {
    v->reserve(C);
  }
  return s;
}

void Saved::Resize(size_t groups) {
  if (groups != mean_hi.size()) inference_of = kNone;
  mean_hi.resize(groups);
  mean_lo.resize(groups);
  rho.resize(groups);
  sum_dy.resize(groups);
  sum_dy_xmu.resize(groups);
  k.resize(groups);
  a.resize(groups);
  b.resize(groups);
  scale.resize(groups);
  shift.resize(groups);
  zeros.assign(groups, 0.0f);
}

// Inference is affine in x: the moving mean as the mean, rho_m as rho, and no
// renorm or adjustment (Keras applies both in training only).
void BatchNorm::State::SaveInference(const Geometry& g) {
  saved.Resize(channels);
  saved.view = g;
  saved.ghosts = 1;
  saved.sample_elements = 0;
  if (saved.inference_of == version) return;
  const NormalizeParams inference = InferenceParams();
  for (size_t c = 0; c < channels; ++c) {
    saved.mean_hi[c] = moving_mean[c];
    saved.mean_lo[c] = 0.0f;
    saved.rho[c] = 1.0 / std::sqrt(static_cast<double>(moving_variance[c]) + epsilon);
    saved.r[c] = 1.0;
    saved.d[c] = 0.0;
    saved.adjustment_scale[c] = 1.0;
    saved.adjustment_bias[c] = 0.0;
    saved.gamma[c] = gamma[c];
    saved.scale[c] = inference.scale[c];
    saved.shift[c] = inference.shift[c];
  }
  saved.inference_of = version;
}

std::vector<float>& BatchNorm::State::Get(Var v) {
  switch (v) {
    case Var::kGamma:
      return gamma;
    case Var::kBeta:
      return beta;
    case Var::kMovingMean:
      return moving_mean;
    case Var::kMovingVariance:
      return moving_variance;
    case Var::kMovingStddev:
      return moving_stddev;
    case Var::kRenormMean:
      return renorm_mean;
    case Var::kRenormStddev:
      return renorm_stddev;
  }
  return gamma;
}

std::vector<float>& BatchNorm::State::Require(const BatchNorm& layer, Var v) {
  if (!layer.state_) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(Name(v)) +
                    " does not exist yet: the layer is not built (call Build or Forward first)");
  }
  const std::string absence = Absence(v, layer.options_);
  if (!absence.empty()) throw Error(ErrorCode::kInvalidArgument, absence);
  return layer.state_->Get(v);
}

void BatchNorm::State::Assign(BatchNorm* layer, Var v, const std::vector<float>& values) {
  std::vector<float>& variable = Require(*layer, v);
  if (values.size() != variable.size()) {
    throw Error(ErrorCode::kShapeMismatch,
                std::string(Name(v)) + " has " + std::to_string(values.size()) +
                    " values; expected " + std::to_string(variable.size()) +
                    " (the parameter shape " + FormatList(layer->state_->parameter_shape) + ")");
  }
  variable = values;
  // Keras applies a constraint after every update of the variable.
  const Options& o = layer->options_;
  const Constraint& constraint = v == Var::kGamma  ? o.gamma_constraint
                                 : v == Var::kBeta ? o.beta_constraint
                                                   : Constraint();
  if (constraint) constraint(variable.data(), variable.size());
  layer->state_->VariablesChanged();
}

// The moving mean is exactly a float: no low part.
NormalizeParams BatchNorm::State::InferenceParams() {
  if (inference_version != version) {
    for (size_t c = 0; c < channels; ++c) {
      inference_scale[c] = static_cast<float>(
          gamma[c] / std::sqrt(static_cast<double>(moving_variance[c]) + epsilon));
      inference_shift[c] = beta[c];
    }
    inference_version = version;
  }
  NormalizeParams params;
  params.mean_hi = moving_mean.data();
  params.scale = inference_scale.data();
  params.shift = inference_shift.data();
  return params;
}

size_t BatchNorm::State::CheckInput(const std::vector<int64_t>& shape) const {
  if (shape.size() != rank) {
    throw Error(ErrorCode::kShapeMismatch,
                "shape " + FormatList(shape) + " has rank " + std::to_string(shape.size()) +
                    "; the layer was built for rank " + std::to_string(rank));
  }
  const size_t total = ShapeElements("shape", shape.data(), shape.size());
  for (size_t i = 0; i < axes.size(); ++i) {
    const size_t a = static_cast<size_t>(axes[i]);
    if (shape[a] != parameter_shape[i]) {
      throw Error(ErrorCode::kShapeMismatch,
                  "shape[" + std::to_string(a) + "] is " + std::to_string(shape[a]) +
                      "; the layer was built with size " + std::to_string(parameter_shape[i]) +
                      " on feature axis " + std::to_string(a));
    }
  }
  return total;
}

}  // namespace bnorm
