// SPDX-License-Identifier: Apache-2.0
// bnorm's C++ API: a Keras BatchNormalization layer trains on a small NHWC
// batch and runs inference; then an engine does the same inference with
// bnorm::Fold + bnorm::Normalize.
#include <cstdio>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/error.hpp"
#include "bnorm/fold.hpp"
#include "bnorm/kernels.hpp"

int main() {
  const std::vector<int64_t> shape{2, 2, 2, 3};  // N, H, W, C
  std::vector<float> x(24), y(24), z(24), scale(3), shift(3);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 7) + 0.5f * float(i % 3);

  bnorm::Options options;
  options.momentum = 0.5f;
  bnorm::BatchNorm layer(options);
  layer.Forward(x.data(), y.data(), shape, /*training=*/true);
  layer.Forward(x.data(), y.data(), shape, /*training=*/false);

  const std::vector<float>& mean = layer.moving_mean();
  bnorm::Fold(layer.gamma().data(), layer.beta().data(), mean.data(),
              layer.moving_variance().data(), 3, options.epsilon, scale.data(), shift.data());
  bnorm::NormalizeParams params;
  params.mean_hi = mean.data();
  params.scale = scale.data();
  params.shift = shift.data();
  bnorm::Normalize(x.data(), z.data(), bnorm::PlanGeometry(shape, {-1}), params);
  for (int c = 0; c < 3; ++c) {
    std::printf("channel %d: moving mean %.4f, variance %.4f, y[0][%d] = %.5f\n", c, mean[c],
                layer.moving_variance()[c], c, z[c]);
  }
  std::printf("layer and Fold + Normalize agree: %s\n", y == z ? "yes" : "no");

  try {  // A bad argument throws bnorm::Error naming it.
    layer.Forward(x.data(), y.data(), {2, 2, 2, 4});
    return 1;
  } catch (const bnorm::Error& e) {
    std::printf("expected error: %s\n", e.what());
  }
  return y == z ? 0 : 1;
}
