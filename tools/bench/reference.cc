// SPDX-License-Identifier: Apache-2.0
// bnorm-bench's reference timing (see reference.h).
#include "tools/bench/reference.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

#include "src/oracle/keras_reference.h"
#include "src/oracle/reference.h"
#include "tools/bench/timing.h"
#include "tools/common/tolerances.h"

namespace bnorm {
namespace bench {
namespace {

constexpr size_t kReferenceSliceElements = size_t{1} << 22;
constexpr size_t kReferenceMaxSliceElements = 100000000;

std::string ScaledNote(const char* what, size_t part, size_t whole, const char* unit) {
  char note[200];
  std::snprintf(note, sizeof(note), "%s timed on the first %zu of %zu %s, scaled x%.1f", what, part,
                whole, unit, static_cast<double>(whole) / static_cast<double>(part));
  return note;
}

// The first `n` values of dy, widened.
std::vector<float> WidenDy(const Problem& p, size_t n) {
  return WidenPrefix(p.dtype, p.dy.get(), n);
}

// The split mean of the kernels' backward, in double.
std::vector<double> SavedMean(const Problem& p, size_t channels) {
  std::vector<double> mean(channels);
  for (size_t c = 0; c < channels; ++c) {
    mean[c] = static_cast<double>(p.backward.mean_hi[c]) + p.backward.mean_lo[c];
  }
  return mean;
}

// The kernels' backward reference on the slice: the sums around the saved mean,
// the constants in double (from the slice's own sums), the data pass.
double TimeKernelBackward(const Problem& p, const Geometry& slice, const std::vector<float>& x) {
  const size_t C = slice.channels, n = slice.elements();
  const std::vector<float> dy = WidenDy(p, n);
  const std::vector<double> mean = SavedMean(p, C);
  std::vector<double> sum_dy(C), sum_dy_xmu(C), k(C), a(C), b(C), dx(n);
  return BestOf([&] {
    reference::BackwardReduce(x.data(), dy.data(), nullptr, Activation::kNone, slice, mean.data(),
                              sum_dy.data(), sum_dy_xmu.data());
    const double count = static_cast<double>(slice.reduced());
    for (size_t c = 0; c < C; ++c) {
      const double rho = p.backward.rho[c];
      k[c] = p.gamma[c] * rho;
      a[c] = sum_dy[c] / count;
      b[c] = rho * rho * sum_dy_xmu[c] / count;
    }
    reference::BackwardData(x.data(), dy.data(), nullptr, Activation::kNone, slice, mean.data(),
                            k.data(), a.data(), b.data(), dx.data());
  });
}

// The kernels' reference (moments, normalize, backward) on a prefix of memory: leading
// outer rows, or when one row is too long, the leading channels of the first row.
void TimeKernelReference(const Problem& p, bool inference, bool training, bool backward,
                         ReferenceTiming* r) {
  const Geometry& g = p.c.geometry;
  if (g.inner > kReferenceMaxSliceElements) {
    r->notes.push_back("reference skipped: one channel's run holds more than 1e8 values");
    return;
  }
  Geometry slice = g;
  const size_t row = g.row_elements();
  if (row <= kReferenceSliceElements) {
    slice.outer = std::min(g.outer, kReferenceSliceElements / row);
  } else {
    slice.outer = 1;
    slice.channels = std::max<size_t>(1, kReferenceSliceElements / g.inner);
  }
  slice = Geometry::Dense(slice.outer, slice.channels, slice.inner);
  r->slice = slice;
  const size_t n = slice.elements();
  const double scale_up = static_cast<double>(p.elements) / static_cast<double>(n);
  if (n < p.elements) r->notes.push_back(ScaledNote("reference", n, p.elements, "values"));
  const std::vector<float> x = WidenPrefix(p.dtype, p.x.get(), n);
  const size_t C = g.channels;
  const std::vector<double> gamma(p.gamma.begin(), p.gamma.end());
  const std::vector<double> beta(p.beta.begin(), p.beta.end());
  const std::vector<double> mean(p.moving_mean.begin(), p.moving_mean.end());
  const std::vector<double> variance(p.moving_variance.begin(), p.moving_variance.end());
  std::vector<double> y(n);
  if (training) {
    std::vector<double> batch_mean(C), batch_variance(C);
    r->training_seconds =
        scale_up * BestOf([&] {
          reference::Moments(x.data(), slice, batch_mean.data(), batch_variance.data());
          reference::Normalize(x.data(), slice, batch_mean.data(), batch_variance.data(),
                               gamma.data(), beta.data(), kEpsilon, y.data());
        });
  }
  if (inference) {
    // With a residual, the inference is relu(bn(x) + z): z's prefix lies where x's does (the same
    // geometry), and the add and ReLU are part of what the reference times.
    const std::vector<float> z =
        p.z != nullptr ? WidenPrefix(p.dtype, p.z.get(), n) : std::vector<float>();
    r->inference_seconds = scale_up * BestOf([&] {
                             reference::Normalize(x.data(), slice, mean.data(), variance.data(),
                                                  gamma.data(), beta.data(), kEpsilon, y.data());
                             for (size_t k = 0; k < z.size(); ++k) {
                               y[k] = std::max(y[k] + static_cast<double>(z[k]), 0.0);
                             }
                           });
    r->inference_y = std::move(y);
  }
  if (backward) r->backward_seconds = scale_up * TimeKernelBackward(p, slice, x);
}

// The layer's training and backward references (ghost batches, renorm): the
// float64 Keras oracle with the layer's options on whole leading samples, a
// multiple of the virtual batch size.
void TimeLayerReference(const Problem& p, bool training, bool backward, ReferenceTiming* r) {
  const bnorm::Options& options = p.layer->options();
  const size_t batch = static_cast<size_t>(p.c.memory_shape[0]);
  const size_t sample = p.elements / batch;
  const size_t group = static_cast<size_t>(options.virtual_batch_size.value_or(1));
  const size_t samples =
      std::max(group, std::min(batch, kReferenceSliceElements / sample) / group * group);
  const size_t n = samples * sample;
  const char* what = training && backward ? "training and backward"
                     : training           ? "training"
                                          : "backward";
  if (n > kReferenceMaxSliceElements) {
    r->notes.push_back(std::string(what) +
                       " reference skipped: one virtual batch holds more than 1e8 values");
    return;
  }
  if (samples < batch) {
    r->notes.push_back(ScaledNote((std::string(what) + " reference (Keras oracle)").c_str(),
                                  samples, batch, "samples"));
  }
  std::vector<int64_t> shape = p.c.memory_shape;
  shape[0] = static_cast<int64_t>(samples);
  const std::vector<float> x = WidenPrefix(p.dtype, p.x.get(), n);
  const double scale_up = static_cast<double>(batch) / static_cast<double>(samples);
  const keras_reference::State initial = keras_reference::Initial(options, p.c.geometry.channels);
  if (training) {
    std::vector<double> y(n);
    keras_reference::State state = initial;
    r->training_seconds =
        scale_up * BestOf([&] {
          keras_reference::Forward(options, shape, x.data(), /*training=*/true, &state, y.data());
        });
  }
  if (backward) {
    const std::vector<float> dy_float = WidenDy(p, n);
    const std::vector<double> dy(dy_float.begin(), dy_float.end());
    keras_reference::Gradients gradients;
    r->backward_seconds = scale_up * BestOf([&] {
                            gradients =
                                keras_reference::Backward(options, shape, x.data(), dy.data(),
                                                          /*training=*/true, initial);
                          });
    // Without renorm, dx does not depend on the moving statistics: the initial state's
    // gradients are those of any training call (gamma stays Keras' initial 1). With renorm
    // they are those of the set-up call only, the layer's first: no training rows after it.
    if (!options.renorm || !training) r->backward_dx = std::move(gradients.dx);
  }
}

}  // namespace

ReferenceTiming TimeReference(const Problem& p, bool inference, bool training, bool backward) {
  ReferenceTiming r;
  const bool kernel_training = training && p.layer == nullptr;
  const bool kernel_backward = backward && p.layer == nullptr;
  if (inference || kernel_training || kernel_backward) {
    TimeKernelReference(p, inference, kernel_training, kernel_backward, &r);
  }
  if ((training || backward) && p.layer != nullptr) {
    TimeLayerReference(p, training, backward, &r);
  }
  return r;
}

double InferenceError(const Problem& p, const ReferenceTiming& r, double* max_abs_diff) {
  double diff = 0.0, magnitude = 0.0;
  for (size_t k = 0; k < r.inference_y.size(); ++k) {
    const double y = ElementAt(p.dtype, p.y.get(), k);
    diff = std::max(diff, std::fabs(y - r.inference_y[k]));
    magnitude = std::max(magnitude, std::fabs(r.inference_y[k]));
  }
  *max_abs_diff = diff;
  return diff / (1.0 + magnitude);
}

double BackwardTolerance(DType dtype) {
  return testing::kGradientTolerance +
         (dtype == DType::kFloat32 ? 0.0 : testing::ForwardTolerance(dtype));
}

std::optional<double> BackwardError(const Problem& p, const ReferenceTiming& r,
                                    double* max_abs_diff) {
  std::vector<double> expected;
  if (p.layer != nullptr) {
    if (r.backward_dx.empty()) return std::nullopt;
    expected = r.backward_dx;
  } else {
    if (!r.backward_seconds) return std::nullopt;
    const Geometry& slice = r.slice;
    const size_t C = slice.channels, n = slice.elements();
    const std::vector<float> x = WidenPrefix(p.dtype, p.x.get(), n);
    const std::vector<float> dy = WidenDy(p, n);
    const std::vector<double> mean = SavedMean(p, C);
    const BackwardState& v = p.backward;
    const std::vector<double> k(v.k.begin(), v.k.begin() + C), a(v.a.begin(), v.a.begin() + C),
        b(v.b.begin(), v.b.begin() + C);
    expected.resize(n);
    reference::BackwardData(x.data(), dy.data(), nullptr, Activation::kNone, slice, mean.data(),
                            k.data(), a.data(), b.data(), expected.data());
  }
  double diff = 0.0, magnitude = 0.0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const double dx = ElementAt(p.dtype, p.dx.get(), i);
    diff = std::max(diff, std::fabs(dx - expected[i]));
    magnitude = std::max(magnitude, std::fabs(expected[i]));
  }
  *max_abs_diff = diff;
  return magnitude > 0.0 ? diff / magnitude : diff;
}

}  // namespace bench
}  // namespace bnorm
