// SPDX-License-Identifier: Apache-2.0
// Keras' training call, one function per step: the ghost view, each ghost's
// statistics (merged over every rank when synchronized), their average, the adjustment, renorm's
// correction, the fold into per-channel coefficients, the normalize pass and the moving-average
// updates. Statistics and coefficients are double until the last rounding.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "bnorm/error.hpp"
#include "bnorm/kernels.hpp"
#include "src/layer/state.h"
#include "src/ops/resident_training.h"
#include "src/parallel/blocks.h"
#include "src/sync/statistics.h"

namespace bnorm {
namespace {

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

// Each ghost's own mean and biased variance (the whole batch's when G = 1);
// ghost i starts `sample_bytes` * i into x.
void GhostStatistics(const char* x, DType type, const Geometry& view, size_t ghosts,
                     size_t sample_bytes, size_t total_elements, const Execution& exec, Moments* m) {
  const size_t C = view.channels;
  m->Resize(ghosts * C);
  ForEachBlock(ghosts, total_elements, exec, [&](size_t i) {
    BatchMoments(x + i * sample_bytes, type, view, &m->mean[i * C], &m->variance[i * C], exec);
  });
}

// The statistics the moving averages see: the average over ghosts.
void AverageOverGhosts(const Moments& ghost, size_t ghosts, size_t C, Moments* batch) {
  batch->Zero(C);
  for (size_t i = 0; i < ghosts; ++i) {
    for (size_t c = 0; c < C; ++c) {
      batch->mean[c] += ghost.mean[i * C + c] / static_cast<double>(ghosts);
      batch->variance[c] += ghost.variance[i * C + c] / static_cast<double>(ghosts);
    }
  }
}

// Renorm's r and d of one channel, from its batch statistics and the renorm
// statistics before this call's update, clipped as renorm_clipping says (1
// and 0 without renorm); and the batch stddev the renorm statistics track
// (only with renorm: nothing else reads it).
void RenormChannel(const Options& options, double mean, double variance, float renorm_mean,
                   float renorm_stddev, double epsilon, double* r, double* d, double* stddev) {
  *r = 1.0;
  *d = 0.0;
  if (!options.renorm) return;
  *stddev = std::sqrt(variance + epsilon);
  const RenormClipping& clip = options.renorm_clipping;
  const double rs = std::max<double>(renorm_stddev, std::sqrt(epsilon));
  *r = *stddev / rs;
  *d = (mean - renorm_mean) / rs;
  if (clip.rmin) *r = std::max<double>(*r, *clip.rmin);
  if (clip.rmax) *r = std::min<double>(*r, *clip.rmax);
  if (clip.dmax) *d = std::clamp<double>(*d, -*clip.dmax, *clip.dmax);
}

void Renorm(const Options& options, const Moments& batch, const std::vector<float>& renorm_mean,
            const std::vector<float>& renorm_stddev, double epsilon, RenormCorrection* rc) {
  const size_t C = batch.mean.size();
  rc->Resize(C);
  for (size_t c = 0; c < C; ++c) {
    RenormChannel(options, batch.mean[c], batch.variance[c], options.renorm ? renorm_mean[c] : 0.0f,
                  options.renorm ? renorm_stddev[c] : 1.0f, epsilon, &rc->r[c], &rc->d[c],
                  &rc->stddev[c]);
  }
}

// y = ((x - mean) / sqrt(var + eps) * r + d) * adj_scale + adj_bias) * gamma + beta,
// folded for one group of channel c in double into y = (x - mean) * scale + shift.
void FoldGroup(double mean, double variance, double r, double d, float adj_scale, float adj_bias,
               float gamma, float beta, double epsilon, float* hi, float* lo, float* scale,
               float* shift) {
  const double outer_scale = static_cast<double>(adj_scale) * gamma;
  SplitMean(mean, hi, lo);
  *scale = static_cast<float>(r * outer_scale / std::sqrt(variance + epsilon));
  *shift = static_cast<float>(d * outer_scale + static_cast<double>(adj_bias) * gamma + beta);
}

// Every (ghost, channel) group's coefficients.
void FoldCoefficients(const Moments& ghost, const RenormCorrection& rc, const AdjustmentTerms& adj,
                      const std::vector<float>& gamma, const std::vector<float>& beta,
                      double epsilon, Coefficients* k) {
  const size_t n = ghost.mean.size(), C = gamma.size();
  k->Resize(n);
  for (size_t i = 0, c = 0; i < n; ++i, c = c + 1 == C ? 0 : c + 1) {
    FoldGroup(ghost.mean[i], ghost.variance[i], rc.r[c], rc.d[c], adj.scale[c], adj.bias[c],
              gamma[c], beta[c], epsilon, &k->hi[i], &k->lo[i], &k->scale[i], &k->shift[i]);
  }
}

// The same fold for ResidentTraining, channel by channel as each channel's
// statistics arrive (one ghost's: renorm's r and d then come from the batch
// statistics only without ghost batches).
class LayerFold : public ChannelFold {
 public:
  LayerFold(const Options& options, const AdjustmentTerms& adjustment,
            const std::vector<float>& renorm_mean, const std::vector<float>& renorm_stddev,
            const std::vector<float>& gamma, const std::vector<float>& beta, double epsilon)
      : options_(options),
        adjustment_(adjustment),
        renorm_mean_(renorm_mean),
        renorm_stddev_(renorm_stddev),
        gamma_(gamma),
        beta_(beta),
        epsilon_(epsilon) {}

