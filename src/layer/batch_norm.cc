// bnorm::BatchNorm: Keras' build() and call() over the kernels. Option rules
// live in options.cc; this file holds the state and the per-call flow:
// training resolution, batch or ghost statistics, renorm, adjustment, the
// folded per-channel coefficients, and the moving-average updates.
#include "bnorm/batch_norm.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "bnorm/error.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "src/parallel/blocks.h"
#include "src/ops/half.h"
#include "src/layer/options.h"
#include "src/ops/transpose.h"

namespace bnorm {
namespace {

enum class Var {
  kGamma,
  kBeta,
  kMovingMean,
  kMovingVariance,
  kMovingStddev,
  kRenormMean,
  kRenormStddev
};

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

// The number of elements of `shape`, or an error when a size is negative or
// the shape describes more memory than can exist (PTRDIFF_MAX bytes of floats;
// a single huge axis counts even when another axis is 0, since the parameters
// would have to hold it).
size_t Elements(const std::vector<int64_t>& shape) {
  const size_t limit = static_cast<size_t>(PTRDIFF_MAX) / sizeof(float);
  // The product of the non-zero sizes bounds every buffer the shape implies,
  // the parameters' too, even when another axis is 0.
  size_t nonzero = 1;
  bool too_large = false, overflow = false, empty = false;
  for (size_t k = 0; k < shape.size(); ++k) {
    if (shape[k] < 0) {
      throw Error("shape[" + std::to_string(k) + "] is " + std::to_string(shape[k]) +
                  "; expected a size >= 0");
    }
    const size_t size = static_cast<size_t>(shape[k]);
    empty |= size == 0;
    if (size == 0) continue;
    overflow |= __builtin_mul_overflow(nonzero, size, &nonzero);
    too_large |= nonzero > limit;
  }
  if (overflow) {
    throw Error("shape " + FormatList(shape) + " has more elements than fit in size_t");
  }
  if (too_large) {
    throw Error("shape " + FormatList(shape) + " is larger than any buffer can be (at most " +
                std::to_string(limit) + " elements)");
  }
  return empty ? 0 : nonzero;
}

// moving -= (moving - value) * (1 - momentum), Keras' _assign_moving_average,
// computed in double and rounded once to the float32 variable.
float MovingAverage(float moving, double value, float momentum) {
  const double m = moving;
  return static_cast<float>(m - (m - value) * (1.0 - static_cast<double>(momentum)));
}

// Ghost i of G holds samples i, i + G, i + 2G, ... (Keras reshapes [B, ...] to
// [V, G, ...] and keeps axis 1): a view whose rows come in groups of one
// sample's outer rows, G samples apart, starting at sample i.
Geometry GhostView(const Geometry& g, size_t batch, size_t ghosts, size_t* sample_elements) {
  const size_t per_sample = g.outer / batch;
  *sample_elements = per_sample * g.row_elements();
  if (ghosts == 1) return g;
  Geometry view = g;
  view.outer = g.outer / ghosts;
  if (per_sample == 1) {
    // One row per sample ([B, C], NCHW): a single group of strided rows, so
    // that blocks span many samples.
    view.row_stride = ghosts * *sample_elements;
    view.group_rows = view.outer;
    view.group_stride = view.outer * view.row_stride;
  } else {
    view.group_rows = per_sample;
    view.group_stride = ghosts * *sample_elements;
  }
  return view;
}

}  // namespace

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

  // Inference coefficients, refreshed whenever a variable changes, so that an
  // inference call only reads the state and allocates nothing.
  std::vector<float> inference_scale, inference_shift;

