// SPDX-License-Identifier: Apache-2.0
// bnorm.BatchNormalization: Keras' layer over bnorm::BatchNorm. layer.cc holds the calls
// (forward, backward, weights), layer_config.cc the Keras arguments (initializers, constraints,
// get_config). The layer keeps the Python callables (constraints, adjustment) and calls them
// with the GIL held, before the C++ layer runs; the C++ layer never calls back into Python.
#ifndef BNORM_PYTHON_LAYER_H_
#define BNORM_PYTHON_LAYER_H_

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "arrays.h"
#include "bnorm/batch_norm.hpp"

namespace bnorm {
namespace python {

namespace py = pybind11;

// The adjustment's values for the next training call, computed in Python beforehand and
// copied by the C++ Adjustment (Options::adjustment) when the layer asks for them.
struct AdjustmentValues {
  std::vector<float> scale, bias;
};

class Layer {
 public:
  // Keras' arguments as given (the constructor's keywords); throws TypeError/ValueError
  // naming the argument.
  explicit Layer(const py::dict& arguments);

  py::array Call(py::handle x, py::handle training);
  py::array Backward(py::handle dy);
  void Build(py::handle input_shape);

  py::list GetWeights();
  void SetWeights(py::handle weights);
  py::dict GetConfig() const;

  bool trainable() const;
  void set_trainable(py::handle value);
  bool built() const { return layer_->built(); }
  py::object fused() const;
  // The last backward's parameter gradients, as arrays made at the first read after it.
  const py::dict& gradients();
  const std::string& name() const { return name_; }
  std::string Repr() const;

  // The C++ calls behind Call and Backward on float32 data, timed in place (timing.cc).
  std::vector<double> TimeForward(py::handle x, bool training, int calls);
  std::vector<double> TimeBackward(py::handle dy, int calls);

 private:
  // The variable names in Keras' weight order for these options.
  std::vector<std::string> WeightNames() const;
  // value after the constraint (a callable on a NumPy array) for `name`, if it has one.
  std::vector<float> Constrain(const std::string& name, std::vector<float> values) const;
  // The adjustment's (scale, bias) for an input of `shape`, of the parameter size.
  AdjustmentValues Adjust(const std::vector<int64_t>& shape) const;

  py::dict config_;  // Keras' arguments as given, for get_config
  std::string name_;
  py::object gamma_constraint_, beta_constraint_, adjustment_;
  std::shared_ptr<AdjustmentValues> adjustment_values_;
  std::unique_ptr<BatchNorm> layer_;
  // Calls on one layer never overlap (a training call rewrites the state): each takes the
  // mutex after releasing the GIL, and nothing holding it needs the GIL.
  std::unique_ptr<std::mutex> mutex_;
  // The last forward's input (x itself when it was not copied) and its element type: backward
  // reads it, so changing x in place between the two changes the gradients.
  py::object last_x_ = py::none();
  Element last_element_ = Element::kFloat32;
  py::dict gradients_;
  bool gradients_stale_ = false;  // a backward ran since gradients_ was built
};

// The parsing of Keras' arguments into bnorm::Options (layer_config.cc).
struct ParsedArguments {
  Options options;
  std::string name;
  py::object gamma_constraint, beta_constraint, adjustment;
};
ParsedArguments ParseArguments(const py::dict& arguments);
// Keras' get_config from the arguments as given and the current trainable flag.
py::dict MakeConfig(const py::dict& arguments, const std::string& name, bool trainable);

void RegisterLayer(py::module_& m);
void RegisterTiming(py::module_& m);

}  // namespace python
}  // namespace bnorm

#endif  // BNORM_PYTHON_LAYER_H_
