// SPDX-License-Identifier: Apache-2.0
// BatchNorm::Backward: the gradients of the most recent Forward, from what it
// saved (src/layer/state.h, Saved) and the two engine passes of
// bnorm/backward.hpp. docs/semantics.md, "Backward (gradients)", is the math:
// per group the sums S1 = Σdy and S2 = Σdy·(x − μ), then
// dx = k·(dy − a − (x − μ)·b) with k = γ·r·a_s·ρ, a = S1/n, b = ρ²·S2/n (a = b = 0
// after an inference forward), and the parameter gradients summed over ghosts.
#include "bnorm/backward.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/error.hpp"
#include "src/layer/state.h"
#include "src/ops/half.h"
#include "src/ops/resident_backward.h"
#include "src/ops/transpose.h"
#include "src/parallel/blocks.h"
#include "src/plan/checks.h"
#include "src/plan/format.h"
#include "src/sync/agreement.h"

namespace bnorm {
namespace {

// The tensors of a Backward with `total` > 0 elements: non-null, within the
// largest buffer there can be, aligned, and dx either dy itself (in place), x
// itself, or disjoint from both. `x_name` is "x", or "y" for BackwardFromOutput.
void CheckData(const char* x_name, const void* x, const void* dy, const void* dx, DType type,
               const std::vector<int64_t>& shape, size_t total, bool transposed) {
  const char* null = x == nullptr ? x_name : dy == nullptr ? "dy" : dx == nullptr ? "dx" : nullptr;
  if (null != nullptr) {
    throw Error(ErrorCode::kNullPointer, std::string(null) + " is null for a shape of " +
                                             std::to_string(total) + " elements");
  }
  TensorBytes("shape", shape.data(), shape.size(), total, transposed ? DType::kFloat32 : type);
  const size_t bytes = total * SizeOf(type);
  CheckAligned(x_name, x, type);
  CheckAligned("dy", dy, type);
  CheckAligned("dx", dx, type);
  CheckInPlaceOrDisjoint("dy", dy, "dx", dx, bytes);
  CheckInPlaceOrDisjoint(x_name, x, "dx", dx, bytes);
}

// The shape of the transposed working copy.
std::vector<int64_t> Permuted(const std::vector<int64_t>& shape, const std::vector<int>& perm) {
  std::vector<int64_t> permuted(shape.size());
  for (size_t k = 0; k < shape.size(); ++k) permuted[k] = shape[static_cast<size_t>(perm[k])];
  return permuted;
}

// A float32 channels-last copy of `data` (of `type`), for non-adjacent feature axes.
std::vector<float> TransposedCopy(const void* data, DType type, const std::vector<int64_t>& shape,
                                  const std::vector<int>& perm, size_t total) {
  std::vector<float> wide;
  const float* in = static_cast<const float*>(data);
  if (type != DType::kFloat32) {
    wide.resize(total);
    WidenToFloat(static_cast<const uint16_t*>(data), type, total, wide.data());
    in = wide.data();
  }
  std::vector<float> work(total);
  Transpose(in, shape, perm, work.data());
  return work;
}

// synchronized_gradients: the parameter gradients from every rank's sums.
void UseGlobalSums(Saved* v, size_t groups) {
  std::copy(v->global_sums.begin(), v->global_sums.begin() + groups, v->sum_dy.begin());
  std::copy(v->global_sums.begin() + groups, v->global_sums.begin() + 2 * groups,
            v->sum_dy_xmu.begin());
}

// Group q's data-pass constants k = γ·r·a_s·ρ, a = S1/n, b = ρ²·S2/n (S2 around
// the mean; from y, b is divided by the scale as x − μ is). After an inference
// forward the statistics are constants: a = b = 0, dx = k·dy.
void DataConstants(const Saved& v, size_t q, double s1, double s2, double n, bool from_output,
                   float* k, float* a, float* b) {
  const size_t c = q % v.gamma.size();
  const double rho = v.rho[q];
  const double from_y = from_output ? 1.0 / static_cast<double>(v.scale[q]) : 1.0;
  *k = static_cast<float>(v.gamma[c] * v.r[c] * v.adjustment_scale[c] * rho);
  *a = v.trained ? static_cast<float>(s1 / n) : 0.0f;
  *b = v.trained ? static_cast<float>(rho * rho * s2 / n * from_y) : 0.0f;
}

// The same for ResidentBackward, channel by channel as the sums arrive (one
// group per channel: no ghost batches). From y, the kernels' S2 is around the
// shift: S2 around the mean is it divided by the scale.
class LayerConstants : public ChannelConstants {
 public:
  LayerConstants(const Saved& v, bool from_output) : v_(v), from_output_(from_output) {}
  void operator()(size_t c, double s1, double s2, float* k, float* a, float* b) const override {
    const double s2_mean = s2 * (from_output_ ? 1.0 / static_cast<double>(v_.scale[c]) : 1.0);
    DataConstants(v_, c, s1, s2_mean, static_cast<double>(v_.view.reduced()), from_output_, k, a,
                  b);
  }

