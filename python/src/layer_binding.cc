// SPDX-License-Identifier: Apache-2.0
// The Python class bnorm.BatchNormalization: Keras' constructor signature and defaults, the
// call, backward, weights and config methods, with their docstrings.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "layer.h"

namespace bnorm {
namespace python {

namespace {

constexpr const char* kClassDoc = R"doc(Keras' BatchNormalization (tf-keras 2.x) on NumPy arrays.

Arguments, names and defaults are Keras': axis (int or list), momentum, epsilon, center, scale,
the four initializers ('zeros', 'ones', a number for Constant, or Keras' config dict of one),
beta/gamma_regularizer (None only: add a penalty to your loss), beta/gamma_constraint (a
callable from a NumPy array to the constrained array, applied whenever set_weights assigns the
variable, which is the optimizer step here), renorm, renorm_clipping (dict of rmax, rmin,
dmax), renorm_momentum, fused (None: Keras' choice), trainable, virtual_batch_size, adjustment
(a callable from the input shape tuple to (scale, bias), each of the parameter shape or one
value, called in training), synchronized and name. docs/semantics.md is the math.

synchronized=True is Keras' cross-replica batch norm; this module has no communicator, so it
runs as a single rank, which is Keras' behaviour with one replica (bitwise the unsynchronized
layer; it never uses the fused convention, and fused=True with it is an error).

Inputs: float32, float16 and bfloat16 (uint16 bit patterns, or ml_dtypes.bfloat16) keep their
dtype; float64 and integers are cast to float32 (Keras' autocast). C-contiguous, aligned arrays
are read without a copy; others are copied once. The GIL is released while the layer runs;
calls on one layer object are serialized.

Variables are float32 arrays of the parameter shape (the sizes of the feature axes; Keras keeps
a full-rank (1, ..., C) shape with virtual_batch_size or several axes, which set_weights also
accepts).)doc";

py::dict Arguments(py::object axis, py::object momentum, py::object epsilon, py::object center,
                   py::object scale, py::object beta_initializer, py::object gamma_initializer,
                   py::object moving_mean_initializer, py::object moving_variance_initializer,
                   py::object beta_regularizer, py::object gamma_regularizer,
                   py::object beta_constraint, py::object gamma_constraint, py::object renorm,
                   py::object renorm_clipping, py::object renorm_momentum, py::object fused,
                   py::object trainable, py::object virtual_batch_size, py::object adjustment,
                   py::object synchronized, py::object name, py::object dtype) {
  py::dict a;
  a["axis"] = axis;
  a["momentum"] = momentum;
  a["epsilon"] = epsilon;
  a["center"] = center;
  a["scale"] = scale;
  a["beta_initializer"] = beta_initializer;
  a["gamma_initializer"] = gamma_initializer;
  a["moving_mean_initializer"] = moving_mean_initializer;
  a["moving_variance_initializer"] = moving_variance_initializer;
  a["beta_regularizer"] = beta_regularizer;
  a["gamma_regularizer"] = gamma_regularizer;
  a["beta_constraint"] = beta_constraint;
  a["gamma_constraint"] = gamma_constraint;
  a["renorm"] = renorm;
  a["renorm_clipping"] = renorm_clipping;
  a["renorm_momentum"] = renorm_momentum;
  a["fused"] = fused;
  a["trainable"] = trainable;
  a["virtual_batch_size"] = virtual_batch_size;
  a["adjustment"] = adjustment;
  a["synchronized"] = synchronized;
  a["name"] = name;
  a["dtype"] = dtype;
  return a;
}

}  // namespace

void RegisterLayer(py::module_& m) {
  py::class_<Layer> cls(m, "BatchNormalization", kClassDoc);
  cls.def(py::init([](py::object axis, py::object momentum, py::object epsilon, py::object center,
                      py::object scale, py::object beta_initializer, py::object gamma_initializer,
                      py::object moving_mean_initializer, py::object moving_variance_initializer,
                      py::object beta_regularizer, py::object gamma_regularizer,
                      py::object beta_constraint, py::object gamma_constraint, py::object renorm,
                      py::object renorm_clipping, py::object renorm_momentum, py::object fused,
                      py::object trainable, py::object virtual_batch_size, py::object adjustment,
                      py::object synchronized, py::object name, py::object dtype) {
            return new Layer(Arguments(axis, momentum, epsilon, center, scale, beta_initializer,
                                       gamma_initializer, moving_mean_initializer,
                                       moving_variance_initializer, beta_regularizer,
                                       gamma_regularizer, beta_constraint, gamma_constraint, renorm,
                                       renorm_clipping, renorm_momentum, fused, trainable,
                                       virtual_batch_size, adjustment, synchronized, name, dtype));
          }),
          py::arg("axis") = -1, py::arg("momentum") = 0.99, py::arg("epsilon") = 1e-3,
          py::arg("center") = true, py::arg("scale") = true, py::arg("beta_initializer") = "zeros",
          py::arg("gamma_initializer") = "ones", py::arg("moving_mean_initializer") = "zeros",
          py::arg("moving_variance_initializer") = "ones", py::arg("beta_regularizer") = py::none(),
          py::arg("gamma_regularizer") = py::none(), py::arg("beta_constraint") = py::none(),
          py::arg("gamma_constraint") = py::none(), py::arg("renorm") = false,
          py::arg("renorm_clipping") = py::none(), py::arg("renorm_momentum") = 0.99,
          py::arg("fused") = py::none(), py::arg("trainable") = true,
          py::arg("virtual_batch_size") = py::none(), py::arg("adjustment") = py::none(),
          py::arg("synchronized") = false, py::arg("name") = py::none(), py::kw_only(),
          py::arg("dtype") = py::none());
  cls.def("__call__", &Layer::Call, py::arg("x"), py::arg("training") = py::none(),
          R"doc(y for x. training: True uses the batch statistics and updates the moving ones;
False or None (Keras' default without a learning phase) uses the moving statistics;
trainable=False always runs as inference. Returns a new array of x's dtype (float32 for cast
inputs). The layer keeps a reference to x (no copy) for backward.)doc");
  cls.def("backward", &Layer::Backward, py::arg("dy"),
          R"doc(dx for the loss gradient dy (the shape of the last call's x, and its dtype)
of the most recent call, and the parameter gradients in `gradients`. A training call gives
Keras' training gradient (renorm's r and d and the moving statistics are constants); an
inference call the gradient of its affine map. x must not have changed in place since.)doc");
  cls.def("build", &Layer::Build, py::arg("input_shape"),
          "Creates the variables for inputs of this shape (the first call does it too).");
  cls.def("get_weights", &Layer::GetWeights,
          "Keras' order: gamma (scale), beta (center), moving_mean, moving_variance, then with "
          "renorm moving_stddev, renorm_mean, renorm_stddev. [] before the layer is built.");
  cls.def("set_weights", &Layer::SetWeights, py::arg("weights"),
          "Assigns every variable, in get_weights' order; the constraints apply to gamma and "
          "beta. Nothing changes when an array is wrong or a constraint raises.");
  cls.def("get_config", &Layer::GetConfig, "Keras' config dict (from_config's argument).");
  cls.def_static(
      "from_config",
      [](const py::dict& config) {
        return py::module_::import("bnorm").attr("BatchNormalization")(**config);
      },
      py::arg("config"), "A new layer from get_config's dict, as Keras' from_config.");
  cls.def_property("trainable", &Layer::trainable, &Layer::set_trainable,
                   "False freezes the layer: every call runs in inference mode.");
  cls.def_property_readonly("built", &Layer::built);
  cls.def_property_readonly("fused", &Layer::fused,
                            "Whether the layer uses TensorFlow's fused convention (resolved "
                            "at build as Keras does; None before).");
  cls.def_property_readonly(
      "gradients", &Layer::gradients,
      "The last backward's parameter gradients: 'gamma' (scale), 'beta' (center), and "
      "'adjustment_scale', 'adjustment_bias' after a training call with an adjustment.");
  cls.def_property_readonly("name", &Layer::name);
  cls.def("__repr__", &Layer::Repr);
}

}  // namespace python
}  // namespace bnorm
