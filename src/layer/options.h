// SPDX-License-Identifier: Apache-2.0
// The Keras rules about BatchNormalization's arguments: which combinations are
// valid, and which convention (fused or not) a layer resolves to at build.
#ifndef BNORM_SRC_OPTIONS_H_
#define BNORM_SRC_OPTIONS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "bnorm/batch_norm.hpp"

namespace bnorm {

// TensorFlow's fused kernel raises epsilon to at least this, silently.
constexpr double kFusedMinEpsilon = 1.001e-5;

// Every check that does not need the input shape (the constructor's).
// Throws bnorm::Error naming the argument, the value and the expectation.
void ValidateOptions(const Options& options);

// The checks of Keras' build(): `axes` are the canonical feature axes of an
// input of rank `rank`. Returns whether the layer uses the fused convention
// (kAuto resolves as Keras does); throws for fused=kTrue on an unsupported
// rank or axis and for axis 0 with ghost batches.
bool ResolveAtBuild(const Options& options, const std::vector<int>& axes, size_t rank);

// The epsilon the math uses: fused raises it to kFusedMinEpsilon.
double EffectiveEpsilon(const Options& options, bool fused);

// Shortest text that reads back as the same float ("0.99", "nan", "inf").
std::string FormatFloat(float value);

}  // namespace bnorm

#endif  // BNORM_SRC_OPTIONS_H_
