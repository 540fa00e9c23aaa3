// Normalize: the dispatched kernel over thread-independent blocks. No heap
// allocation: inference engines call this in their hot path.
#include "bnorm/kernels.hpp"
#include "bnorm/targets.hpp"
#include "dispatch/kernels.h"
#include "src/blocks.h"

namespace bnorm {

void Normalize(const float* x, float* y, const Geometry& g, const NormalizeParams& p,
               const Execution& exec) {
  ApplyTargetFromEnvironment();
  const BlockPlan plan(g);
  if (g.channels_last()) {
    ForEachBlock(plan.size(), g.elements(), exec, [&](size_t i) {
      const Block b = plan[i];
      const size_t offset = g.RowOffset(b.row);
      dispatch::NormalizeRows(x + offset, y + offset, b.rows, g.channels, g.channels,
                              p.mean_hi, p.mean_lo, p.scale, p.shift);
    });
    return;
  }
  ForEachBlock(plan.size(), g.elements(), exec, [&](size_t i) {
    const Block b = plan[i];
    const size_t offset = g.RowOffset(b.row) + b.channel * g.inner + b.inner_begin;
    const size_t c = b.channel;
    dispatch::NormalizeRuns(x + offset, y + offset, b.rows, b.inner_count, g.row_elements(),
                            p.mean_hi[c], p.mean_lo[c], p.scale[c], p.shift[c]);
  });
}

}  // namespace bnorm
