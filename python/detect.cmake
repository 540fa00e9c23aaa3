# SPDX-License-Identifier: Apache-2.0
# Finds what the Python module needs (Python 3 with NumPy, and pybind11) and says in one
# STATUS line whether python/ is built. Included from the top-level CMakeLists.txt; sets
# BNORM_PYTHON_FOUND.
#
# Which interpreter: the module is for Debian's system python3, the one python3-numpy,
# python3-pytest and python3-torch install into. A PATH search can find another first (a
# pyenv shim, a virtualenv) whose NumPy and ABI differ, so Python3_EXECUTABLE defaults to
# /usr/bin/python3 when it exists; pass -DPython3_EXECUTABLE=... to build for another one.
option(BNORM_BUILD_PYTHON "Build the Python module bnorm (python/) when its dependencies are found" ON)
set(BNORM_PYTHON_FOUND FALSE)
if(NOT BNORM_BUILD_PYTHON)
  message(STATUS "bnorm: the Python module is off (BNORM_BUILD_PYTHON=OFF)")
  return()
endif()
# A sanitized module cannot be loaded by an unsanitized interpreter, and a cross build's module
# not by the host's.
if(CMAKE_CROSSCOMPILING OR BNORM_SANITIZE OR BNORM_FUZZ)
  message(STATUS "bnorm: the Python module is not built in cross, sanitizer or fuzzing builds")
  return()
endif()
if(NOT DEFINED Python3_EXECUTABLE AND EXISTS /usr/bin/python3)
  set(Python3_EXECUTABLE /usr/bin/python3 CACHE FILEPATH "The Python the module bnorm is built for")
endif()
find_package(Python3 COMPONENTS Interpreter Development.Module NumPy QUIET)
if(NOT Python3_Interpreter_FOUND OR NOT Python3_Development.Module_FOUND)
  message(STATUS "bnorm: Python 3 headers not found (Debian python3-dev); the Python module "
                 "bnorm is not built")
  return()
endif()
if(NOT Python3_NumPy_FOUND)
  message(STATUS "bnorm: ${Python3_EXECUTABLE} cannot import NumPy (Debian python3-numpy); the "
                 "Python module bnorm is not built")
  return()
endif()
# With Python3 found first, pybind11's config uses that interpreter (its FindPython mode).
find_package(pybind11 CONFIG QUIET)
if(NOT pybind11_FOUND)
  message(STATUS "bnorm: pybind11 not found (Debian pybind11-dev); the Python module bnorm is "
                 "not built")
  return()
endif()
set(BNORM_PYTHON_FOUND TRUE)
message(STATUS "bnorm: the Python module bnorm is built for ${Python3_EXECUTABLE} "
               "(Python ${Python3_VERSION}, NumPy ${Python3_NumPy_VERSION}, pybind11 ${pybind11_VERSION})")
