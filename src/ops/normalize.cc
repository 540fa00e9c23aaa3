// SPDX-License-Identifier: Apache-2.0
// Normalize: the dispatched kernel over thread-independent blocks. No heap
// allocation: inference engines call this in their hot path.
#include "dispatch/normalize.h"

#include <cstdint>
#include <string>

#include "bnorm/error.hpp"
#include "bnorm/kernels.hpp"
#include "bnorm/targets.hpp"
#include "src/ops/runs_block.h"
#include "src/ops/streaming.h"
#include "src/parallel/blocks.h"
#include "src/plan/checks.h"

namespace bnorm {
namespace {

// Everything is checked before the first write: a rejected call leaves y as it was.
void CheckArguments(const void* x, const void* y, DType type, const Geometry& g,
                    const NormalizeParams& p) {
  CheckTensorPresent("x", x, g.elements());
  CheckTensorPresent("y", y, g.elements());
  CheckPerChannelPresent("mean_hi", p.mean_hi, g.channels);
  CheckPerChannelPresent("scale", p.scale, g.channels);
  CheckPerChannelPresent("shift", p.shift, g.channels);
  CheckAligned("x", x, type);
  CheckAligned("y", y, type);
  CheckInPlaceOrDisjoint(x, y, g.Extent() * SizeOf(type));
  if (p.residual != nullptr) {
    CheckAligned("residual", p.residual, type);
    CheckInPlaceOrDisjoint("residual", p.residual, "y", y, g.Extent() * SizeOf(type));
  }
}

}  // namespace

void Normalize(const float* x, float* y, const Geometry& g, const NormalizeParams& p,
               const Execution& exec) {
  Normalize(x, y, DType::kFloat32, g, p, exec);
}

void Normalize(const void* x, void* y, DType type, const Geometry& g, const NormalizeParams& p,
               const Execution& exec) {
  if (g.elements() == 0) return;
  CheckArguments(x, y, type, g, p);
  const char* in = static_cast<const char*>(x);
  char* out = static_cast<char*>(y);
  const size_t size = SizeOf(type);
  ApplyTargetFromEnvironment();
  // x and y, and the residual: the tensors the pass streams through.
  const bool stream = ExceedsCaches(type, g, p.residual == nullptr ? 2 : 3);
  const char* add = static_cast<const char*>(p.residual);
  const auto residual_at = [add](size_t offset) { return add == nullptr ? nullptr : add + offset; };
  if (g.channels_last()) {
    const BlockPlan plan(g);
    const dispatch::NormalizeCoefficients k{p.mean_hi, p.mean_lo, p.scale, p.shift, p.activation};
    ForEachBlock(plan.size(), g.elements(), exec, [&](size_t i) {
      const Block b = plan[i];
      const size_t offset = g.RowOffset(b.row) * size;
      dispatch::NormalizeRows({in + offset, type, b.rows, g.channels, g.RowStride()},
                              residual_at(offset), out + offset, k, stream);
    });
    return;
  }
  const ElementwisePlan plan(g);
  ForEachBlock(plan.size(), g.elements(), exec, [&](size_t i) {
    const Block b = plan[i];
    const size_t offset = RunsBlockOffset(g, b, type);
    const size_t c = b.channel;
    const dispatch::NormalizeCoefficients k{p.mean_hi + c,
                                            p.mean_lo == nullptr ? nullptr : p.mean_lo + c,
                                            p.scale + c, p.shift + c, p.activation};
    dispatch::NormalizeRuns(RunsBlockView(x, type, g, b), residual_at(offset), out + offset, k,
                            stream);
  });
}

}  // namespace bnorm