  void operator()(size_t c, double mean, double variance, float* hi, float* lo, float* scale,
                  float* shift) const override {
    double r, d, stddev;
    RenormChannel(options_, mean, variance, options_.renorm ? renorm_mean_[c] : 0.0f,
                  options_.renorm ? renorm_stddev_[c] : 1.0f, epsilon_, &r, &d, &stddev);
    FoldGroup(mean, variance, r, d, adjustment_.scale[c], adjustment_.bias[c], gamma_[c], beta_[c],
              epsilon_, hi, lo, scale, shift);
  }

 private:
  const Options& options_;
  const AdjustmentTerms& adjustment_;
  const std::vector<float>& renorm_mean_;
  const std::vector<float>& renorm_stddev_;
  const std::vector<float>& gamma_;
  const std::vector<float>& beta_;
  double epsilon_;
};

// Each ghost through its own coefficients.
void NormalizeGhosts(const char* x, char* y, DType type, const Geometry& view, size_t ghosts,
                     size_t sample_bytes, size_t total_elements, const Coefficients& k,
                     const Execution& exec) {
  const size_t C = view.channels;
  ForEachBlock(ghosts, total_elements, exec, [&](size_t i) {
    const size_t offset = i * sample_bytes;
    NormalizeParams params;
    params.mean_hi = &k.hi[i * C];
    params.mean_lo = &k.lo[i * C];
    params.scale = &k.scale[i * C];
    params.shift = &k.shift[i * C];
    Normalize(x + offset, y + offset, type, view, params, exec);
  });
}

// moving -= (moving - value) * (1 - momentum), Keras' _assign_moving_average,
// computed in double and rounded once to the float32 variable.
float MovingAverage(float moving, double value, float momentum) {
  const double m = moving;
  return static_cast<float>(m - (m - value) * (1.0 - static_cast<double>(momentum)));
}

// The variables a training call updates.
struct MovingVariables {
  std::vector<float>& mean;
  std::vector<float>& variance;
  std::vector<float>& stddev;  // the last three only with renorm
  std::vector<float>& renorm_mean;
  std::vector<float>& renorm_stddev;
};

// Keras' moving-average updates from the batch statistics (the average over
// ghosts). The fused kernel feeds moving_variance the Bessel-corrected
// variance, with n every reduced element of a channel (N*H*W).
void UpdateMovingAverages(const Options& options, bool fused, double epsilon, size_t reduced,
                          const Moments& batch, const RenormCorrection& rc, MovingVariables v) {
  const double n = static_cast<double>(reduced);
  const double bessel = fused ? n / std::max(n - 1.0, 1.0) : 1.0;
  for (size_t c = 0; c < batch.mean.size(); ++c) {
    v.mean[c] = MovingAverage(v.mean[c], batch.mean[c], options.momentum);
    if (options.renorm) {
      v.renorm_mean[c] = MovingAverage(v.renorm_mean[c], batch.mean[c], options.renorm_momentum);
      v.renorm_stddev[c] = MovingAverage(v.renorm_stddev[c], rc.stddev[c], options.renorm_momentum);
      v.stddev[c] = MovingAverage(v.stddev[c], rc.stddev[c], options.momentum);
      // Keras: relu(moving_stddev^2 - epsilon), from the updated float stddev.
      const double ms = v.stddev[c];
      v.variance[c] = static_cast<float>(std::max(ms * ms - epsilon, 0.0));
    } else {
      v.variance[c] = MovingAverage(v.variance[c], batch.variance[c] * bessel, options.momentum);
    }
  }
}

// What Backward needs of this call: each group's mean and rho, and the
// per-channel constants of the fold (docs/semantics.md, "Backward (gradients)").
void SaveTraining(const Geometry& view, size_t ghosts, size_t sample_elements, const Moments& ghost,
                  const RenormCorrection& rc, const AdjustmentTerms& adjustment,
                  const Coefficients& k, const std::vector<float>& gamma, double epsilon,
                  Saved* saved) {
  const size_t groups = ghost.mean.size(), C = gamma.size();
  saved->Resize(groups);
  saved->inference_of = Saved::kNone;
  saved->view = view;
  saved->ghosts = ghosts;
  saved->sample_elements = sample_elements;
  std::copy(k.hi.begin(), k.hi.end(), saved->mean_hi.begin());
  std::copy(k.lo.begin(), k.lo.end(), saved->mean_lo.begin());
  std::copy(k.scale.begin(), k.scale.end(), saved->scale.begin());
  std::copy(k.shift.begin(), k.shift.end(), saved->shift.begin());
  for (size_t i = 0; i < groups; ++i) saved->rho[i] = 1.0 / std::sqrt(ghost.variance[i] + epsilon);
  for (size_t c = 0; c < C; ++c) {
    saved->r[c] = rc.r[c];
    saved->d[c] = rc.d[c];
    saved->adjustment_scale[c] = adjustment.scale[c];
    saved->adjustment_bias[c] = adjustment.bias[c];
    saved->gamma[c] = gamma[c];
  }
}

}  // namespace

size_t GhostCount(const Options& options, size_t batch) {
  if (!options.virtual_batch_size) return 1;
  const size_t v = static_cast<size_t>(*options.virtual_batch_size);
  if (v > batch || batch % v != 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "virtual_batch_size " + std::to_string(v) +
                    (v > batch ? " is larger than" : " does not divide") + " the batch size " +
                    std::to_string(batch) + " (shape[0])");
  }
  return batch / v;
}

