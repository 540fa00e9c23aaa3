// SPDX-License-Identifier: Apache-2.0
// The extension module bnorm: Keras' BatchNormalization and bnorm's engine functions on NumPy
// arrays. Each concept registers itself from its own file.
#include <pybind11/pybind11.h>

#include "engine.h"
#include "errors.h"
#include "layer.h"
#include "threads.h"

PYBIND11_MODULE(bnorm, m) {
  m.doc() = "bnorm: batch normalization with Keras' semantics on NumPy arrays";
  // NumPy is imported once here: every array conversion needs it.
  pybind11::module_::import("numpy");
  bnorm::python::RegisterErrors(m);
  bnorm::python::RegisterLayer(m);
  bnorm::python::RegisterEngine(m);
  bnorm::python::RegisterThreads(m);
  bnorm::python::RegisterTiming(m);
}
