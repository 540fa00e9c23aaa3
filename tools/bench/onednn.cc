// SPDX-License-Identifier: Apache-2.0
// bnorm-bench's oneDNN peer (see onednn.h).
#include "tools/bench/onednn.h"

#include <algorithm>
#include <cmath>
#include <utility>

#if BNORM_HAVE_OPENMP
#include <omp.h>
#endif

namespace bnorm {
namespace bench {
namespace {

// The same memory described to oneDNN: the natural tag for rank 3..5 layouts,
// otherwise the canonical geometry as nc ([outer, C]) or ncw ([outer, C, inner]).
// x and y are `dtype`; scale, shift and the statistics stay f32.
dnnl::memory::desc OneDnnDataDesc(const Case& c, DType dtype) {
  using tag = dnnl::memory::format_tag;
  using type = dnnl::memory::data_type;
  const type data_type = dtype == DType::kFloat32    ? type::f32
                         : dtype == DType::kBFloat16 ? type::bf16
                                                     : type::f16;
  const dnnl::memory::dims dims(c.shape.begin(), c.shape.end());
  const bool nhwc = c.layout == Layout::kNhwc;
  if (c.layout != Layout::kAxis) {
    switch (c.shape.size()) {
      case 3:
        return dnnl::memory::desc(dims, data_type, nhwc ? tag::nwc : tag::ncw);
      case 4:
        return dnnl::memory::desc(dims, data_type, nhwc ? tag::nhwc : tag::nchw);
      case 5:
        return dnnl::memory::desc(dims, data_type, nhwc ? tag::ndhwc : tag::ncdhw);
      default:
        break;
    }
  }
  const Geometry& g = c.geometry;
  const auto outer = static_cast<dnnl::memory::dim>(g.outer);
  const auto channels = static_cast<dnnl::memory::dim>(g.channels);
  if (g.inner == 1) return dnnl::memory::desc({outer, channels}, data_type, tag::nc);
  return dnnl::memory::desc({outer, channels, static_cast<dnnl::memory::dim>(g.inner)}, data_type,
                            tag::ncw);
}

}  // namespace

Sample TakeSample(DType dtype, const uint8_t* y, size_t elements) {
  Sample s;
  const size_t step = std::max<size_t>(1, elements / 65536);
  for (size_t k = 0; k < elements; k += step) s.positions.push_back(k);
  if (s.positions.back() != elements - 1) s.positions.push_back(elements - 1);
  for (size_t k : s.positions) s.values.push_back(ElementAt(dtype, y, k));
  return s;
}

double SampleDiff(const Sample& s, DType dtype, const uint8_t* y, double* magnitude) {
  double diff = 0.0;
  *magnitude = 0.0;
  for (size_t i = 0; i < s.positions.size(); ++i) {
    const double value = ElementAt(dtype, y, s.positions[i]);
    diff = std::max(diff, std::fabs(value - s.values[i]));
    *magnitude = std::max(*magnitude, std::fabs(static_cast<double>(s.values[i])));
  }
  return diff;
}

OneDnnBatchNorm::OneDnnBatchNorm(Problem& p, Pass pass, int threads)
    : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
#if BNORM_HAVE_OPENMP && DNNL_CPU_RUNTIME == DNNL_RUNTIME_OMP
  // oneDNN reads the thread count when it creates the primitive and runs.
  omp_set_num_threads(threads);
#else
  (void)threads;
#endif
  using flags = dnnl::normalization_flags;
  const bool inference = pass == Pass::kInference;
  const dnnl::memory::desc data = OneDnnDataDesc(p.c, p.dtype);
  const flags use = inference ? (flags::use_global_stats | flags::use_scale | flags::use_shift)
                              : (flags::use_scale | flags::use_shift);
  const dnnl::batch_normalization_forward::desc desc(
      inference ? dnnl::prop_kind::forward_inference : dnnl::prop_kind::forward_training, data,
      kEpsilon, use);
  const dnnl::batch_normalization_forward::primitive_desc pd(desc, engine_);
  // Inference reads the moving statistics; training writes the batch's.
  mean_ = p.moving_mean;
  variance_ = p.moving_variance;
  gamma_ = p.gamma;
  beta_ = p.beta;
  const dnnl::memory src(data, engine_, p.x.get());
  const dnnl::memory scale(pd.weights_desc(), engine_, gamma_.data());
  const dnnl::memory mean(pd.mean_desc(), engine_, mean_.data());
  const dnnl::memory variance(pd.variance_desc(), engine_, variance_.data());
  args_ = {
      {DNNL_ARG_SRC, src},
      {DNNL_ARG_DST, dnnl::memory(data, engine_, p.y.get())},
      {DNNL_ARG_SCALE, scale},
      {DNNL_ARG_SHIFT, dnnl::memory(pd.weights_desc(), engine_, beta_.data())},
      {DNNL_ARG_MEAN, mean},
      {DNNL_ARG_VARIANCE, variance},
  };
  workspace_.resize(pd.workspace_desc().get_size());
  if (!workspace_.empty()) {
    args_.emplace(DNNL_ARG_WORKSPACE,
                  dnnl::memory(pd.workspace_desc(), engine_, workspace_.data()));
  }
  primitive_ = dnnl::batch_normalization_forward(pd);
  if (inference && p.z != nullptr) {
    // y = relu(y + z) in place: src0 and dst are the same memory, as an engine runs it.
    dnnl::post_ops relu;
    relu.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(relu);
    const dnnl::binary::desc add_desc(dnnl::algorithm::binary_add, data, data, data);
    const dnnl::binary::primitive_desc add_pd(add_desc, attr, engine_);
    const dnnl::memory& y = args_.at(DNNL_ARG_DST);
    residual_args_ = {
        {DNNL_ARG_SRC_0, y},
        {DNNL_ARG_SRC_1, dnnl::memory(data, engine_, p.z.get())},
        {DNNL_ARG_DST, y},
    };
    residual_ = dnnl::binary(add_pd);
  }
  if (pass != Pass::kBackward) return;

