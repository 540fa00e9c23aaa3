// SPDX-License-Identifier: Apache-2.0
// The channel-resident training forward (see resident_training.h).
#include "src/ops/resident_training.h"

#include <algorithm>

#include "bnorm/targets.hpp"
#include "dispatch/moments.h"
#include "dispatch/normalize.h"
#include "src/ops/runs_block.h"
#include "src/ops/runs_merge.h"
#include "src/ops/streaming.h"
#include "src/parallel/blocks.h"
#include "src/parallel/partials.h"
#include "src/plan/caches.h"

namespace bnorm {

bool ChannelResident(DType type, const Geometry& g) { return ChannelResident(type, g, g); }

bool ChannelResident(DType type, const Geometry& g, const Geometry& group) {
  if (group.channels_last() || group.elements() == 0 || !ExceedsCaches(type, g)) return false;
  return group.reduced() * SizeOf(type) <= ResidentChannelBytes();
}

void ResidentTraining(const void* x, void* y, DType type, const Geometry& g,
                      const ChannelFold& fold, double* mean, double* variance, float* hi, float* lo,
                      float* scale, float* shift, const Execution& exec) {
  const char* in = static_cast<const char*>(x);
  char* out = static_cast<char*>(y);
  ApplyTargetFromEnvironment();
  const BlockPlan plan(g);
  const size_t C = g.channels;
  const size_t per_channel = plan.per_channel();
  // BatchMoments' partials, in its layout, so the merge is the same code.
  Partials partials(2 * C * per_channel + per_channel);
  double* part_mean = partials.get();
  double* part_m2 = part_mean + C * per_channel;
  double* counts = part_m2 + C * per_channel;
  for (size_t k = 0; k < per_channel; ++k) {
    counts[k] = static_cast<double>(plan[k].rows * plan[k].inner_count);
  }
  const auto view = [&](const Block& b) { return RunsBlockView(x, type, g, b); };

  // A unit is one channel's blocks, or one block of several whole channels.
  const size_t blocks_per_unit = per_channel;
  const size_t units = plan.size() / blocks_per_unit;
  ForEachBlock(units, g.elements(), exec, [&](size_t u) {
    const size_t first_block = u * blocks_per_unit;
    for (size_t k = 0; k < blocks_per_unit; ++k) {
      const size_t i = first_block + k;
      const Block b = plan[i];
      const size_t slot = b.channel * per_channel + i % per_channel;
      dispatch::MomentsRuns(view(b), part_mean + slot, part_m2 + slot, /*out_stride=*/1,
                            /*from_memory=*/true);
    }
    const Block unit = plan[first_block];
    for (size_t c = unit.channel; c < unit.channel + unit.channels; ++c) {
      MergeChannelBlocks(part_mean, part_m2, counts, per_channel, c, &mean[c], &variance[c]);
      fold(c, mean[c], variance[c], &hi[c], &lo[c], &scale[c], &shift[c]);
    }
    // While this unit normalizes from cache, memory would idle: block k of
    // the next unit (the same size as block k here) comes into L2 meanwhile.
    // (The next unit may be another thread's; then it is warmed for it.)
    for (size_t k = 0; k < blocks_per_unit; ++k) {
      const Block b = plan[first_block + k];
      const dispatch::RunsView v = view(b);
      const size_t c = b.channel;
      const dispatch::NormalizeCoefficients coefficients{hi + c, lo + c, scale + c, shift + c,
                                                         Activation::kNone};
      const dispatch::RunsView next =
          u + 1 < units ? view(plan[first_block + blocks_per_unit + k]) : dispatch::RunsView{};
      dispatch::NormalizeRuns(v, /*z=*/nullptr, out + (static_cast<const char*>(v.x) - in),
                              coefficients, /*stream=*/true, next.x != nullptr ? &next : nullptr);
    }
  });
}

}  // namespace bnorm
