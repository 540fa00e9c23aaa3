// SPDX-License-Identifier: Apache-2.0
// docs/semantics.md, element by element, in double. Deliberately shares no code with the
// layer (src/batch_norm.cc, src/options.cc) so that it checks it.
#include "src/oracle/keras_reference.h"

#include <algorithm>
#include <cmath>

namespace bnorm {
namespace keras_reference {
namespace {

std::vector<size_t> FeatureAxes(const std::vector<int>& axis, size_t rank) {
  std::vector<size_t> axes;
  for (int a : axis) axes.push_back(static_cast<size_t>(a < 0 ? a + static_cast<int>(rank) : a));
  std::sort(axes.begin(), axes.end());
  return axes;
}

double Clip(double value, std::optional<float> low, std::optional<float> high) {
  if (low) value = std::max(value, static_cast<double>(*low));
  if (high) value = std::min(value, static_cast<double>(*high));
  return value;
}

// moving -= (moving - value) * (1 - momentum), Keras' _assign_moving_average.
void MovingAverage(double momentum, double value, double* moving) {
  *moving -= (*moving - value) * (1.0 - momentum);
}

}  // namespace

State Initial(const Options& options, size_t channels) {
  State s;
  s.gamma.assign(channels, options.scale ? options.gamma_initializer.value : 1.0);
  s.beta.assign(channels, options.center ? options.beta_initializer.value : 0.0);
  s.moving_mean.assign(channels, options.moving_mean_initializer.value);
  s.moving_variance.assign(channels, options.moving_variance_initializer.value);
  if (options.renorm) {
    const double stddev = std::sqrt(static_cast<double>(options.moving_variance_initializer.value));
    s.moving_stddev.assign(channels, stddev);
    s.renorm_mean.assign(channels, options.moving_mean_initializer.value);
    s.renorm_stddev.assign(channels, stddev);
  }
  return s;
}

bool UsesFused(const Options& options, size_t rank) {
  if (options.fused == Fused::kFalse || options.renorm || options.virtual_batch_size ||
      options.adjustment || options.axis.size() != 1 || (rank != 4 && rank != 5)) {
    return false;
  }
  const size_t axis = FeatureAxes(options.axis, rank)[0];
  return axis == 1 || axis == rank - 1;
}

namespace {

// Where each element goes: its (ghost, channel) group, ghost-major. With ghost batches in
// training, sample b belongs to ghost b mod G.
struct Layout {
  size_t total = 1, channels = 1, ghosts = 1;
  std::vector<size_t> group;
};

Layout MakeLayout(const Options& options, const std::vector<int64_t>& shape, bool train) {
  const size_t rank = shape.size();
  const std::vector<size_t> axes = FeatureAxes(options.axis, rank);
  Layout l;
  for (int64_t s : shape) l.total *= static_cast<size_t>(s);
  for (size_t a : axes) l.channels *= static_cast<size_t>(shape[a]);
  if (l.total == 0) return l;
  if (train && options.virtual_batch_size) {
    l.ghosts = static_cast<size_t>(shape[0] / *options.virtual_batch_size);
  }
  l.group.resize(l.total);
  std::vector<size_t> index(rank, 0);
  for (size_t i = 0; i < l.total; ++i) {
    size_t c = 0;
    for (size_t a : axes) c = c * static_cast<size_t>(shape[a]) + index[a];
    l.group[i] = (index[0] % l.ghosts) * l.channels + c;
    for (size_t k = rank; k-- > 0;) {
      if (++index[k] < static_cast<size_t>(shape[k])) break;
      index[k] = 0;
    }
  }
  return l;
}

double Epsilon(const Options& options, size_t rank) {
  return UsesFused(options, rank) ? std::max<double>(options.epsilon, 1.001e-5) : options.epsilon;
}

// A training call's statistics and constants, from the state before the call: per group the
// count, mean and biased variance; per channel the ghost-averaged statistics, the adjustment,
// and renorm's r and d (1 and 0 without renorm).
struct Training {
  std::vector<double> count, mean, var;
  std::vector<double> new_mean, new_var, stddev, adj_scale, adj_bias, r, d;
};

Training TrainingStatistics(const Options& options, const std::vector<int64_t>& shape,
                            const float* x, const Layout& l, double epsilon, const State& s) {
  const size_t groups = l.ghosts * l.channels, channels = l.channels;
  Training t;
  // Two-pass moments per (ghost, channel).
  t.count.assign(groups, 0.0);
  t.mean.assign(groups, 0.0);
  t.var.assign(groups, 0.0);
  for (size_t i = 0; i < l.total; ++i) {
    t.count[l.group[i]] += 1.0;
    t.mean[l.group[i]] += x[i];
  }
  for (size_t k = 0; k < groups; ++k) t.mean[k] /= t.count[k];
  for (size_t i = 0; i < l.total; ++i) {
    const double dev = x[i] - t.mean[l.group[i]];
    t.var[l.group[i]] += dev * dev;
  }
  for (size_t k = 0; k < groups; ++k) t.var[k] /= t.count[k];

  // The statistics of the moving averages: ghost averages (or the batch's).
  t.new_mean.assign(channels, 0.0);
  t.new_var.assign(channels, 0.0);
  for (size_t k = 0; k < groups; ++k) {
    t.new_mean[k % channels] += t.mean[k] / static_cast<double>(l.ghosts);
    t.new_var[k % channels] += t.var[k] / static_cast<double>(l.ghosts);
  }

  t.adj_scale.assign(channels, 1.0);
  t.adj_bias.assign(channels, 0.0);
  if (options.adjustment) {
    std::vector<float> a(channels), b(channels);
    options.adjustment(shape, a.data(), b.data());
    t.adj_scale.assign(a.begin(), a.end());
    t.adj_bias.assign(b.begin(), b.end());
  }

  t.r.assign(channels, 1.0);
  t.d.assign(channels, 0.0);
  t.stddev.resize(channels);
  for (size_t c = 0; c < channels; ++c) t.stddev[c] = std::sqrt(t.new_var[c] + epsilon);
  if (options.renorm) {
    const RenormClipping& clip = options.renorm_clipping;
    std::optional<float> neg_dmax;
    if (clip.dmax) neg_dmax = -*clip.dmax;
    for (size_t c = 0; c < channels; ++c) {
      const double rs = std::max(s.renorm_stddev[c], std::sqrt(epsilon));
      t.r[c] = Clip(t.stddev[c] / rs, clip.rmin, clip.rmax);
      t.d[c] = Clip((t.new_mean[c] - s.renorm_mean[c]) / rs, neg_dmax, clip.dmax);
    }
  }
  return t;
}

}  // namespace

void Forward(const Options& options, const std::vector<int64_t>& shape, const float* x,
             std::optional<bool> training, State* state, double* y) {
  const size_t rank = shape.size();
  const bool fused = UsesFused(options, rank);
  const double epsilon = Epsilon(options, rank);
  const bool train = training.value_or(false) && options.trainable;
  const Layout l = MakeLayout(options, shape, train);
  if (l.total == 0) return;
  State& s = *state;

  if (!train) {
    for (size_t i = 0; i < l.total; ++i) {
      const size_t c = l.group[i];
      y[i] = (x[i] - s.moving_mean[c]) / std::sqrt(s.moving_variance[c] + epsilon) * s.gamma[c] +
             s.beta[c];
    }
    return;
  }

  const Training t = TrainingStatistics(options, shape, x, l, epsilon, s);
  const size_t channels = l.channels;
  for (size_t i = 0; i < l.total; ++i) {
    const size_t k = l.group[i], c = k % channels;
    const double normalized = (x[i] - t.mean[k]) / std::sqrt(t.var[k] + epsilon);
    const double renormed = normalized * t.r[c] + t.d[c];
    y[i] = (renormed * t.adj_scale[c] + t.adj_bias[c]) * s.gamma[c] + s.beta[c];
  }

  if (options.renorm) {
    for (size_t c = 0; c < channels; ++c) {
      MovingAverage(options.renorm_momentum, t.new_mean[c], &s.renorm_mean[c]);
      MovingAverage(options.renorm_momentum, t.stddev[c], &s.renorm_stddev[c]);
    }
  }
  // Fused: moving_variance takes the Bessel-corrected variance, n = N*H*W.
  const double n = static_cast<double>(l.total / channels);
  const double bessel = fused ? n / std::max(n - 1.0, 1.0) : 1.0;
  for (size_t c = 0; c < channels; ++c) {
    MovingAverage(options.momentum, t.new_mean[c], &s.moving_mean[c]);
    if (options.renorm) {
      MovingAverage(options.momentum, t.stddev[c], &s.moving_stddev[c]);
      s.moving_variance[c] = std::max(s.moving_stddev[c] * s.moving_stddev[c] - epsilon, 0.0);
    } else {
      MovingAverage(options.momentum, t.new_var[c] * bessel, &s.moving_variance[c]);
    }
  }
}

Gradients Backward(const Options& options, const std::vector<int64_t>& shape, const float* x,
                   const double* dy, std::optional<bool> training, const State& state) {
  const size_t rank = shape.size();
  const double epsilon = Epsilon(options, rank);
  const bool train = training.value_or(false) && options.trainable;
  const Layout l = MakeLayout(options, shape, train);
  const size_t channels = l.channels;
  Gradients out;
  out.dx.assign(l.total, 0.0);
  std::vector<double> dgamma(channels, 0.0), dbeta(channels, 0.0);
  std::vector<double> dadj_scale(channels, 0.0), dadj_bias(channels, 0.0);

  if (l.total != 0 && !train) {
    // The moving statistics are constants: y is affine in x.
    for (size_t i = 0; i < l.total; ++i) {
      const size_t c = l.group[i];
      const double rho = 1.0 / std::sqrt(state.moving_variance[c] + epsilon);
      out.dx[i] = dy[i] * state.gamma[c] * rho;
      dgamma[c] += dy[i] * (x[i] - state.moving_mean[c]) * rho;
      dbeta[c] += dy[i];
    }
  } else if (l.total != 0) {
    const Training t = TrainingStatistics(options, shape, x, l, epsilon, state);
    const size_t groups = l.ghosts * channels;
    // S1 = sum dy and S2 = sum dy * (x - mean) per group, around the mean.
    std::vector<double> s1(groups, 0.0), s2(groups, 0.0), rho(groups);
    for (size_t k = 0; k < groups; ++k) rho[k] = 1.0 / std::sqrt(t.var[k] + epsilon);
    for (size_t i = 0; i < l.total; ++i) {
      s1[l.group[i]] += dy[i];
      s2[l.group[i]] += dy[i] * (x[i] - t.mean[l.group[i]]);
    }
    for (size_t i = 0; i < l.total; ++i) {
      const size_t k = l.group[i], c = k % channels;
      const double n = t.count[k];
      out.dx[i] = state.gamma[c] * t.r[c] * t.adj_scale[c] * rho[k] *
                  (dy[i] - s1[k] / n - (x[i] - t.mean[k]) * rho[k] * rho[k] * s2[k] / n);
    }
    for (size_t k = 0; k < groups; ++k) {
      const size_t c = k % channels;
      // Gradient of sum dy * (x_hat * r + d) over the group.
      const double renormed = t.r[c] * rho[k] * s2[k] + t.d[c] * s1[k];
      dbeta[c] += s1[k];
      dgamma[c] += t.adj_scale[c] * renormed + t.adj_bias[c] * s1[k];
      dadj_scale[c] += state.gamma[c] * renormed;
      dadj_bias[c] += state.gamma[c] * s1[k];
    }
  }
  if (options.scale) out.dgamma = dgamma;
  if (options.center) out.dbeta = dbeta;
  if (train && options.adjustment) {
    out.dadjustment_scale = dadj_scale;
    out.dadjustment_bias = dadj_bias;
  }
  return out;
}

}  // namespace keras_reference
}  // namespace bnorm