  // The training forward the backward differentiates: its batch mean and
  // variance (and workspace, if it has one) are what the backward reads.
  (*this)();
  const dnnl::batch_normalization_backward::desc backward_desc(
      dnnl::prop_kind::backward, data, data, kEpsilon, flags::use_scale | flags::use_shift);
  const dnnl::batch_normalization_backward::primitive_desc backward_pd(backward_desc, engine_, pd);
  dgamma_.resize(p.gamma.size());
  dbeta_.resize(p.beta.size());
  std::unordered_map<int, dnnl::memory> args = {
      {DNNL_ARG_SRC, src},
      {DNNL_ARG_DIFF_DST, dnnl::memory(data, engine_, p.dy.get())},
      {DNNL_ARG_SCALE, scale},
      // Unread by the gradients, but oneDNN 2.6 will not execute use_shift without it.
      {DNNL_ARG_SHIFT, args_.at(DNNL_ARG_SHIFT)},
      {DNNL_ARG_MEAN, mean},
      {DNNL_ARG_VARIANCE, variance},
      {DNNL_ARG_DIFF_SRC, dnnl::memory(data, engine_, p.dx.get())},
      {DNNL_ARG_DIFF_SCALE, dnnl::memory(backward_pd.diff_weights_desc(), engine_, dgamma_.data())},
      {DNNL_ARG_DIFF_SHIFT, dnnl::memory(backward_pd.diff_weights_desc(), engine_, dbeta_.data())},
  };
  if (!workspace_.empty()) args.emplace(DNNL_ARG_WORKSPACE, args_.at(DNNL_ARG_WORKSPACE));
  args_ = std::move(args);
  primitive_ = dnnl::batch_normalization_backward(backward_pd);
}

}  // namespace bench
}  // namespace bnorm
