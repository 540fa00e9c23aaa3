// SPDX-License-Identifier: Apache-2.0
// The engine functions: bnorm.moments, fold, normalize, training_normalize,
// training_backward, fold_into_weights and the target registry, over
// include/bnorm/{kernels,backward,fold,geometry,targets}.hpp. Arrays are read as
// arrays.h says; the GIL is released while a kernel runs.
#include "engine.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "args.h"
#include "arrays.h"
#include "bnorm/backward.hpp"
#include "bnorm/fold.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "bnorm/targets.hpp"
#include "errors.h"
#include "threads.h"

namespace bnorm {
namespace python {
namespace {

Activation ReadActivation(py::handle value) {
  if (value.is_none()) return Activation::kNone;
  if (!py::isinstance<py::str>(value)) {
    ThrowType("activation is a " + TypeName(value) + "; expected None, 'relu' or 'relu6'");
  }
  const std::string name = value.cast<std::string>();
  if (name == "relu") return Activation::kRelu;
  if (name == "relu6") return Activation::kRelu6;
  if (name == "linear") return Activation::kNone;
  ThrowValue("activation is '" + name + "'; expected None, 'linear', 'relu' or 'relu6'");
}

WeightLayout ReadLayout(py::handle value) {
  const std::string name = py::isinstance<py::str>(value) ? value.cast<std::string>() : "";
  if (name == "output_first") return WeightLayout::kOutputFirst;
  if (name == "output_last") return WeightLayout::kOutputLast;
  ThrowValue("layout is " + py::repr(value).cast<std::string>() +
             "; expected 'output_first' (OIHW, [out, in]) or 'output_last' (HWIO, [in, out])");
}

py::tuple Moments(py::handle x_value, py::handle axis) {
  const Tensor x = ReadTensor(x_value, "x");
  const std::vector<int> axes = ReadAxes(axis, "axis");
  const Geometry g = PlanGeometry(x.shape, axes);
  const std::vector<int64_t> shape = ParameterShape(x.shape, axes);
  if (g.reduced() == 0) {
    ThrowValue("x has shape " + ShapeText(x.shape) +
               ", no values per channel; moments need at least one");
  }
  std::vector<double> mean(g.channels), variance(g.channels);
  {
    const auto threads = CurrentThreads();
    py::gil_scoped_release release;
    BatchMoments(x.data(), x.type, g, mean.data(), variance.data(), threads->exec);
  }
  return py::make_tuple(ToArray(mean, shape), ToArray(variance, shape));
}

py::tuple FoldFn(py::handle gamma, py::handle beta, py::handle moving_mean,
                 py::handle moving_variance, py::handle epsilon) {
  std::vector<int64_t> shape;
  const std::vector<float> mean = ReadAnyParameter(moving_mean, "moving_mean", &shape);
  const std::vector<float> variance = ReadParameter(moving_variance, "moving_variance", shape);
  std::vector<float> g, b;
  if (!gamma.is_none()) g = ReadParameter(gamma, "gamma", shape);
  if (!beta.is_none()) b = ReadParameter(beta, "beta", shape);
  const float eps = static_cast<float>(ReadNumber(epsilon, "epsilon"));
  std::vector<float> scale(mean.size()), shift(mean.size());
  Fold(gamma.is_none() ? nullptr : g.data(), beta.is_none() ? nullptr : b.data(), mean.data(),
       variance.data(), mean.size(), eps, scale.data(), shift.data());
  return py::make_tuple(ToArray(scale, shape), ToArray(shift, shape));
}

// Two memory ranges that overlap without being the same: the kernels cannot run in place then.
bool PartlyOverlap(const void* a, const void* b, size_t bytes) {
  const char* p = static_cast<const char*>(a);
  const char* q = static_cast<const char*>(b);
  return p != q && p < q + bytes && q < p + bytes;
}

// A mean of the parameter shape as hi + lo floats: a float64 mean (bnorm.moments') is split,
// so that x - mean stays exact when |mean| >> std (bnorm/kernels.hpp, SplitMean); any other
// is read as float32 with lo = 0. Returns whether it was split.
bool ReadMean(py::handle mean_value, const std::vector<int64_t>& shape, std::vector<float>* hi,
              std::vector<float>* lo) {
  const bool split = py::isinstance<py::array>(mean_value) &&
                     py::reinterpret_borrow<py::array>(mean_value).dtype().kind() == 'f' &&
                     py::reinterpret_borrow<py::array>(mean_value).dtype().itemsize() == 8;
  if (split) {
    const std::vector<double> mean = ReadParameterDouble(mean_value, "mean", shape);
    hi->resize(mean.size());
    lo->resize(mean.size());
    for (size_t c = 0; c < mean.size(); ++c) SplitMean(mean[c], &(*hi)[c], &(*lo)[c]);
  } else {
    *hi = ReadParameter(mean_value, "mean", shape);
    lo->assign(hi->size(), 0.0f);
  }
  return split;
}

// The result array: a new one like x, or `out`, which may be each of `inputs` itself but
// overlap none of them otherwise.
py::array Output(py::handle out, const Tensor& x,
                 std::initializer_list<std::pair<const char*, const Tensor*>> inputs) {
  if (out.is_none()) return NewArray(x.element, x.shape);
  CheckOutput(out, "out", x.element, x.shape);
  py::array y = py::reinterpret_borrow<py::array>(out);
  for (const auto& [name, in] : inputs) {
    if (PartlyOverlap(in->data(), y.data(), static_cast<size_t>(x.array.nbytes()))) {
      const std::string n = name;
      ThrowValue("out overlaps " + n + " without being " + n + "; expected " + n +
                 " itself (in place) or separate memory");
    }
  }
  return y;
}

// gamma / beta as float32 of the parameter shape, or nothing for None.
std::vector<float> ReadOptionalParameter(py::handle value, const char* name,
                                         const std::vector<int64_t>& shape) {
  if (value.is_none()) return {};
  return ReadParameter(value, name, shape);
}

const float* DataOrNull(const std::vector<float>& v, py::handle value) {
  return value.is_none() ? nullptr : v.data();
}

}  // namespace

NormalizeArguments ReadNormalizeArguments(py::handle x_value, py::handle mean_value,
                                          py::handle scale_value, py::handle shift_value,
                                          py::handle axis) {
  NormalizeArguments a;
  a.x = ReadTensor(x_value, "x");
  const std::vector<int> axes = ReadAxes(axis, "axis");
  a.geometry = PlanGeometry(a.x.shape, axes);
  const std::vector<int64_t> shape = ParameterShape(a.x.shape, axes);
  const bool split = ReadMean(mean_value, shape, &a.mean_hi, &a.mean_lo);
  a.scale = ReadParameter(scale_value, "scale", shape);
  a.shift = ReadParameter(shift_value, "shift", shape);
  a.params.mean_hi = a.mean_hi.data();
  a.params.mean_lo = split ? a.mean_lo.data() : nullptr;
  a.params.scale = a.scale.data();
  a.params.shift = a.shift.data();
  return a;
}

namespace {

py::object NormalizeFn(py::handle x_value, py::handle mean_value, py::handle scale_value,
                       py::handle shift_value, py::handle axis, py::handle activation,
                       py::handle out, py::handle residual_value) {
  NormalizeArguments a =
      ReadNormalizeArguments(x_value, mean_value, scale_value, shift_value, axis);
  const Tensor& x = a.x;
  const Geometry& g = a.geometry;
  NormalizeParams& params = a.params;
  params.activation = ReadActivation(activation);
  Tensor residual;
  if (!residual_value.is_none()) {
    residual = ReadTensor(residual_value, "residual");
    if (residual.element != x.element) {
      const auto name = [](const Tensor& t) { return py::str(t.array.dtype()).cast<std::string>(); };
      ThrowType("residual has dtype " + name(residual) + "; expected x's " + name(x));
    }
    if (residual.shape != x.shape) {
      ThrowValue("residual has shape " + ShapeText(residual.shape) + "; expected x's shape " +
                 ShapeText(x.shape));
    }
    params.residual = residual.data();
  }

  py::array y = residual_value.is_none() ? Output(out, x, {{"x", &x}})
                                         : Output(out, x, {{"x", &x}, {"residual", &residual}});
  {
    const auto threads = CurrentThreads();
    void* data = y.mutable_data();
    py::gil_scoped_release release;
    Normalize(x.data(), data, x.type, g, params, threads->exec);
  }
  return std::move(y);
}

py::tuple TrainingNormalizeFn(py::handle x_value, py::handle gamma_value, py::handle beta_value,
                              py::handle epsilon, py::handle axis, py::handle out) {
  const Tensor x = ReadTensor(x_value, "x");
  const std::vector<int> axes = ReadAxes(axis, "axis");
  const Geometry g = PlanGeometry(x.shape, axes);
  const std::vector<int64_t> shape = ParameterShape(x.shape, axes);
  const std::vector<float> gamma = ReadOptionalParameter(gamma_value, "gamma", shape);
  const std::vector<float> beta = ReadOptionalParameter(beta_value, "beta", shape);
  const double eps = ReadNumber(epsilon, "epsilon");
  py::array y = Output(out, x, {{"x", &x}});
  std::vector<double> mean(g.channels), variance(g.channels);
  {
    const auto threads = CurrentThreads();
    void* data = y.mutable_data();
    py::gil_scoped_release release;
    TrainingNormalize(x.data(), data, x.type, g, DataOrNull(gamma, gamma_value),
                      DataOrNull(beta, beta_value), eps, mean.data(), variance.data(),
                      threads->exec);
  }
  return py::make_tuple(std::move(y), ToArray(mean, shape), ToArray(variance, shape));
}

py::tuple TrainingBackwardFn(py::handle x_value, py::handle dy_value, py::handle mean_value,
                             py::handle variance_value, py::handle gamma_value, py::handle epsilon,
                             py::handle axis, py::handle out) {
  const Tensor x = ReadTensor(x_value, "x");
  const Tensor dy = ReadTensor(dy_value, "dy");
  if (dy.type != x.type) {
    ThrowType(std::string("dy is ") + Name(dy.type) + "; expected " + Name(x.type) +
              ", the dtype of x (float64 and integers count as float32)");
  }
  if (dy.shape != x.shape) {
    ThrowValue("dy has shape " + ShapeText(dy.shape) + "; expected " + ShapeText(x.shape) +
               ", the shape of x");
  }
  const std::vector<int> axes = ReadAxes(axis, "axis");
  const Geometry g = PlanGeometry(x.shape, axes);
  const std::vector<int64_t> shape = ParameterShape(x.shape, axes);
  std::vector<float> mean_hi, mean_lo;
  ReadMean(mean_value, shape, &mean_hi, &mean_lo);
  const std::vector<double> variance = ReadParameterDouble(variance_value, "variance", shape);
  const std::vector<float> gamma = ReadOptionalParameter(gamma_value, "gamma", shape);
  const double eps = ReadNumber(epsilon, "epsilon");
  py::array dx = Output(out, x, {{"x", &x}, {"dy", &dy}});
  std::vector<double> sum_dy(g.channels), sum_dy_xmu(g.channels);
  {
    const auto threads = CurrentThreads();
    void* data = dx.mutable_data();
    py::gil_scoped_release release;
    TrainingBackward(x.data(), dy.data(), data, x.type, g, mean_hi.data(), mean_lo.data(),
                     variance.data(), DataOrNull(gamma, gamma_value), eps, sum_dy.data(),
                     sum_dy_xmu.data(), threads->exec);
  }
  return py::make_tuple(std::move(dx), ToArray(sum_dy, shape), ToArray(sum_dy_xmu, shape));
}

void FoldIntoWeightsFn(py::handle weights_value, py::handle bias_value, py::handle gamma,
                       py::handle beta, py::handle moving_mean, py::handle moving_variance,
                       py::handle epsilon, py::handle layout) {
  py::array weights = WritableFloat32(weights_value, "weights");
  py::array bias = WritableFloat32(bias_value, "bias");
  std::vector<int64_t> shape;
  const std::vector<float> mean = ReadAnyParameter(moving_mean, "moving_mean", &shape);
  const std::vector<float> variance = ReadParameter(moving_variance, "moving_variance", shape);
  std::vector<float> g, b;
  if (!gamma.is_none()) g = ReadParameter(gamma, "gamma", shape);
  if (!beta.is_none()) b = ReadParameter(beta, "beta", shape);
  if (static_cast<size_t>(bias.size()) != mean.size()) {
    ThrowValue("bias has " + std::to_string(bias.size()) + " values; expected " +
               std::to_string(mean.size()) + ", one per channel of moving_mean");
  }
  const float eps = static_cast<float>(ReadNumber(epsilon, "epsilon"));
  const WeightLayout cpp_layout = ReadLayout(layout);
  const std::vector<int64_t> weight_shape(weights.shape(), weights.shape() + weights.ndim());
  FoldIntoWeights(static_cast<float*>(weights.mutable_data()), weight_shape, cpp_layout,
                  static_cast<float*>(bias.mutable_data()), gamma.is_none() ? nullptr : g.data(),
                  beta.is_none() ? nullptr : b.data(), mean.data(), variance.data(), mean.size(),
                  eps);
}

std::vector<std::string> SupportedNames() {
  std::vector<std::string> names;
  for (const TargetInfo& t : SupportedTargets()) names.push_back(t.name);
  return names;
}

}  // namespace

void RegisterEngine(py::module_& m) {
  m.def("moments", &Moments, py::arg("x"), py::arg("axis") = -1,
        R"doc(Per-channel mean and biased (population) variance of x over every axis not in
`axis` (Keras' feature axes: an int or an adjacent list), as float64 arrays of the parameter
shape. Exact to about 1e-7 relative even when |mean| >> std.)doc");
  m.def("fold", &FoldFn, py::arg("gamma"), py::arg("beta"), py::arg("moving_mean"),
        py::arg("moving_variance"), py::arg("epsilon") = 1e-3,
        R"doc(Inference coefficients of a frozen batch norm: (scale, shift) with
scale = gamma / sqrt(moving_variance + epsilon) and shift = beta, computed in double, so that
y = (x - moving_mean) * scale + shift (bnorm.normalize). gamma or beta may be None.)doc");
  m.def("normalize", &NormalizeFn, py::arg("x"), py::arg("mean"), py::arg("scale"),
        py::arg("shift"), py::arg("axis") = -1, py::arg("activation") = py::none(),
        py::arg("out") = py::none(), py::arg("residual") = py::none(),
        R"doc(y = activation((x - mean) * scale + shift [+ residual]) per channel of `axis`, in
x's dtype. activation is None, 'relu' or 'relu6'. A float64 mean (bnorm.moments') keeps its
digits: it is split into two floats. residual, an array of x's dtype and shape, is added before
the activation in the same pass (a block's "batch norm, add, ReLU"). out= writes into a
C-contiguous array of x's dtype and shape, which may be x or residual itself (in place);
otherwise a new array is returned.)doc");
  m.def("training_normalize", &TrainingNormalizeFn, py::arg("x"), py::arg("gamma") = py::none(),
        py::arg("beta") = py::none(), py::arg("epsilon") = 1e-3, py::arg("axis") = -1,
        py::arg("out") = py::none(),
        R"doc(A training forward in one call: (y, mean, variance) with the float64 batch mean and
biased variance of x per channel of `axis` (bitwise bnorm.moments') and
y = (x - mean) * gamma / sqrt(variance + epsilon) + beta in x's dtype. gamma and beta may be
None (1 and 0). Channels-first tensors beyond the caches whose channel fits in a core's cache
are done channel by channel, reading x from memory once. out= writes y into a C-contiguous
array of x's dtype and shape, which may be x itself (in place).)doc");
  m.def("training_backward", &TrainingBackwardFn, py::arg("x"), py::arg("dy"), py::arg("mean"),
        py::arg("variance"), py::arg("gamma") = py::none(), py::arg("epsilon") = 1e-3,
        py::arg("axis") = -1, py::arg("out") = py::none(),
        R"doc(The backward of bnorm.training_normalize in one call: (dx, sum_dy, sum_dy_xmu) for
the loss gradient dy (x's dtype and shape), from the forward's mean (float64 keeps its digits)
and variance. With rho = 1 / sqrt(variance + epsilon) and n the values per channel:
sum_dy = sum(dy), sum_dy_xmu = sum(dy * (x - mean)) per channel (float64), and
dx = gamma * rho * (dy - sum_dy / n - (x - mean) * rho**2 * sum_dy_xmu / n). The parameter
gradients are d_gamma = rho * sum_dy_xmu and d_beta = sum_dy. gamma may be None (1).
Channels-first tensors beyond the caches are done channel by channel where a channel of x and
dy fits in a core's cache, reading each from memory once. out= may be dy or x itself.)doc");
  m.def("fold_into_weights", &FoldIntoWeightsFn, py::arg("weights"), py::arg("bias"),
        py::arg("gamma"), py::arg("beta"), py::arg("moving_mean"), py::arg("moving_variance"),
        py::arg("epsilon") = 1e-3, py::arg("layout") = "output_first",
        R"doc(Folds a frozen batch norm into the preceding convolution or dense layer, in place:
afterwards layer'(x) == bn(layer(x)) up to rounding. weights and bias are float32 C-contiguous
arrays, rewritten; layout is 'output_first' (OIHW, PyTorch's [out, in]) or 'output_last' (HWIO,
Keras' [in, out] kernels). gamma or beta may be None.)doc");
  m.def("targets", &SupportedNames,
        "The SIMD targets this CPU runs, best first (names for force_target).");
  m.def("active_target", &ActiveTarget, "The target the kernels dispatch to now.");
  m.def("force_target", &ForceTarget, py::arg("name"),
        "Pins the kernels to one target by name (see targets()). Not thread-safe: call it "
        "before starting parallel work.");
  m.def("reset_target", &ResetTarget, "Back to the best supported target.");
}

}  // namespace python
}  // namespace bnorm
