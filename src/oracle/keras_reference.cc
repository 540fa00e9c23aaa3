// SPEC.md, element by element, in double. Deliberately shares no code with the
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

void Forward(const Options& options, const std::vector<int64_t>& shape, const float* x,
             std::optional<bool> training, State* state, double* y) {
  const size_t rank = shape.size();
  const std::vector<size_t> axes = FeatureAxes(options.axis, rank);
  const bool fused = UsesFused(options, rank);
  const double epsilon = fused ? std::max<double>(options.epsilon, 1.001e-5) : options.epsilon;
  const bool train = training.value_or(false) && options.trainable;

  size_t total = 1, channels = 1;
  for (int64_t s : shape) total *= static_cast<size_t>(s);
  for (size_t a : axes) channels *= static_cast<size_t>(shape[a]);
  if (total == 0) return;

  // Per element: its channel (C-order index over the feature axes) and, with
  // ghost batches in training, its ghost (sample b belongs to ghost b mod G).
  const size_t ghosts = train && options.virtual_batch_size
                            ? static_cast<size_t>(shape[0] / *options.virtual_batch_size)
                            : 1;
  std::vector<size_t> group(total);
  std::vector<size_t> index(rank, 0);
  for (size_t i = 0; i < total; ++i) {
    size_t c = 0;
    for (size_t a : axes) c = c * static_cast<size_t>(shape[a]) + index[a];
    group[i] = (index[0] % ghosts) * channels + c;
    for (size_t k = rank; k-- > 0;) {
      if (++index[k] < static_cast<size_t>(shape[k])) break;
      index[k] = 0;
    }
  }
  State& s = *state;

  if (!train) {
    for (size_t i = 0; i < total; ++i) {
      const size_t c = group[i];
      y[i] = (x[i] - s.moving_mean[c]) / std::sqrt(s.moving_variance[c] + epsilon) * s.gamma[c] +
             s.beta[c];
    }
    return;
  }

  // Two-pass moments per (ghost, channel).
  const size_t groups = ghosts * channels;
  std::vector<double> count(groups, 0.0), mean(groups, 0.0), var(groups, 0.0);
  for (size_t i = 0; i < total; ++i) {
    count[group[i]] += 1.0;
    mean[group[i]] += x[i];
  }
  for (size_t k = 0; k < groups; ++k) mean[k] /= count[k];
  for (size_t i = 0; i < total; ++i) {
    const double dev = x[i] - mean[group[i]];
    var[group[i]] += dev * dev;
  }
  for (size_t k = 0; k < groups; ++k) var[k] /= count[k];

  // The statistics of the moving averages: ghost averages (or the batch's).
  std::vector<double> new_mean(channels, 0.0), new_var(channels, 0.0);
  for (size_t k = 0; k < groups; ++k) {
    new_mean[k % channels] += mean[k] / static_cast<double>(ghosts);
    new_var[k % channels] += var[k] / static_cast<double>(ghosts);
  }

  std::vector<double> adj_scale(channels, 1.0), adj_bias(channels, 0.0);
  if (options.adjustment) {
    std::vector<float> a(channels), b(channels);
    options.adjustment(shape, a.data(), b.data());
    adj_scale.assign(a.begin(), a.end());
    adj_bias.assign(b.begin(), b.end());
  }

  std::vector<double> r(channels, 1.0), d(channels, 0.0), stddev(channels);
  for (size_t c = 0; c < channels; ++c) stddev[c] = std::sqrt(new_var[c] + epsilon);
  if (options.renorm) {
    const RenormClipping& clip = options.renorm_clipping;
    std::optional<float> neg_dmax;
    if (clip.dmax) neg_dmax = -*clip.dmax;
    for (size_t c = 0; c < channels; ++c) {
      const double rs = std::max(s.renorm_stddev[c], std::sqrt(epsilon));
      r[c] = Clip(stddev[c] / rs, clip.rmin, clip.rmax);
      d[c] = Clip((new_mean[c] - s.renorm_mean[c]) / rs, neg_dmax, clip.dmax);
      MovingAverage(options.renorm_momentum, new_mean[c], &s.renorm_mean[c]);
      MovingAverage(options.renorm_momentum, stddev[c], &s.renorm_stddev[c]);
    }
  }

  for (size_t i = 0; i < total; ++i) {
    const size_t k = group[i], c = k % channels;
    const double normalized = (x[i] - mean[k]) / std::sqrt(var[k] + epsilon);
    const double renormed = normalized * r[c] + d[c];
    y[i] = (renormed * adj_scale[c] + adj_bias[c]) * s.gamma[c] + s.beta[c];
  }

  // Fused: moving_variance takes the Bessel-corrected variance, n = N*H*W.
  const double n = static_cast<double>(total / channels);
  const double bessel = fused ? n / std::max(n - 1.0, 1.0) : 1.0;
  for (size_t c = 0; c < channels; ++c) {
    MovingAverage(options.momentum, new_mean[c], &s.moving_mean[c]);
    if (options.renorm) {
      MovingAverage(options.momentum, stddev[c], &s.moving_stddev[c]);
      s.moving_variance[c] = std::max(s.moving_stddev[c] * s.moving_stddev[c] - epsilon, 0.0);
    } else {
      MovingAverage(options.momentum, new_var[c] * bessel, &s.moving_variance[c]);
    }
  }
}

}  // namespace keras_reference
}  // namespace bnorm
