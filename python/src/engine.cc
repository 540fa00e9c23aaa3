// SPDX-License-Identifier: Apache-2.0
// The engine functions: bnorm.moments, fold, normalize, fold_into_weights and the target
// registry, over include/bnorm/{kernels,fold,geometry,targets}.hpp. Arrays are read as
// arrays.h says; the GIL is released while a kernel runs.
#include "engine.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "args.h"
#include "arrays.h"
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

py::object NormalizeFn(py::handle x_value, py::handle mean_value, py::handle scale_value,
                       py::handle shift_value, py::handle axis, py::handle activation,
                       py::handle out) {
  const Tensor x = ReadTensor(x_value, "x");
  const std::vector<int> axes = ReadAxes(axis, "axis");
  const Geometry g = PlanGeometry(x.shape, axes);
  const std::vector<int64_t> shape = ParameterShape(x.shape, axes);
  // A float64 mean (bnorm.moments') is split into hi + lo floats, so that x - mean stays exact
  // when |mean| >> std (bnorm/kernels.hpp, SplitMean).
  std::vector<float> mean_hi, mean_lo;
  const bool split = py::isinstance<py::array>(mean_value) &&
                     py::reinterpret_borrow<py::array>(mean_value).dtype().kind() == 'f' &&
                     py::reinterpret_borrow<py::array>(mean_value).dtype().itemsize() == 8;
  if (split) {
    const std::vector<double> mean = ReadParameterDouble(mean_value, "mean", shape);
    mean_hi.resize(mean.size());
    mean_lo.resize(mean.size());
    for (size_t c = 0; c < mean.size(); ++c) SplitMean(mean[c], &mean_hi[c], &mean_lo[c]);
  } else {
    mean_hi = ReadParameter(mean_value, "mean", shape);
  }
  const std::vector<float> scale = ReadParameter(scale_value, "scale", shape);
  const std::vector<float> shift = ReadParameter(shift_value, "shift", shape);
  NormalizeParams params;
  params.mean_hi = mean_hi.data();
  params.mean_lo = split ? mean_lo.data() : nullptr;
  params.scale = scale.data();
  params.shift = shift.data();
  params.activation = ReadActivation(activation);

  py::array y;
  if (out.is_none()) {
    y = NewArray(x.element, x.shape);
  } else {
    CheckOutput(out, "out", x.element, x.shape);
    y = py::reinterpret_borrow<py::array>(out);
    if (PartlyOverlap(x.data(), y.data(), static_cast<size_t>(x.array.nbytes()))) {
      ThrowValue("out overlaps x without being x; expected x itself (in place) or separate memory");
    }
  }
  {
    const auto threads = CurrentThreads();
    void* data = y.mutable_data();
    py::gil_scoped_release release;
    Normalize(x.data(), data, x.type, g, params, threads->exec);
  }
  return std::move(y);
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
        py::arg("out") = py::none(),
        R"doc(y = activation((x - mean) * scale + shift) per channel of `axis`, in x's dtype.
activation is None, 'relu' or 'relu6'. A float64 mean (bnorm.moments') keeps its digits: it is
split into two floats. out= writes into a C-contiguous array of x's dtype and shape, which may
be x itself (in place); otherwise a new array is returned.)doc");
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
