// SPDX-License-Identifier: Apache-2.0
// bnorm.BatchNormalization's calls: forward, backward and the weights (see layer.h). Keras'
// arguments are parsed in layer_config.cc.
#include "layer.h"

#include <pybind11/stl.h>

#include <algorithm>
#include <utility>

#include "args.h"
#include "errors.h"
#include "threads.h"

namespace bnorm {
namespace python {
namespace {

std::optional<bool> ReadTraining(py::handle value) {
  if (value.is_none()) return std::nullopt;
  return ReadBool(value, "training");
}

// Whether a Forward with these arguments trains (Keras: unset means inference, and
// trainable=False forces it).
bool Trains(std::optional<bool> training, const BatchNorm& layer) {
  return training.value_or(false) && layer.options().trainable;
}

}  // namespace

Layer::Layer(const py::dict& arguments)
    : config_(arguments), mutex_(std::make_unique<std::mutex>()) {
  ParsedArguments parsed = ParseArguments(arguments);
  name_ = parsed.name;
  gamma_constraint_ = parsed.gamma_constraint;
  beta_constraint_ = parsed.beta_constraint;
  adjustment_ = parsed.adjustment;
  if (!adjustment_.is_none()) {
    adjustment_values_ = std::make_shared<AdjustmentValues>();
    // Runs inside the C++ training call, GIL released: it only copies what Call computed.
    parsed.options.adjustment = [values = adjustment_values_](const std::vector<int64_t>&,
                                                              float* scale, float* bias) {
      std::copy(values->scale.begin(), values->scale.end(), scale);
      std::copy(values->bias.begin(), values->bias.end(), bias);
    };
  }
  layer_ = std::make_unique<BatchNorm>(std::move(parsed.options));
}

AdjustmentValues Layer::Adjust(const std::vector<int64_t>& shape) const {
  const std::vector<int64_t> params = layer_->parameter_shape();
  py::tuple shape_tuple(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) shape_tuple[i] = py::int_(shape[i]);
  const py::object result = adjustment_(shape_tuple);
  if (!py::isinstance<py::tuple>(result) && !py::isinstance<py::list>(result)) {
    ThrowType("adjustment returned a " + TypeName(result) + "; expected a pair (scale, bias)");
  }
  const py::sequence pair = py::reinterpret_borrow<py::sequence>(result);
  if (pair.size() != 2) {
    ThrowValue("adjustment returned " + std::to_string(pair.size()) +
               " values; expected a pair (scale, bias)");
  }
  size_t channels = 1;
  for (int64_t p : params) channels *= static_cast<size_t>(p);
  // A single value broadcasts over the channels, as in Keras.
  const auto read = [&](py::handle value, const char* what) {
    py::array a = py::module_::import("numpy").attr("asarray")(value);
    if (a.size() == 1 && channels != 1) {
      return std::vector<float>(channels, ReadParameter(value, what, {}).front());
    }
    return ReadParameter(value, what, params);
  };
  return AdjustmentValues{read(pair[0], "adjustment's scale"), read(pair[1], "adjustment's bias")};
}

py::array Layer::Call(py::handle x_value, py::handle training_value) {
  const Tensor x = ReadTensor(x_value, "x");
  const std::optional<bool> training = ReadTraining(training_value);
  AdjustmentValues adjustment;
  const bool adjust = adjustment_values_ && Trains(training, *layer_) && x.elements != 0;
  if (adjust) {
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(*mutex_);
      layer_->Build(x.shape);
    }
    adjustment = Adjust(x.shape);
  }
  py::array y = NewArray(x.element, x.shape);
  {
    const auto threads = CurrentThreads();
    void* out = y.mutable_data();
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(*mutex_);
    if (adjust) *adjustment_values_ = std::move(adjustment);
    if (x.type == DType::kFloat32) {
      layer_->Forward(static_cast<const float*>(x.data()), static_cast<float*>(out), x.shape,
                      training, threads->exec);
    } else {
      layer_->Forward(static_cast<const uint16_t*>(x.data()), static_cast<uint16_t*>(out), x.type,
                      x.shape, training, threads->exec);
    }
  }
  last_x_ = x.array;
  last_element_ = x.element;
  return y;
}

py::array Layer::Backward(py::handle dy_value) {
  if (last_x_.is_none()) {
    ThrowValue("backward needs a forward call first: there is nothing to differentiate");
  }
  const Tensor dy = ReadTensor(dy_value, "dy");
  const py::array x = py::reinterpret_borrow<py::array>(last_x_);
  const DType x_type = last_element_ == Element::kFloat32   ? DType::kFloat32
                       : last_element_ == Element::kFloat16 ? DType::kFloat16
                                                            : DType::kBFloat16;
  if (dy.type != x_type) {
    ThrowType(std::string("dy is ") + Name(dy.type) + "; expected " + Name(x_type) +
              ", the dtype the forward call read (float64 and integers count as float32)");
  }
  py::array dx = NewArray(dy.element, dy.shape);
  {
    const auto threads = CurrentThreads();
    void* out = dx.mutable_data();
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(*mutex_);
    if (x_type == DType::kFloat32) {
      layer_->Backward(static_cast<const float*>(x.data()), static_cast<const float*>(dy.data()),
                       static_cast<float*>(out), dy.shape, threads->exec);
    } else {
      layer_->Backward(static_cast<const uint16_t*>(x.data()),
                       static_cast<const uint16_t*>(dy.data()), static_cast<uint16_t*>(out), x_type,
                       dy.shape, threads->exec);
    }
  }
  gradients_stale_ = true;  // the dict is built when `gradients` is read
  return dx;
}

const py::dict& Layer::gradients() {
  if (!gradients_stale_) return gradients_;
  py::dict gradients;
  std::lock_guard<std::mutex> lock(*mutex_);  // a call on another thread may be running
  const std::vector<int64_t> params = layer_->parameter_shape();
  const std::pair<const char*, const std::vector<float>*> all[] = {
      {"gamma", &layer_->gradient_gamma()},
      {"beta", &layer_->gradient_beta()},
      {"adjustment_scale", &layer_->gradient_adjustment_scale()},
      {"adjustment_bias", &layer_->gradient_adjustment_bias()}};
  for (const auto& [key, values] : all) {
    if (!values->empty()) gradients[key] = ToArray(*values, params);
  }
  gradients_ = gradients;
  gradients_stale_ = false;
  return gradients_;
}

void Layer::Build(py::handle input_shape) {
  std::vector<int64_t> shape;
  if (!py::isinstance<py::tuple>(input_shape) && !py::isinstance<py::list>(input_shape)) {
    ThrowType("input_shape is a " + TypeName(input_shape) + "; expected a tuple of ints");
  }
  for (py::handle size : input_shape) {
    const std::optional<int64_t> s = ReadOptionalInt(size, "input_shape");
    // Keras' unknown batch size (None) builds like an empty batch: only the feature axes count.
    shape.push_back(s.value_or(0));
  }
  std::lock_guard<std::mutex> lock(*mutex_);
  layer_->Build(shape);
}

std::vector<std::string> Layer::WeightNames() const {
  const Options& o = layer_->options();
  std::vector<std::string> names;
  if (o.scale) names.push_back("gamma");
  if (o.center) names.push_back("beta");
  names.insert(names.end(), {"moving_mean", "moving_variance"});
  if (o.renorm) names.insert(names.end(), {"moving_stddev", "renorm_mean", "renorm_stddev"});
  return names;
}

py::list Layer::GetWeights() {
  py::list weights;
  if (!layer_->built()) return weights;  // Keras: no weights before build
  const std::vector<int64_t> params = layer_->parameter_shape();
  std::lock_guard<std::mutex> lock(*mutex_);
  for (const std::string& name : WeightNames()) {
    const std::vector<float>& v = name == "gamma"             ? layer_->gamma()
                                  : name == "beta"            ? layer_->beta()
                                  : name == "moving_mean"     ? layer_->moving_mean()
                                  : name == "moving_variance" ? layer_->moving_variance()
                                  : name == "moving_stddev"   ? layer_->moving_stddev()
                                  : name == "renorm_mean"     ? layer_->renorm_mean()
                                                              : layer_->renorm_stddev();
    weights.append(ToArray(v, params));
  }
  return weights;
}

std::vector<float> Layer::Constrain(const std::string& name, std::vector<float> values) const {
  const py::object& constraint = name == "gamma"  ? gamma_constraint_
                                 : name == "beta" ? beta_constraint_
                                                  : py::none();
  if (constraint.is_none()) return values;
  const std::vector<int64_t> params = layer_->parameter_shape();
  py::array argument = ToArray(values, params);
  py::object result = constraint(argument);
  // Keras' constraints return the new value; one that rewrites its argument returns None.
  const std::string what = name + "_constraint's result";
  return ReadParameter(result.is_none() ? py::object(argument) : result, what.c_str(), params);
}

void Layer::SetWeights(py::handle weights) {
  if (!py::isinstance<py::list>(weights) && !py::isinstance<py::tuple>(weights)) {
    ThrowType("weights is a " + TypeName(weights) + "; expected a list of arrays");
  }
  const std::vector<std::string> names =
      layer_->built() ? WeightNames() : std::vector<std::string>{};
  const py::sequence list = py::reinterpret_borrow<py::sequence>(weights);
  if (list.size() != names.size()) {
    std::string expected;
    for (const std::string& n : names) expected += (expected.empty() ? "" : ", ") + n;
    ThrowValue("weights has " + std::to_string(list.size()) + " arrays; the layer has " +
               std::to_string(names.size()) + " weights" +
               (layer_->built() ? " (" + expected + ")" : " (it is not built yet)"));
  }
  if (names.empty()) return;
  // Every array is read and constrained before any is assigned: a failure changes nothing.
  const std::vector<int64_t> params = layer_->parameter_shape();
  std::vector<std::vector<float>> values;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string what = "weights[" + std::to_string(i) + "] (" + names[i] + ")";
    values.push_back(Constrain(names[i], ReadParameter(list[i], what.c_str(), params)));
  }
  std::lock_guard<std::mutex> lock(*mutex_);
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& n = names[i];
    if (n == "gamma") layer_->set_gamma(values[i]);
    if (n == "beta") layer_->set_beta(values[i]);
    if (n == "moving_mean") layer_->set_moving_mean(values[i]);
    if (n == "moving_variance") layer_->set_moving_variance(values[i]);
    if (n == "moving_stddev") layer_->set_moving_stddev(values[i]);
    if (n == "renorm_mean") layer_->set_renorm_mean(values[i]);
    if (n == "renorm_stddev") layer_->set_renorm_stddev(values[i]);
  }
}

py::dict Layer::GetConfig() const { return MakeConfig(config_, name_, trainable()); }

bool Layer::trainable() const { return layer_->options().trainable; }

void Layer::set_trainable(py::handle value) {
  const bool trainable = ReadBool(value, "trainable");
  std::lock_guard<std::mutex> lock(*mutex_);
  layer_->set_trainable(trainable);
}

py::object Layer::fused() const {
  if (!layer_->built()) return py::none();
  return py::bool_(layer_->fused());
}

std::string Layer::Repr() const {
  return "<bnorm.BatchNormalization name='" + name_ +
         "', built=" + (layer_->built() ? "True" : "False") + ">";
}

}  // namespace python
}  // namespace bnorm
