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

// The kernels' reference (moments, normalize) on a prefix of memory: leading
// outer rows, or when one row is too long, the leading channels of the first row.
void TimeKernelReference(const Problem& p, bool inference, bool training, ReferenceTiming* r) {
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
    r->inference_seconds = scale_up * BestOf([&] {
                             reference::Normalize(x.data(), slice, mean.data(), variance.data(),
                                                  gamma.data(), beta.data(), kEpsilon, y.data());
                           });
    r->inference_y = std::move(y);
  }
}

// The layer's training reference (ghost batches, renorm): the float64 Keras
// oracle with the layer's options on whole leading samples, a multiple of the
// virtual batch size.
void TimeLayerReference(const Problem& p, ReferenceTiming* r) {
  const bnorm::Options& options = p.layer->options();
  const size_t batch = static_cast<size_t>(p.c.memory_shape[0]);
  const size_t sample = p.elements / batch;
  const size_t group = static_cast<size_t>(options.virtual_batch_size.value_or(1));
  const size_t samples =
      std::max(group, std::min(batch, kReferenceSliceElements / sample) / group * group);
  const size_t n = samples * sample;
  if (n > kReferenceMaxSliceElements) {
    r->notes.push_back("training reference skipped: one virtual batch holds more than 1e8 values");
    return;
  }
  if (samples < batch) {
    r->notes.push_back(ScaledNote("training reference (Keras oracle)", samples, batch, "samples"));
  }
  std::vector<int64_t> shape = p.c.memory_shape;
  shape[0] = static_cast<int64_t>(samples);
  const std::vector<float> x = WidenPrefix(p.dtype, p.x.get(), n);
  std::vector<double> y(n);
  keras_reference::State state = keras_reference::Initial(options, p.c.geometry.channels);
  r->training_seconds =
      static_cast<double>(batch) / static_cast<double>(samples) * BestOf([&] {
        keras_reference::Forward(options, shape, x.data(), /*training=*/true, &state, y.data());
      });
}

}  // namespace

ReferenceTiming TimeReference(const Problem& p, bool inference, bool training) {
  ReferenceTiming r;
  const bool kernel_training = training && p.layer == nullptr;
  if (inference || kernel_training) TimeKernelReference(p, inference, kernel_training, &r);
  if (training && p.layer != nullptr) TimeLayerReference(p, &r);
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

}  // namespace bench
}  // namespace bnorm
