#include "src/oracle/reference.h"

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

}  // namespace reference
}  // namespace bnorm
