// SPDX-License-Identifier: Apache-2.0
// bnorm-bench's float64 references: the kernels' (moments, normalize, backward reduce and data)
// and the Keras oracle for the layer's training and backward, timed on a prefix of x for large
// tensors and scaled to the whole tensor (their cost is linear in the values), and the checks of
// bnorm's inference output (relu(bn(x) + z) with a residual) and dx against them.
#ifndef BNORM_TOOLS_BENCH_REFERENCE_H_
#define BNORM_TOOLS_BENCH_REFERENCE_H_

#include <optional>
#include <string>
#include <vector>

#include "tools/bench/problem.h"

namespace bnorm {
namespace bench {

struct ReferenceTiming {
  std::vector<std::string> notes;  // how it was timed, or why not
  // Unset when skipped.
  std::optional<double> inference_seconds, training_seconds, backward_seconds;
  std::vector<double> inference_y;  // the slice's inference output
  // The kernels' slice: a dense prefix of memory.
  Geometry slice;
  // The layer's backward: the Keras oracle's dx of the leading samples (empty when
  // it cannot be compared: with renorm and training rows, dx depends on the moving
  // statistics that every training call updates).
  std::vector<double> backward_dx;
};

// The references of the modes asked for. They read floats: the prefixes of x and dy are widened
// first, untimed.
ReferenceTiming TimeReference(const Problem& p, bool inference, bool training, bool backward);

// Max |y - reference| over the slice (in *max_abs_diff), relative to 1 + max |reference|.
double InferenceError(const Problem& p, const ReferenceTiming& r, double* max_abs_diff);

// How far dx may be from the reference, relative to the largest |dx| of the reference's:
// kGradientTolerance for float32, plus the rounding of a 16-bit dx.
double BackwardTolerance(DType dtype);

// Max |dx - reference| over the slice (in *max_abs_diff), relative to the slice's max
// |reference|, or nothing when there is no reference to compare with. The kernels' reference
// is reference::BackwardData with bnorm's own mean and constants (those of the last
// KernelBackward); the layer's is the Keras oracle's dx.
std::optional<double> BackwardError(const Problem& p, const ReferenceTiming& r,
                                    double* max_abs_diff);

}  // namespace bench
}  // namespace bnorm

#endif  // BNORM_TOOLS_BENCH_REFERENCE_H_