void Adjust(const Options& options, const std::vector<int64_t>& shape, size_t C,
            AdjustmentTerms* adjustment) {
  adjustment->scale.assign(C, 1.0f);
  adjustment->bias.assign(C, 0.0f);
  if (options.adjustment) {
    options.adjustment(shape, adjustment->scale.data(), adjustment->bias.data());
  }
}

void BatchNorm::State::Train(const Options& options, const void* x, void* y, DType type,
                             const std::vector<int64_t>& shape, const Geometry& g,
                             const Execution& exec, const Peers* peers) {
  const char* in = static_cast<const char*>(x);
  char* out = static_cast<char*>(y);
  const size_t batch = static_cast<size_t>(shape[0]);
  // Only a synchronized call reaches here with an empty batch: its ghosts are
  // the other ranks'.
  const bool empty = g.elements() == 0;
  const size_t ghosts = empty ? peers->groups : GhostCount(options, batch);
  size_t sample_elements = 0;
  const Geometry view = empty ? g : GhostView(g, batch, ghosts, &sample_elements);
  const size_t sample_bytes = sample_elements * SizeOf(type);

  // A synchronized call asked for the adjustment before the ranks agreed, so
  // that an adjustment that throws fails every rank alike.
  TrainingScratch& w = scratch;
  if (peers == nullptr) Adjust(options, shape, channels, &w.adjustment);
  const AdjustmentTerms& adjustment = peers != nullptr ? peers->adjustment : w.adjustment;
  Moments& ghost = w.ghost;
  Coefficients& k = w.coefficients;
  bool normalized = false;
  // Statistics and normalize channel by channel (per ghost): x is read from
  // memory once. Not when synchronized (every rank's statistics come before
  // any normalize), nor for renorm over ghosts (its r and d need every
  // ghost's statistics).
  if (peers == nullptr && (ghosts == 1 || !options.renorm) && !empty &&
      ChannelResident(type, g, view)) {
    const size_t groups = ghosts * channels;
    ghost.Resize(groups);
    k.Resize(groups);
    const LayerFold fold(options, adjustment, renorm_mean, renorm_stddev, gamma, beta, epsilon);
    ForEachBlock(ghosts, g.elements(), exec, [&](size_t i) {
      const size_t at = i * channels;
      ResidentTraining(in + i * sample_bytes, out + i * sample_bytes, type, view, fold,
                       &ghost.mean[at], &ghost.variance[at], &k.hi[at], &k.lo[at], &k.scale[at],
                       &k.shift[at], exec);
    });
    normalized = true;
  } else if (empty) {
    ghost.Zero(ghosts * channels);
  } else {
    GhostStatistics(in, type, view, ghosts, sample_bytes, g.elements(), exec, &ghost);
  }
  double count = static_cast<double>(view.reduced());
  if (peers != nullptr) {
    count = MergeStatistics(*peers->comm, count, ghost.mean.data(), ghost.variance.data(),
                            ghost.mean.size());
  }
  saved.synchronized = peers != nullptr;
  saved.count = count;
  saved.ghosts = ghosts;
  if (count == 0.0) return;  // every rank's batch is empty: nothing learns
  AverageOverGhosts(ghost, ghosts, channels, &w.batch);
  Renorm(options, w.batch, renorm_mean, renorm_stddev, epsilon, &w.renorm);
  if (!normalized) {
    FoldCoefficients(ghost, w.renorm, adjustment, gamma, beta, epsilon, &k);
    if (!empty) NormalizeGhosts(in, out, type, view, ghosts, sample_bytes, g.elements(), k, exec);
  }
  SaveTraining(view, ghosts, sample_elements, ghost, w.renorm, adjustment, k, gamma, epsilon,
               &saved);
  UpdateMovingAverages(options, fused, epsilon, g.reduced(), w.batch, w.renorm,
                       {moving_mean, moving_variance, moving_stddev, renorm_mean, renorm_stddev});
  VariablesChanged();
}

}  // namespace bnorm