  std::vector<float>& Get(Var v) {
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

  // The variable `v` of a built layer that has it, else an error naming it.
  static std::vector<float>& Require(const BatchNorm& layer, Var v) {
    if (!layer.state_) {
      throw Error(std::string(Name(v)) +
                  " does not exist yet: the layer is not built (call Build or Forward first)");
    }
    const std::string absence = Absence(v, layer.options_);
    if (!absence.empty()) throw Error(absence);
    return layer.state_->Get(v);
  }

  static void Assign(BatchNorm* layer, Var v, const std::vector<float>& values) {
    std::vector<float>& variable = Require(*layer, v);
    if (values.size() != variable.size()) {
      throw Error(std::string(Name(v)) + " has " + std::to_string(values.size()) +
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
    layer->state_->RefreshInference();
  }

  // y = (x - moving_mean) * (gamma / sqrt(moving_variance + eps)) + beta.
  void RefreshInference() {
    inference_scale.resize(channels);
    inference_shift = beta;
    for (size_t c = 0; c < channels; ++c) {
      inference_scale[c] = static_cast<float>(
          gamma[c] / std::sqrt(static_cast<double>(moving_variance[c]) + epsilon));
    }
  }

  // The moving mean is exactly a float: no low part.
  NormalizeParams InferenceParams() const {
    NormalizeParams params;
    params.mean_hi = moving_mean.data();
    params.scale = inference_scale.data();
    params.shift = inference_shift.data();
    return params;
  }

  // The geometry of an input whose feature axes are adjacent.
  Geometry Plan(const std::vector<int64_t>& shape) const {
    size_t outer = 1, inner = 1;
    for (size_t k = 0; k < static_cast<size_t>(axes.front()); ++k) {
      outer *= static_cast<size_t>(shape[k]);
    }
    for (size_t k = static_cast<size_t>(axes.back()) + 1; k < rank; ++k) {
      inner *= static_cast<size_t>(shape[k]);
    }
    return Geometry::Dense(outer, channels, inner);
  }

  // Checks a later input against the built rank and feature sizes; returns
  // its element count.
  size_t CheckInput(const std::vector<int64_t>& shape) const;

  // Both Forwards: checks, training resolution, and the transpose for
  // non-adjacent feature axes around Run.
  static void Call(BatchNorm* layer, const void* x, void* y, DType type,
                   const std::vector<int64_t>& shape, std::optional<bool> training,
                   const Execution& exec);

  // One call on x and y of `type` and geometry g (channels-last after a
  // transpose); `shape` is the caller's, for the batch size and the adjustment.
  void Run(const Options& options, const void* x, void* y, DType type,
           const std::vector<int64_t>& shape, const Geometry& g, bool training,
           const Execution& exec);
};

BatchNorm::BatchNorm(Options options) : options_(std::move(options)) { ValidateOptions(options_); }

bool BatchNorm::built() const { return state_ != nullptr; }

const Options& BatchNorm::options() const { return options_; }

void BatchNorm::set_trainable(bool trainable) { options_.trainable = trainable; }

void BatchNorm::Build(const std::vector<int64_t>& input_shape) {
  if (built()) {
    state_->CheckInput(input_shape);
    return;
  }
  if (input_shape.empty()) throw Error("input rank is 0; expected a tensor of rank >= 1");
  Elements(input_shape);
  auto s = std::make_shared<State>();
  s->rank = input_shape.size();
  s->axes = CanonicalAxes(options_.axis, s->rank);
  s->fused = ResolveAtBuild(options_, s->axes, s->rank);
  s->epsilon = EffectiveEpsilon(options_, s->fused);
  s->parameter_shape = ParameterShape(input_shape, s->axes);
  s->channels = 1;
  for (int64_t size : s->parameter_shape) s->channels *= static_cast<size_t>(size);
  if (s->axes.back() - s->axes.front() + 1 != static_cast<int>(s->axes.size())) {
    for (size_t k = 0; k < s->rank; ++k) {
      if (!std::binary_search(s->axes.begin(), s->axes.end(), static_cast<int>(k))) {
        s->permutation.push_back(static_cast<int>(k));
      }
    }
    s->permutation.insert(s->permutation.end(), s->axes.begin(), s->axes.end());
  }

  const size_t C = s->channels;
  const Options& o = options_;
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
  s->RefreshInference();
  state_ = std::move(s);
}

size_t BatchNorm::State::CheckInput(const std::vector<int64_t>& shape) const {
  const State& s = *this;
  if (shape.size() != s.rank) {
    throw Error("shape " + FormatList(shape) + " has rank " + std::to_string(shape.size()) +
                "; the layer was built for rank " + std::to_string(s.rank));
  }
  const size_t total = Elements(shape);
  for (size_t i = 0; i < s.axes.size(); ++i) {
    const size_t a = static_cast<size_t>(s.axes[i]);
    if (shape[a] != s.parameter_shape[i]) {
      throw Error("shape[" + std::to_string(a) + "] is " + std::to_string(shape[a]) +
                  "; the layer was built with size " + std::to_string(s.parameter_shape[i]) +
                  " on feature axis " + std::to_string(a));
    }
  }
  return total;
}

void BatchNorm::Forward(const float* x, float* y, const std::vector<int64_t>& shape,
                        std::optional<bool> training, const Execution& exec) {
  State::Call(this, x, y, DType::kFloat32, shape, training, exec);
}

void BatchNorm::Forward(const uint16_t* x, uint16_t* y, DType dtype,
                        const std::vector<int64_t>& shape, std::optional<bool> training,
                        const Execution& exec) {
  if (dtype == DType::kFloat32) {
    throw Error("dtype is float32 for 16-bit data; expected float16 or bfloat16");
  }
  State::Call(this, x, y, dtype, shape, training, exec);
}

void BatchNorm::State::Call(BatchNorm* layer, const void* x, void* y, DType type,
                            const std::vector<int64_t>& shape, std::optional<bool> training,
                            const Execution& exec) {
  if (!layer->built()) layer->Build(shape);
  State& s = *layer->state_;
  const size_t total = s.CheckInput(shape);
  if (total == 0) return;  // An empty batch: nothing to write, nothing to learn.
  if (x == nullptr || y == nullptr) {
    throw Error(std::string(x == nullptr ? "x" : "y") + " is null for a shape of " +
                std::to_string(total) + " elements");
  }
  for (const void* p : {x, static_cast<const void*>(y)}) {
    if (reinterpret_cast<uintptr_t>(p) % SizeOf(type) != 0) {
      throw Error(std::string(p == x ? "x" : "y") + " is not aligned to its element size (" +
                  std::to_string(SizeOf(type)) + " bytes for " + Name(type) + ")");
    }
  }
  const size_t bytes = total * SizeOf(type);
  const char* xb = static_cast<const char*>(x);
  const char* yb = static_cast<const char*>(y);
  if (xb != yb && xb < yb + bytes && yb < xb + bytes) {
    throw Error("x and y overlap without being the same buffer; expected y == x (in place) or "
                "disjoint buffers");
  }
  // Keras: unset means inference (no learning phase here), and trainable=false
  // forces inference (the fine-tuning behaviour of TF 2).
  const bool train = training.value_or(false) && layer->options_.trainable;
  if (s.permutation.empty()) {
    s.Run(layer->options_, x, y, type, shape, s.Plan(shape), train, exec);
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
  s.Run(layer->options_, work.data(), work.data(), DType::kFloat32, shape,
        Geometry::Dense(total / s.channels, s.channels, 1), train, exec);
  std::vector<int64_t> permuted(s.rank);
  for (size_t k = 0; k < s.rank; ++k) permuted[k] = shape[static_cast<size_t>(s.permutation[k])];
  float* out = type == DType::kFloat32 ? static_cast<float*>(y) : wide.data();
  Transpose(work.data(), permuted, InversePermutation(s.permutation), out);
  if (type != DType::kFloat32) NarrowFromFloat(out, type, total, static_cast<uint16_t*>(y));
}

void BatchNorm::State::Run(const Options& options, const void* x, void* y, DType type,
                           const std::vector<int64_t>& shape, const Geometry& g, bool training,
                           const Execution& exec) {
  State& s = *this;
  if (!training) {
    Normalize(x, y, type, g, s.InferenceParams(), exec);
    return;
  }
  const char* in = static_cast<const char*>(x);
  char* out = static_cast<char*>(y);
  const size_t element_size = SizeOf(type);
  const size_t C = s.channels;
  const size_t batch = static_cast<size_t>(shape[0]);
  size_t ghosts = 1;
  if (options.virtual_batch_size) {
    const size_t v = static_cast<size_t>(*options.virtual_batch_size);
    if (v > batch || batch % v != 0) {
      throw Error("virtual_batch_size " + std::to_string(v) +
                  (v > batch ? " is larger than" : " does not divide") + " the batch size " +
                  std::to_string(batch) + " (shape[0])");
    }
    ghosts = batch / v;
  }
  size_t sample_elements = 0;
  const Geometry view = GhostView(g, batch, ghosts, &sample_elements);

  // Each ghost's own mean and biased variance (the whole batch's when G = 1).
  std::vector<double> mean(ghosts * C), variance(ghosts * C);
  ForEachBlock(ghosts, g.elements(), exec, [&](size_t i) {
    BatchMoments(in + i * sample_elements * element_size, type, view, &mean[i * C],
                 &variance[i * C], exec);
  });
  // The statistics the moving averages see: the average over ghosts.
  std::vector<double> new_mean(C, 0.0), new_variance(C, 0.0);
  for (size_t i = 0; i < ghosts; ++i) {
    for (size_t c = 0; c < C; ++c) {
      new_mean[c] += mean[i * C + c] / static_cast<double>(ghosts);
      new_variance[c] += variance[i * C + c] / static_cast<double>(ghosts);
    }
  }

  std::vector<float> adj_scale(C, 1.0f), adj_bias(C, 0.0f);
  if (options.adjustment) options.adjustment(shape, adj_scale.data(), adj_bias.data());

  // Renorm's r and d, from the renorm statistics before this call's update.
  std::vector<double> r(C, 1.0), d(C, 0.0), stddev(C);
  for (size_t c = 0; c < C; ++c) stddev[c] = std::sqrt(new_variance[c] + s.epsilon);
  if (options.renorm) {
    const RenormClipping& clip = options.renorm_clipping;
    for (size_t c = 0; c < C; ++c) {
      const double rs = std::max<double>(s.renorm_stddev[c], std::sqrt(s.epsilon));
      r[c] = stddev[c] / rs;
      d[c] = (new_mean[c] - s.renorm_mean[c]) / rs;
      if (clip.rmin) r[c] = std::max<double>(r[c], *clip.rmin);
      if (clip.rmax) r[c] = std::min<double>(r[c], *clip.rmax);
      if (clip.dmax) d[c] = std::clamp<double>(d[c], -*clip.dmax, *clip.dmax);
    }
  }

  // y = ((x - mean) / sqrt(var + eps) * r + d) * adj_scale + adj_bias) * gamma + beta,
  // folded per (ghost, channel) in double into y = (x - mean) * scale + shift.
  std::vector<float> hi(ghosts * C), lo(ghosts * C), scale(ghosts * C), shift(ghosts * C);
  for (size_t k = 0; k < ghosts * C; ++k) {
    const size_t c = k % C;
    const double outer_scale = static_cast<double>(adj_scale[c]) * s.gamma[c];
    SplitMean(mean[k], &hi[k], &lo[k]);
    scale[k] = static_cast<float>(r[c] * outer_scale / std::sqrt(variance[k] + s.epsilon));
    shift[k] = static_cast<float>(d[c] * outer_scale +
                                  static_cast<double>(adj_bias[c]) * s.gamma[c] + s.beta[c]);
  }
  ForEachBlock(ghosts, g.elements(), exec, [&](size_t i) {
    const size_t offset = i * sample_elements * element_size;
    NormalizeParams params;
    params.mean_hi = &hi[i * C];
    params.mean_lo = &lo[i * C];
    params.scale = &scale[i * C];
    params.shift = &shift[i * C];
    Normalize(in + offset, out + offset, type, view, params, exec);
  });

  // The fused kernel feeds moving_variance the Bessel-corrected variance, with
  // n every reduced element of a channel (N*H*W).
  const double n = static_cast<double>(g.reduced());
  const double bessel = s.fused ? n / std::max(n - 1.0, 1.0) : 1.0;
  for (size_t c = 0; c < C; ++c) {
    s.moving_mean[c] = MovingAverage(s.moving_mean[c], new_mean[c], options.momentum);
    if (options.renorm) {
      s.renorm_mean[c] = MovingAverage(s.renorm_mean[c], new_mean[c], options.renorm_momentum);
      s.renorm_stddev[c] = MovingAverage(s.renorm_stddev[c], stddev[c], options.renorm_momentum);
      s.moving_stddev[c] = MovingAverage(s.moving_stddev[c], stddev[c], options.momentum);
      // Keras: relu(moving_stddev^2 - epsilon), from the updated float stddev.
      const double ms = s.moving_stddev[c];
      s.moving_variance[c] = static_cast<float>(std::max(ms * ms - s.epsilon, 0.0));
    } else {
      s.moving_variance[c] =
          MovingAverage(s.moving_variance[c], new_variance[c] * bessel, options.momentum);
    }
  }
  s.RefreshInference();
}

std::vector<int64_t> BatchNorm::parameter_shape() const {
  if (!state_) throw Error("parameter_shape is not known yet: the layer is not built");
  return state_->parameter_shape;
}

bool BatchNorm::fused() const {
  if (!state_) throw Error("fused is resolved at build: the layer is not built");
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
