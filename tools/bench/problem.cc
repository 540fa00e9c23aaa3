// SPDX-License-Identifier: Apache-2.0
// bnorm-bench's problem set-up and timed calls (see problem.h).
#include "tools/bench/problem.h"

#include <cmath>
#include <cstring>

#include "bnorm/backward.hpp"
#include "bnorm/error.hpp"
#include "bnorm/fold.hpp"
#include "src/ops/half.h"
#include "src/ops/resident_backward.h"
#include "src/ops/resident_training.h"
#include "src/plan/format.h"
#include "tools/common/format.h"
#include "tools/common/random.h"

namespace bnorm {
namespace bench {
namespace {

// Stores `count` floats as `dtype` values (16-bit ones rounded to nearest even).
void StoreAs(DType dtype, const float* in, size_t count, uint8_t* out) {
  if (dtype == DType::kFloat32) {
    std::memcpy(out, in, count * sizeof(float));
  } else {
    NarrowFromFloat(in, dtype, count, reinterpret_cast<uint16_t*>(out));
  }
}

// Writes floats as `dtype` values in chunks, so that a 16-bit tensor needs no
// float copy of the whole.
class ChunkedWriter {
 public:
  ChunkedWriter(DType dtype, uint8_t* out) : dtype_(dtype), out_(out) { chunk_.reserve(kChunk); }
  ~ChunkedWriter() { Flush(); }

  void Push(float value) {
    chunk_.push_back(value);
    if (chunk_.size() == kChunk) Flush();
  }

 private:
  static constexpr size_t kChunk = size_t{1} << 16;

  void Flush() {
    StoreAs(dtype_, chunk_.data(), chunk_.size(), out_);
    out_ += chunk_.size() * SizeOf(dtype_);
    chunk_.clear();
  }

