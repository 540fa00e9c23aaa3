// SPDX-License-Identifier: Apache-2.0
// Keras' arguments of BatchNormalization to bnorm::Options, and back to Keras' get_config.
// Initializers: 'zeros', 'ones', a number (Constant) or Keras' serialized form of one of them;
// bnorm's variables are filled with one value, so other initializers are an error.
#include <map>
#include <string>

#include "args.h"
#include "errors.h"
#include "layer.h"

namespace bnorm {
namespace python {
namespace {

// Keras names unnamed layers batch_normalization, batch_normalization_1, ...
std::string NextName() {
  static int count = 0;
  const int n = count++;
  return n == 0 ? "batch_normalization" : "batch_normalization_" + std::to_string(n);
}

bool IsNumber(py::handle value) {
  return !py::isinstance<py::bool_>(value) && !py::isinstance<py::str>(value) &&
         PyNumber_Check(value.ptr()) && !PyComplex_Check(value.ptr()) &&
         !py::isinstance<py::array>(value);
}

[[noreturn]] void BadInitializer(const char* name, py::handle value) {
  ThrowValue(std::string(name) + " is " + py::repr(value).cast<std::string>() +
             "; expected 'zeros', 'ones', a number (a Constant) or the config dict of one of "
             "them");
}

Initializer ReadInitializer(py::handle value, const char* name) {
  if (IsNumber(value)) return Initializer::Constant(static_cast<float>(ReadNumber(value, name)));
  if (py::isinstance<py::str>(value)) {
    const std::string text = value.cast<std::string>();
    if (text == "zeros" || text == "Zeros") return Initializer::Zeros();
    if (text == "ones" || text == "Ones") return Initializer::Ones();
    BadInitializer(name, value);
  }
  if (py::isinstance<py::dict>(value)) {
    const py::dict d = py::reinterpret_borrow<py::dict>(value);
    if (!d.contains("class_name")) BadInitializer(name, value);
    const std::string cls = py::str(d["class_name"]).cast<std::string>();
    if (cls == "Zeros") return Initializer::Zeros();
    if (cls == "Ones") return Initializer::Ones();
    if (cls == "Constant" && d.contains("config")) {
      const py::object config = d["config"];
      if (py::isinstance<py::dict>(config) && config.contains("value")) {
        const std::string what = std::string(name) + "['config']['value']";
        return Initializer::Constant(static_cast<float>(ReadNumber(config["value"], what.c_str())));
      }
    }
  }
  BadInitializer(name, value);
}

// Keras' serialized initializer.
py::dict SerializeInitializer(py::handle value) {
  if (py::isinstance<py::dict>(value)) return py::dict(py::reinterpret_borrow<py::dict>(value));
  py::dict out;
  if (IsNumber(value)) {
    py::dict config;
    config["value"] = value;
    out["class_name"] = "Constant";
    out["config"] = config;
    return out;
  }
  const std::string text = value.cast<std::string>();
  out["class_name"] = text == "zeros" || text == "Zeros" ? "Zeros" : "Ones";
  out["config"] = py::dict();
  return out;
}

py::object ReadCallable(py::handle value, const char* name) {
  if (!value.is_none() && !PyCallable_Check(value.ptr())) {
    ThrowType(std::string(name) + " is a " + TypeName(value) + "; expected None or a callable");
  }
  return py::reinterpret_borrow<py::object>(value);
}

RenormClipping ReadClipping(py::handle value) {
  if (value.is_none()) return RenormClipping();
  if (!py::isinstance<py::dict>(value)) {
    ThrowType("renorm_clipping is a " + TypeName(value) +
              "; expected None or a dict with keys 'rmax', 'rmin', 'dmax'");
  }
  std::map<std::string, float> clipping;
  for (const auto& [key, v] : py::reinterpret_borrow<py::dict>(value)) {
    const std::string k = py::str(key).cast<std::string>();
    const std::string what = "renorm_clipping['" + k + "']";
    const bool known = k == "rmax" || k == "rmin" || k == "dmax";
    // Keras reads a missing key and a None value alike: no clip on that side. An unknown key
    // goes on to FromMap, whose error names it.
    if (v.is_none() && known) continue;
    clipping[k] = v.is_none() ? 0.0f : static_cast<float>(ReadNumber(v, what.c_str()));
  }
  return RenormClipping::FromMap(clipping);
}

Fused ReadFused(py::handle value) {
  if (value.is_none()) return Fused::kAuto;
  return ReadBool(value, "fused") ? Fused::kTrue : Fused::kFalse;
}

}  // namespace

ParsedArguments ParseArguments(const py::dict& a) {
  ParsedArguments p;
  Options& o = p.options;
  o.axis = ReadAxes(a["axis"], "axis");
  o.momentum = static_cast<float>(ReadNumber(a["momentum"], "momentum"));
  o.epsilon = static_cast<float>(ReadNumber(a["epsilon"], "epsilon"));
  o.center = ReadBool(a["center"], "center");
  o.scale = ReadBool(a["scale"], "scale");
  o.beta_initializer = ReadInitializer(a["beta_initializer"], "beta_initializer");
  o.gamma_initializer = ReadInitializer(a["gamma_initializer"], "gamma_initializer");
  o.moving_mean_initializer =
      ReadInitializer(a["moving_mean_initializer"], "moving_mean_initializer");
  o.moving_variance_initializer =
      ReadInitializer(a["moving_variance_initializer"], "moving_variance_initializer");
  for (const char* name : {"beta_regularizer", "gamma_regularizer"}) {
    if (!a[name].is_none()) {
      ThrowValue(std::string(name) +
                 " is set; a regularizer adds a penalty to the training loss, not to the "
                 "layer's math: add it to your loss (expected None)");
    }
  }
  p.beta_constraint = ReadCallable(a["beta_constraint"], "beta_constraint");
  p.gamma_constraint = ReadCallable(a["gamma_constraint"], "gamma_constraint");
  o.renorm = ReadBool(a["renorm"], "renorm");
  o.renorm_clipping = ReadClipping(a["renorm_clipping"]);
  o.renorm_momentum = static_cast<float>(ReadNumber(a["renorm_momentum"], "renorm_momentum"));
  o.fused = ReadFused(a["fused"]);
  o.trainable = ReadBool(a["trainable"], "trainable");
  o.virtual_batch_size = ReadOptionalInt(a["virtual_batch_size"], "virtual_batch_size");
  p.adjustment = ReadCallable(a["adjustment"], "adjustment");
  // Options::adjustment is set by the Layer, which owns the values it copies.
  o.synchronized = ReadBool(a["synchronized"], "synchronized");
  const py::object name = a["name"];
  if (!name.is_none() && !py::isinstance<py::str>(name)) {
    ThrowType("name is a " + TypeName(name) + "; expected None or a str");
  }
  const py::object dtype = a["dtype"];
  if (!dtype.is_none()) {
    const py::object np_dtype = py::module_::import("numpy").attr("dtype");
    bool float32 = false;
    try {
      float32 = py::str(np_dtype(dtype).attr("name")).cast<std::string>() == "float32";
    } catch (py::error_already_set&) {
    }
    if (!float32) {
      ThrowValue("dtype is " + py::repr(dtype).cast<std::string>() +
                 "; bnorm's variables and arithmetic are float32 (expected None or 'float32'; "
                 "float16 and bfloat16 inputs keep their dtype)");
    }
  }
  p.name = name.is_none() ? NextName() : name.cast<std::string>();
  return p;
}

py::dict MakeConfig(const py::dict& a, const std::string& name, bool trainable) {
  py::dict c;
  c["name"] = name;
  c["trainable"] = trainable;
  c["dtype"] = "float32";
  for (const char* key : {"axis", "momentum", "epsilon", "center", "scale"}) c[key] = a[key];
  for (const char* key : {"beta_initializer", "gamma_initializer", "moving_mean_initializer",
                          "moving_variance_initializer"}) {
    c[key] = SerializeInitializer(a[key]);
  }
  c["beta_regularizer"] = py::none();
  c["gamma_regularizer"] = py::none();
  c["beta_constraint"] = a["beta_constraint"];
  c["gamma_constraint"] = a["gamma_constraint"];
  // Keras adds its TensorFlow-specific arguments only when they are set.
  if (py::cast<bool>(a["renorm"])) {
    c["renorm"] = true;
    c["renorm_clipping"] = a["renorm_clipping"];
    c["renorm_momentum"] = a["renorm_momentum"];
  }
  if (!a["virtual_batch_size"].is_none()) c["virtual_batch_size"] = a["virtual_batch_size"];
  if (!a["fused"].is_none()) c["fused"] = a["fused"];
  if (py::cast<bool>(a["synchronized"])) c["synchronized"] = true;
  if (!a["adjustment"].is_none()) {
    // As Keras: the function cannot be serialized.
    if (PyErr_WarnEx(PyExc_UserWarning,
                     "The adjustment function of this BatchNormalization layer cannot be "
                     "serialized and has been omitted from the layer config",
                     1) != 0) {
      throw py::error_already_set();
    }
  }
  return c;
}

}  // namespace python
}  // namespace bnorm
