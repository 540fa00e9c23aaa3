// SPDX-License-Identifier: Apache-2.0
// bnorm._timing: the C++ calls behind the module's per-batch calls, timed inside the module on
// the same objects, arrays and threads, so that tools/python-bench.py measures what Python
// adds (argument checks, the new output array, the GIL) in one process and in turns, not
// against another process at another time. Each function returns the seconds of every call.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <mutex>
#include <vector>

#include "arrays.h"
#include "engine.h"
#include "bnorm/kernels.hpp"
#include "errors.h"
#include "layer.h"
#include "threads.h"

namespace bnorm {
namespace python {
namespace {

int ReadCalls(int calls) {
  if (calls < 1) ThrowValue("calls is " + std::to_string(calls) + "; expected at least 1");
  return calls;
}

// Seconds of each of `calls` calls of body(), with the GIL released as the module's calls do.
template <class Body>
std::vector<double> Time(int calls, const Body& body) {
  std::vector<double> seconds(static_cast<size_t>(ReadCalls(calls)));
  py::gil_scoped_release release;
  for (double& s : seconds) {
    const auto t0 = std::chrono::steady_clock::now();
    body();
    s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return seconds;
}

}  // namespace

std::vector<double> Layer::TimeForward(py::handle x_value, bool training, int calls) {
  const Tensor x = ReadTensor(x_value, "x");
  if (x.type != DType::kFloat32) ThrowType("x is not float32; the timing takes float32 only");
  py::array y = NewArray(x.element, x.shape);
  const float* in = static_cast<const float*>(x.data());
  float* out = static_cast<float*>(y.mutable_data());
  const auto threads = CurrentThreads();
  return Time(calls, [&] {
    std::lock_guard<std::mutex> lock(*mutex_);
    layer_->Forward(in, out, x.shape, training, threads->exec);
  });
}

std::vector<double> Layer::TimeBackward(py::handle dy_value, int calls) {
  if (last_x_.is_none()) ThrowValue("backward needs a forward call first");
  const Tensor dy = ReadTensor(dy_value, "dy");
  const py::array x = py::reinterpret_borrow<py::array>(last_x_);
  if (dy.type != DType::kFloat32 || last_element_ != Element::kFloat32) {
    ThrowType("x or dy is not float32; the timing takes float32 only");
  }
  py::array dx = NewArray(dy.element, dy.shape);
  const float* in = static_cast<const float*>(x.data());
  const float* grad = static_cast<const float*>(dy.data());
  float* out = static_cast<float*>(dx.mutable_data());
  const auto threads = CurrentThreads();
  return Time(calls, [&] {
    std::lock_guard<std::mutex> lock(*mutex_);
    layer_->Backward(in, grad, out, dy.shape, threads->exec);
  });
}

void RegisterTiming(py::module_& m) {
  py::module_ t = m.def_submodule(
      "_timing", "The C++ calls behind the per-batch calls, timed in the module (python-bench).");
  t.def(
      "forward",
      [](Layer& layer, py::handle x, bool training, int calls) {
        return layer.TimeForward(x, training, calls);
      },
      py::arg("layer"), py::arg("x"), py::arg("training"), py::arg("calls"),
      "Seconds of each of `calls` BatchNorm::Forward calls of the layer on float32 x into one "
      "preallocated y.");
  t.def(
      "backward",
      [](Layer& layer, py::handle dy, int calls) { return layer.TimeBackward(dy, calls); },
      py::arg("layer"), py::arg("dy"), py::arg("calls"),
      "Seconds of each of `calls` BatchNorm::Backward calls of the layer's last forward for "
      "float32 dy into one preallocated dx.");
  t.def(
      "normalize",
      [](py::handle x, py::handle mean, py::handle scale, py::handle shift, py::handle axis,
         int calls) {
        const NormalizeArguments a = ReadNormalizeArguments(x, mean, scale, shift, axis);
        py::array y = NewArray(a.x.element, a.x.shape);
        void* out = y.mutable_data();
        const auto threads = CurrentThreads();
        return Time(calls, [&] {
          Normalize(a.x.data(), out, a.x.type, a.geometry, a.params, threads->exec);
        });
      },
      py::arg("x"), py::arg("mean"), py::arg("scale"), py::arg("shift"), py::arg("axis"),
      py::arg("calls"),
      "Seconds of each of `calls` bnorm::Normalize calls, with bnorm.normalize's arguments, "
      "into one preallocated y.");
}

}  // namespace python
}  // namespace bnorm
