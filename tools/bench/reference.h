// SPDX-License-Identifier: Apache-2.0
// bnorm-bench's float64 references: the kernels' (moments, normalize) and the Keras oracle for
// the layer's training, timed on a prefix of x for large tensors and scaled to the whole tensor
// (their cost is linear in the values), and the check of bnorm's inference output against it.
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
  std::optional<double> inference_seconds, training_seconds;
  std::vector<double> inference_y;  // the slice's inference output
};

// The references of the modes asked for. They read floats: the prefix of x is widened first,
// untimed.
ReferenceTiming TimeReference(const Problem& p, bool inference, bool training);

// Max |y - reference| over the slice (in *max_abs_diff), relative to 1 + max |reference|.
double InferenceError(const Problem& p, const ReferenceTiming& r, double* max_abs_diff);

}  // namespace bench
}  // namespace bnorm

#endif  // BNORM_TOOLS_BENCH_REFERENCE_H_
