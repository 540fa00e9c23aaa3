// Normalize: the dispatched kernel over thread-independent blocks. No heap
// allocation: inference engines call this in their hot path.
#include "bnorm/kernels.hpp"
#include "bnorm/targets.hpp"
#include "dispatch/kernels.h"
#include "src/blocks.h"

namespace bnorm {

void Normalize(const float* x, float* y, const Geometry& g, const NormalizeParams& p,
               const Execution& exec) {
  Normalize(x, y, DType::kFloat32, g, p, exec);
}

void Normalize(const void* x, void* y, DType type, const Geometry& g, const NormalizeParams& p,
               const Execution& exec) {
  const char* in = static_cast<const char*>(x);
  char* out = static_cast<char*>(y);
  const size_t size = SizeOf(type);
  ApplyTargetFromEnvironment();
  const BlockPlan plan(g);
  if (g.channels_last()) {
    ForEachBlock(plan.size(), g.elements(), exec, [&](size_t i) {
      const Block b = plan[i];
      const size_t offset = g.RowOffset(b.row) * size;
      dispatch::NormalizeRows(in + offset, out + offset, type, p.activation, b.rows, g.channels,
                              g.RowStride(), p.mean_hi, p.mean_lo, p.scale, p.shift);
    });
    return;
  }
  ForEachBlock(plan.size(), g.elements(), exec, [&](size_t i) {
    const Block b = plan[i];
    const size_t offset =
        (g.RowOffset(b.row) + b.channel * g.ChannelStride() + b.inner_begin) * size;
    const size_t c = b.channel;
    dispatch::NormalizeRuns(in + offset, out + offset, type, p.activation, b.rows, b.inner_count,
                            g.RowStride(), p.mean_hi[c], p.mean_lo == nullptr ? 0.0f : p.mean_lo[c], p.scale[c],
                            p.shift[c]);
  });
}

}  // namespace bnorm