 private:
  const Saved& v_;
  bool from_output_;
};

}  // namespace

void BatchNorm::Backward(const float* x, const float* dy, float* dx,
                         const std::vector<int64_t>& shape, const Execution& exec) {
  State::Backward(this, x, dy, dx, DType::kFloat32, shape, false, exec);
}

void BatchNorm::Backward(const uint16_t* x, const uint16_t* dy, uint16_t* dx, DType dtype,
                         const std::vector<int64_t>& shape, const Execution& exec) {
  if (dtype == DType::kFloat32) {
    throw Error(ErrorCode::kInvalidArgument,
                "dtype is float32 for 16-bit data; expected float16 or bfloat16");
  }
  State::Backward(this, x, dy, dx, dtype, shape, false, exec);
}

void BatchNorm::BackwardFromOutput(const float* y, const float* dy, float* dx,
                                   const std::vector<int64_t>& shape, const Execution& exec) {
  State::Backward(this, y, dy, dx, DType::kFloat32, shape, true, exec);
}

void BatchNorm::BackwardFromOutput(const uint16_t* y, const uint16_t* dy, uint16_t* dx, DType dtype,
                                   const std::vector<int64_t>& shape, const Execution& exec) {
  if (dtype == DType::kFloat32) {
    throw Error(ErrorCode::kInvalidArgument,
                "dtype is float32 for 16-bit data; expected float16 or bfloat16");
  }
  State::Backward(this, y, dy, dx, dtype, shape, true, exec);
}

const std::vector<float>& BatchNorm::gradient_gamma() const { return State::Gradient(*this, 0); }
const std::vector<float>& BatchNorm::gradient_beta() const { return State::Gradient(*this, 1); }
const std::vector<float>& BatchNorm::gradient_adjustment_scale() const {
  return State::Gradient(*this, 2);
}
const std::vector<float>& BatchNorm::gradient_adjustment_bias() const {
  return State::Gradient(*this, 3);
}

const std::vector<float>& BatchNorm::State::Gradient(const BatchNorm& layer, int which) {
  static const std::vector<float> kNone;
  if (!layer.state_) return kNone;
  const State& s = *layer.state_;
  const std::vector<float>* gradients[] = {&s.dgamma, &s.dbeta, &s.dadjustment_scale,
                                           &s.dadjustment_bias};
  return *gradients[which];
}

size_t BatchNorm::State::CheckBackward(const void* x, const void* dy, const void* dx, DType type,
                                       const std::vector<int64_t>& shape, bool from_output) const {
  if (shape != saved.shape) {
    throw Error(ErrorCode::kShapeMismatch, "dy has shape " + FormatList(shape) +
                                               "; expected the last Forward's shape " +
                                               FormatList(saved.shape));
  }
  const size_t total = ShapeElements("shape", shape.data(), shape.size());
  if (total != 0) {
    CheckData(from_output ? "y" : "x", x, dy, dx, type, shape, total, !permutation.empty());
  }
  if (from_output && total != 0) CheckRecoverable();
  return total;
}

void BatchNorm::State::Backward(BatchNorm* layer, const void* x, const void* dy, void* dx,
                                DType type, const std::vector<int64_t>& shape, bool from_output,
                                const Execution& exec) {
  // Everything is checked before dx or a gradient is written. A layer with no
  // Forward cannot know whether its Backward is collective: that error stays
  // local.
  if (!layer->state_ || !layer->state_->saved.valid) {
    throw Error(ErrorCode::kInvalidArgument,
                "Backward has no Forward to differentiate: call Forward first");
  }
  State& s = *layer->state_;
  const Options& options = layer->options_;
  Communicator* comm = s.saved.trained && s.saved.synchronized ? Synchronizing(*layer) : nullptr;
  size_t total = 0;
  Peers peers;
  if (comm == nullptr) {
    total = s.CheckBackward(x, dy, dx, type, shape, from_output);
  } else {
    // A synchronized forward's Backward is collective: the checks' error
    // travels in the header (src/sync/agreement.h).
    CallHeader header = MakeHeader(CallKind::kBackward, layer->collective_calls_++, options);
    header.channels = s.channels;
    try {
      total = s.CheckBackward(x, dy, dx, type, shape, from_output);
      header.groups = total != 0 ? s.saved.ghosts : 0;
      header.count = total != 0 ? s.saved.view.reduced() : 0;
    } catch (const Error& e) {
      RecordError(e, &header);
    }
    const Agreement agreed = Agree(*comm, header);
    peers = Peers{comm, agreed.groups, agreed.count, AdjustmentTerms()};
  }
  const Peers* sync = comm != nullptr ? &peers : nullptr;
  const bool global_sums = sync != nullptr && options.synchronized_gradients;
  if (total == 0) {
    // No dx; this rank's sums are zeros, and the other ranks' still count
    // for global parameter gradients.
    const bool global = global_sums && peers.count != 0;
    if (sync != nullptr && peers.count != 0) {
      s.saved.Resize(peers.groups * s.channels);
      std::fill(s.saved.sum_dy.begin(), s.saved.sum_dy.end(), 0.0);
      std::fill(s.saved.sum_dy_xmu.begin(), s.saved.sum_dy_xmu.end(), 0.0);
      s.ShareSums(peers);
      if (global) UseGlobalSums(&s.saved, peers.groups * s.channels);
    }
    s.Gradients(options, !global);  // zero parameter gradients unless global
    return;
  }
  if (s.permutation.empty()) {
    s.RunBackward(x, dy, dx, type, from_output, exec, sync);
    if (global_sums) UseGlobalSums(&s.saved, peers.groups * s.channels);
    s.Gradients(options, false);
    return;
  }
  // Feature axes apart: channels-last on transposed float32 copies, dx in
  // place of the dy copy, then transposed back.
  std::vector<float> work_x = TransposedCopy(x, type, shape, s.permutation, total);
  std::vector<float> work_dy = TransposedCopy(dy, type, shape, s.permutation, total);
  s.RunBackward(work_x.data(), work_dy.data(), work_dy.data(), DType::kFloat32, from_output, exec,
                sync);
  const std::vector<int> inverse = InversePermutation(s.permutation);
  if (type == DType::kFloat32) {
    Transpose(work_dy.data(), Permuted(shape, s.permutation), inverse, static_cast<float*>(dx));
  } else {
    Transpose(work_dy.data(), Permuted(shape, s.permutation), inverse, work_x.data());
    NarrowFromFloat(work_x.data(), type, total, static_cast<uint16_t*>(dx));
  }
  if (global_sums) UseGlobalSums(&s.saved, peers.groups * s.channels);
  s.Gradients(options, false);
}

void BatchNorm::State::ShareSums(const Peers& peers) {
  const size_t groups = peers.groups * channels;
  std::vector<double>& global = saved.global_sums;
  global.resize(2 * groups);
  std::copy(saved.sum_dy.begin(), saved.sum_dy.begin() + groups, global.begin());
  std::copy(saved.sum_dy_xmu.begin(), saved.sum_dy_xmu.begin() + groups, global.begin() + groups);
  peers.comm->AllSumInRankOrder(global.data(), global.size());
}

// x - mean = (y - shift) / scale: from y the sums are formed around the shift
// and S2 divided by the scale, and the data pass's b divided by it too.
void BatchNorm::State::RunBackward(const void* x, const void* dy, void* dx, DType type,
                                   bool from_output, const Execution& exec, const Peers* peers) {
  Saved& v = saved;
  const char* in = static_cast<const char*>(x);
  const char* grad = static_cast<const char*>(dy);
  char* out = static_cast<char*>(dx);
  const size_t C = channels, ghosts = v.ghosts;
  const size_t sample_bytes = v.sample_elements * SizeOf(type);
  const size_t total = v.view.elements() * ghosts;
  const size_t groups = ghosts * C;
  if (ghosts == 1 && peers == nullptr && ChannelResidentBackward(type, v.view)) {
    // Sums and dx channel by channel: x and dy are read from memory once.
    // (A synchronized backward needs every rank's sums before any dx.)
    const LayerConstants constants(v, from_output);
    BackwardReduceParams params;
    params.mean_hi = from_output ? v.shift.data() : v.mean_hi.data();
    params.mean_lo = from_output ? v.zeros.data() : v.mean_lo.data();
    ResidentBackward(in, grad, out, type, v.view, params, constants, v.sum_dy.data(),
                     v.sum_dy_xmu.data(), v.k.data(), v.a.data(), v.b.data(), exec);
    for (size_t q = 0; q < groups; ++q) {
      v.sum_dy_xmu[q] *= from_output ? 1.0 / static_cast<double>(v.scale[q]) : 1.0;
    }
    return;
  }
  // Every ghost's sums before any dx: dx may be dy.
  ForEachBlock(ghosts, total, exec, [&](size_t i) {
    BackwardReduceParams params;
    params.mean_hi = from_output ? &v.shift[i * C] : &v.mean_hi[i * C];
    params.mean_lo = from_output ? &v.zeros[i * C] : &v.mean_lo[i * C];
    BackwardReduce(in + i * sample_bytes, grad + i * sample_bytes, type, v.view, params,
                   &v.sum_dy[i * C], &v.sum_dy_xmu[i * C], exec);
  });
  for (size_t q = 0; q < groups; ++q) {
    v.sum_dy_xmu[q] *= from_output ? 1.0 / static_cast<double>(v.scale[q]) : 1.0;
  }
  // Synchronized: dx from every rank's sums and count (docs/semantics.md,
  // "Synchronized").
  const double* s1 = v.sum_dy.data();
  const double* s2 = v.sum_dy_xmu.data();
  double n = static_cast<double>(v.view.reduced());
  if (peers != nullptr) {
    ShareSums(*peers);
    s1 = v.global_sums.data();
    s2 = v.global_sums.data() + groups;
    n = v.count;
  }
  for (size_t q = 0; q < groups; ++q) {
    DataConstants(v, q, s1[q], s2[q], n, from_output, &v.k[q], &v.a[q], &v.b[q]);
  }
  ForEachBlock(ghosts, total, exec, [&](size_t i) {
    BackwardDataParams params;
    params.mean_hi = from_output ? &v.shift[i * C] : &v.mean_hi[i * C];
    params.mean_lo = from_output ? &v.zeros[i * C] : &v.mean_lo[i * C];
    params.k = &v.k[i * C];
    params.a = &v.a[i * C];
    params.b = &v.b[i * C];
    const size_t offset = i * sample_bytes;
    BackwardData(in + offset, grad + offset, out + offset, type, v.view, params, exec);
  });
}

void BatchNorm::State::CheckRecoverable() const {
  for (size_t q = 0; q < saved.scale.size(); ++q) {
    if (saved.scale[q] == 0.0f) {
      throw Error(ErrorCode::kInvalidArgument,
                  "BackwardFromOutput cannot recover x from y: the forward's scale coefficient "
                  "of channel " +
                      std::to_string(q % channels) +
                      " is 0 (gamma, the adjustment's scale or renorm's r is 0); call Backward "
                      "with x");
    }
  }
}

// dβ_c = Σ_q S1_q, dγ_c = Σ_q [a_s·(r·ρ_q·S2_q + d·S1_q) + a_b·S1_q], and the
// adjustment's γ·Σ_q (r·ρ_q·S2_q + d·S1_q) and γ·Σ_q S1_q, over the ghosts q
// of each channel, in double and rounded once.
void BatchNorm::State::Gradients(const Options& options, bool empty) {
  const Saved& v = saved;
  const size_t C = channels, ghosts = empty ? 0 : v.ghosts;
  const bool adjusted = v.trained && options.adjustment;
  dgamma.resize(options.scale ? C : 0);
  dbeta.resize(options.center ? C : 0);
  dadjustment_scale.resize(adjusted ? C : 0);
  dadjustment_bias.resize(adjusted ? C : 0);
  for (size_t c = 0; c < C; ++c) {
    double s1 = 0.0, renormed = 0.0, gamma = 0.0;
    for (size_t i = 0; i < ghosts; ++i) {
      const size_t q = i * C + c;
      const double r = v.r[c] * v.rho[q] * v.sum_dy_xmu[q] + v.d[c] * v.sum_dy[q];
      s1 += v.sum_dy[q];
      renormed += r;
      gamma += v.adjustment_scale[c] * r + v.adjustment_bias[c] * v.sum_dy[q];
    }
    if (options.scale) dgamma[c] = static_cast<float>(gamma);
    if (options.center) dbeta[c] = static_cast<float>(s1);
    if (adjusted) {
      dadjustment_scale[c] = static_cast<float>(v.gamma[c] * renormed);
      dadjustment_bias[c] = static_cast<float>(v.gamma[c] * s1);
    }
  }
}

}  // namespace bnorm