  DType dtype_;
  uint8_t* out_;
  std::vector<float> chunk_;
};

}  // namespace

const char* PassName(Pass pass) {
  return pass == Pass::kInference ? "inference" : pass == Pass::kTraining ? "training" : "backward";
}

int PassVolumes(Pass pass) {
  return pass == Pass::kInference ? 2 : pass == Pass::kTraining ? 3 : 5;
}

Case MakeCase(const CaseSpec& spec) {
  const std::string& flag = spec.origin;
  Case c;
  c.shape = spec.shape;
  c.layout = spec.layout;
  c.sweep = spec.sweep;
  const size_t rank = spec.shape.size();
  if (spec.layout == Layout::kAxis) {
    c.memory_shape = spec.shape;
    c.axes = spec.axes;
    c.label = "axis=" + cli::Join(spec.axes, ",");
  } else if (rank < 2) {
    Fail(flag, "shape " + FormatList(spec.shape) +
                   " has rank 1; a layout needs N,C,...; use --axis for other tensors");
  } else if (rank == 2) {
    c.memory_shape = spec.shape;
    c.axes = {-1};
    c.label = "nc";
  } else if (spec.layout == Layout::kNhwc) {
    c.memory_shape = {spec.shape[0]};
    for (size_t i = 2; i < rank; ++i) c.memory_shape.push_back(spec.shape[i]);
    c.memory_shape.push_back(spec.shape[1]);
    c.axes = {-1};
    c.label = "nhwc";
  } else {
    c.memory_shape = spec.shape;
    c.axes = {1};
    c.label = "nchw";
  }
  try {
    c.geometry = PlanGeometry(c.memory_shape, c.axes);
  } catch (const Error& e) {
    Fail(spec.layout == Layout::kAxis && flag == "--shape" ? "--axis" : flag, e.what());
  }
  // Three buffers of this size must be addressable in bytes.
  if (c.geometry.elements() > (size_t{1} << 40)) {
    Fail(flag, "shape " + FormatList(spec.shape) + " has too many values to benchmark");
  }
  return c;
}

std::unique_ptr<BatchNorm> MakeLayer(const Case& c, const Options& o) {
  if (!o.virtual_batch_size && !o.renorm) return nullptr;
  const char* flag = o.virtual_batch_size ? "--virtual-batch-size" : "--renorm";
  const int64_t batch = c.memory_shape[0];
  // The layer would say so only at its first call.
  if (o.virtual_batch_size && batch % *o.virtual_batch_size != 0) {
    Fail(flag, std::to_string(*o.virtual_batch_size) + " does not divide the batch size " +
                   std::to_string(batch) + " of shape " + FormatList(c.shape) +
                   "; expected a divisor of " + std::to_string(batch));
  }
  bnorm::Options options;
  options.axis = c.axes;
  options.virtual_batch_size = o.virtual_batch_size;
  options.renorm = o.renorm;
  try {
    auto layer = std::make_unique<BatchNorm>(options);
    layer->Build(c.memory_shape);
    return layer;
  } catch (const Error& e) {
    Fail(flag, e.what());
  }
}

std::vector<float> WidenPrefix(DType dtype, const uint8_t* in, size_t count) {
  std::vector<float> out(count);
  if (dtype == DType::kFloat32) {
    std::memcpy(out.data(), in, count * sizeof(float));
  } else {
    WidenToFloat(reinterpret_cast<const uint16_t*>(in), dtype, count, out.data());
  }
  return out;
}

float ElementAt(DType dtype, const uint8_t* data, size_t k) {
  if (dtype == DType::kFloat32) return reinterpret_cast<const float*>(data)[k];
  const uint16_t bits = reinterpret_cast<const uint16_t*>(data)[k];
  return dtype == DType::kFloat16 ? HalfToFloat(bits) : BFloat16ToFloat(bits);
}

Problem::Problem(const Case& cs, DType type, BatchNorm* training_layer, bool with_backward,
                 bool with_residual)
    : c(cs),
      dtype(type),
      elements(cs.geometry.elements()),
      x(testing::AllocateAligned(bytes())),
      y(testing::AllocateAligned(bytes())),
      dy(with_backward ? testing::AllocateAligned(bytes()) : nullptr),
      dx(with_backward ? testing::AllocateAligned(bytes()) : nullptr),
      z(with_residual ? testing::AllocateAligned(bytes()) : nullptr),
      layer(training_layer),
      inference(cs.geometry.channels),
      batch_mean(cs.geometry.channels),
      batch_variance(cs.geometry.channels),
      backward(with_backward ? cs.geometry.channels : 0) {
  const Geometry& g = c.geometry;
  const size_t C = g.channels;
  testing::Random random(C * 1000003 + elements);
  const auto symmetric = [&random] { return static_cast<float>(random.Uniform(-1.0, 1.0)); };
  // Channels with their own mean and spread, like activations after a conv.
  std::vector<float> center(C), spread(C);
  for (size_t ch = 0; ch < C; ++ch) {
    center[ch] = 2.0f * symmetric();
    spread[ch] = 1.25f + 0.75f * symmetric();
    gamma.push_back(1.0f + 0.5f * symmetric());
    beta.push_back(0.5f * symmetric());
    moving_mean.push_back(center[ch] + 0.1f * symmetric());
    moving_variance.push_back(spread[ch] * spread[ch] / 3.0f * (1.0f + 0.2f * symmetric()));
  }
  {
    ChunkedWriter writer(dtype, x.get());
    for (size_t o = 0; o < g.outer; ++o) {
      for (size_t ch = 0; ch < C; ++ch) {
        for (size_t i = 0; i < g.inner; ++i) writer.Push(center[ch] + spread[ch] * symmetric());
      }
    }
  }
  std::memset(y.get(), 0, bytes());
  // An engine folds once at load time; the float moving mean needs no low part.
  Fold(gamma.data(), beta.data(), moving_mean.data(), moving_variance.data(), C, kEpsilon,
       inference.scale.data(), inference.shift.data());
  train_moving_mean = moving_mean;
  train_moving_variance = moving_variance;
  if (with_residual) {
    // z of its own seed (x's data stays the same with and without it), centred on 0 like the
    // normalized x it is added to, so that the ReLU clamps a good share of the values.
    testing::Random z_random(elements * 1000033 + C);
    ChunkedWriter writer(dtype, z.get());
    for (size_t k = 0; k < elements; ++k) {
      writer.Push(static_cast<float>(z_random.Uniform(-1.0, 1.0)));
    }
  }
  if (!with_backward) return;

  // dy of its own seed, so that x's data is the same with and without the backward.
  testing::Random dy_random(elements * 1000003 + C);
  {
    ChunkedWriter writer(dtype, dy.get());
    for (size_t k = 0; k < elements; ++k) {
      writer.Push(static_cast<float>(dy_random.Uniform(-1.0, 1.0)));
    }
  }
  std::memset(dx.get(), 0, bytes());
  // The training forward that the timed backward differentiates, once.
  if (layer != nullptr) {
    LayerTraining(Execution());
    return;
  }
  BatchMoments(x.get(), dtype, g, batch_mean.data(), batch_variance.data(), Execution());
  for (size_t ch = 0; ch < C; ++ch) {
    SplitMean(batch_mean[ch], &backward.mean_hi[ch], &backward.mean_lo[ch]);
    backward.variance[ch] = batch_variance[ch];
    backward.rho[ch] = 1.0 / std::sqrt(batch_variance[ch] + kEpsilon);
  }
}

int Problem::Volumes(Pass pass) const {
  if (pass == Pass::kInference && z != nullptr) return 3;
  // The layer takes the resident path too, but not with ghost batches.
  const bool ghosts = layer != nullptr && layer->options().virtual_batch_size.has_value();
  if (pass == Pass::kTraining && !ghosts && ChannelResident(dtype, c.geometry)) return 2;
  if (pass == Pass::kBackward && !ghosts && ChannelResidentBackward(dtype, c.geometry)) return 3;
  return PassVolumes(pass);
}

void Problem::Inference(const Execution& exec) {
  NormalizeParams params{moving_mean.data(), nullptr, inference.scale.data(),
                         inference.shift.data()};
  if (z != nullptr) {
    params.activation = Activation::kRelu;
    params.residual = z.get();
  }
  Normalize(x.get(), y.get(), dtype, c.geometry, params, exec);
}

void Problem::KernelTraining(const Execution& exec) {
  // One call: statistics and normalize (channel-resident where it pays).
  TrainingNormalize(x.get(), y.get(), dtype, c.geometry, gamma.data(), beta.data(), kEpsilon,
                    batch_mean.data(), batch_variance.data(), exec);
  for (size_t ch = 0; ch < batch_mean.size(); ++ch) {
    train_moving_mean[ch] -=
        (train_moving_mean[ch] - static_cast<float>(batch_mean[ch])) * (1.0f - kMomentum);
    train_moving_variance[ch] -=
        (train_moving_variance[ch] - static_cast<float>(batch_variance[ch])) * (1.0f - kMomentum);
  }
}

void Problem::LayerTraining(const Execution& exec) {
  if (dtype == DType::kFloat32) {
    layer->Forward(reinterpret_cast<const float*>(x.get()), reinterpret_cast<float*>(y.get()),
                   c.memory_shape, /*training=*/true, exec);
  } else {
    layer->Forward(reinterpret_cast<const uint16_t*>(x.get()), reinterpret_cast<uint16_t*>(y.get()),
                   dtype, c.memory_shape, /*training=*/true, exec);
  }
}

void Problem::KernelBackward(const Execution& exec) {
  // One call: sums and dx (channel-resident where it pays), then dgamma, dbeta.
  BackwardState& v = backward;
  TrainingBackward(x.get(), dy.get(), dx.get(), dtype, c.geometry, v.mean_hi.data(),
                   v.mean_lo.data(), v.variance.data(), gamma.data(), kEpsilon, v.sum_dy.data(),
                   v.sum_dy_xmu.data(), exec);
  // The constants TrainingBackward used (the same arithmetic), for the dx check.
  const double n = static_cast<double>(c.geometry.reduced());
  for (size_t ch = 0; ch < v.rho.size(); ++ch) {
    const double rho = v.rho[ch];
    v.k[ch] = static_cast<float>(gamma[ch] * rho);
    v.a[ch] = static_cast<float>(v.sum_dy[ch] / n);
    v.b[ch] = static_cast<float>(rho * rho * v.sum_dy_xmu[ch] / n);
    v.dgamma[ch] = static_cast<float>(rho * v.sum_dy_xmu[ch]);
    v.dbeta[ch] = static_cast<float>(v.sum_dy[ch]);
  }
}

void Problem::LayerBackward(const Execution& exec) {
  if (dtype == DType::kFloat32) {
    layer->Backward(reinterpret_cast<const float*>(x.get()),
                    reinterpret_cast<const float*>(dy.get()), reinterpret_cast<float*>(dx.get()),
                    c.memory_shape, exec);
  } else {
    layer->Backward(reinterpret_cast<const uint16_t*>(x.get()),
                    reinterpret_cast<const uint16_t*>(dy.get()),
                    reinterpret_cast<uint16_t*>(dx.get()), dtype, c.memory_shape, exec);
  }
}

}  // namespace bench
}  // namespace bnorm
