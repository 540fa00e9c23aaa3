// SPDX-License-Identifier: Apache-2.0
#include "src/oracle/reference.h"

#include <algorithm>
#include <cmath>

namespace bnorm {
namespace reference {
namespace {

// Calls f(channel, element_offset) for every element of g in memory order of
// outer rows, channel by channel.
template <class F>
void ForEachElement(const Geometry& g, const F& f) {
  for (size_t o = 0; o < g.outer; ++o) {
    const size_t row = g.RowOffset(o);
    for (size_t c = 0; c < g.channels; ++c) {
      for (size_t i = 0; i < g.inner; ++i) f(c, row + c * g.ChannelStride() + i);
    }
  }
}

// The gradient at offset k: dy, or 0 where the mask's derivative is 0.
double Gradient(const float* dy, const float* y, Activation mask, size_t k) {
  if (mask != Activation::kNone) {
    if (y[k] <= 0.0f || (mask == Activation::kRelu6 && y[k] >= 6.0f)) return 0.0;
  }
  return dy[k];
}

}  // namespace

void Moments(const float* x, const Geometry& g, double* mean, double* variance) {
  const double n = static_cast<double>(g.reduced());
  std::vector<double> sum(g.channels, 0.0), squares(g.channels, 0.0);
  ForEachElement(g, [&](size_t c, size_t k) { sum[c] += x[k]; });
  for (size_t c = 0; c < g.channels; ++c) mean[c] = sum[c] / n;
  ForEachElement(g, [&](size_t c, size_t k) {
    const double dev = x[k] - mean[c];
    squares[c] += dev * dev;
  });
  for (size_t c = 0; c < g.channels; ++c) variance[c] = squares[c] / n;
}

void Normalize(const float* x, const Geometry& g, const double* mean, const double* variance,
               const double* gamma, const double* beta, double epsilon, double* y) {
  ForEachElement(g, [&](size_t c, size_t k) {
    y[k] = (x[k] - mean[c]) / std::sqrt(variance[c] + epsilon) * gamma[c] + beta[c];
  });
}

State State::Initial(size_t channels) {
  State s;
  s.gamma.assign(channels, 1.0);
  s.beta.assign(channels, 0.0);
  s.moving_mean.assign(channels, 0.0);
  s.moving_variance.assign(channels, 1.0);
  return s;
}

void TrainingForward(const float* x, const Geometry& g, double momentum, double epsilon,
                     State* state, double* y) {
  if (g.elements() == 0) return;
  std::vector<double> mean(g.channels), variance(g.channels);
  Moments(x, g, mean.data(), variance.data());
  Normalize(x, g, mean.data(), variance.data(), state->gamma.data(), state->beta.data(),
            epsilon, y);
  for (size_t c = 0; c < g.channels; ++c) {
    state->moving_mean[c] -= (state->moving_mean[c] - mean[c]) * (1.0 - momentum);
    state->moving_variance[c] -= (state->moving_variance[c] - variance[c]) * (1.0 - momentum);
  }
}

void InferenceForward(const float* x, const Geometry& g, double epsilon, const State& state,
                      double* y) {
  Normalize(x, g, state.moving_mean.data(), state.moving_variance.data(), state.gamma.data(),
            state.beta.data(), epsilon, y);
}

void BackwardReduce(const float* x, const float* dy, const float* y, Activation mask,
                    const Geometry& g, const double* mean, double* sum_dy, double* sum_dy_xmu) {
  std::fill(sum_dy, sum_dy + g.channels, 0.0);
  std::fill(sum_dy_xmu, sum_dy_xmu + g.channels, 0.0);
  ForEachElement(g, [&](size_t c, size_t k) {
    const double grad = Gradient(dy, y, mask, k);
    sum_dy[c] += grad;
    sum_dy_xmu[c] += grad * (x[k] - mean[c]);
  });
}

void BackwardData(const float* x, const float* dy, const float* y, Activation mask,
                  const Geometry& g, const double* mean, const double* k, const double* a,
                  const double* b, double* dx) {
  ForEachElement(g, [&](size_t c, size_t i) {
    dx[i] = k[c] * (Gradient(dy, y, mask, i) - a[c] - (x[i] - mean[c]) * b[c]);
  });
}

}  // namespace reference
}  // namespace bnorm
