// SPDX-License-Identifier: Apache-2.0
// BatchMoments: per-block partial moments from the dispatched kernels, merged
// in block order with Chan's formula in double.
#include "dispatch/moments.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>

#include "bnorm/error.hpp"
#include "bnorm/kernels.hpp"
#include "bnorm/targets.hpp"
#include "dispatch/chan_merge.h"
#include "src/ops/runs_block.h"
#include "src/ops/runs_merge.h"
#include "src/ops/streaming.h"
#include "src/parallel/blocks.h"
#include "src/parallel/partials.h"
#include "src/plan/checks.h"

namespace bnorm {

void BatchMoments(const float* x, const Geometry& g, double* mean, double* variance,
                  const Execution& exec) {
  BatchMoments(x, DType::kFloat32, g, mean, variance, exec);
}

void BatchMoments(const void* x, DType type, const Geometry& g, double* mean, double* variance,
                  const Execution& exec) {
  CheckHasValues(g, "moments need");
  CheckTensorPresent("x", x, g.elements());
  CheckAligned("x", x, type);
  CheckPerChannelPresent("mean", mean, g.channels);
  CheckPerChannelPresent("variance", variance, g.channels);
  const char* bytes = static_cast<const char*>(x);
  const size_t size = SizeOf(type);
  ApplyTargetFromEnvironment();
  const BlockPlan plan(g);
  const size_t C = g.channels;
  if (g.channels_last()) {
    // Per block: C means then C M2s.
    Partials partials(plan.size() * 2 * C);
    ForEachBlock(plan.size(), g.elements(), exec, [&](size_t i) {
      const Block b = plan[i];
      double* part = partials.get() + i * 2 * C;
      dispatch::MomentsRows({bytes + g.RowOffset(b.row) * size, type, b.rows, C, g.RowStride()},
                            part, part + C);
    });
    // The blocks merge in block order (Chan's formula), in parallel over groups
    // of channels: each channel's result is the same for any thread count.
    const size_t groups = (C + kMergeChannels - 1) / kMergeChannels;
    ForEachBlock(groups, g.elements(), exec, [&](size_t group) {
      const size_t c0 = group * kMergeChannels;
      const size_t c1 = std::min(C, c0 + kMergeChannels);
      std::copy(partials.get() + c0, partials.get() + c1, mean + c0);
      double* m2 = partials.get() + C;  // block 0's M2s hold the running M2s
      double count = static_cast<double>(plan[0].rows);
      for (size_t i = 1; i < plan.size(); ++i) {
        const double rows = static_cast<double>(plan[i].rows);
        const double* part = partials.get() + i * 2 * C;
        for (size_t c = c0; c < c1; ++c) {
          ChanMerge(count, &mean[c], &m2[c], rows, part[c], part[C + c]);
        }
        count += rows;
      }
      for (size_t c = c0; c < c1; ++c) {
        const double v = m2[c] / count;
        variance[c] = v < 0.0 ? 0.0 : v;
      }
    });
    return;
  }
  // Channels-first: one (mean, M2) per channel and block, at c * per_channel
  // plus the block's place among its channel's blocks (a block holding several
  // channels is its channels' only block).
  const size_t per_channel = plan.per_channel();
  Partials partials(2 * C * per_channel + per_channel);
  double* part_mean = partials.get();
  double* part_m2 = part_mean + C * per_channel;
  double* counts = part_m2 + C * per_channel;
  // As the training forward sees it (x and y): x alone a little over half the
  // last-level cache is not kept there (64x2048x7x7, 26 MB of 32: 1.6x the
  // time without prefetch).
  const bool from_memory = ExceedsCaches(type, g);
  const ReductionTiles tiles(plan, g, from_memory);
  ForEachBlock(tiles.size(), g.elements(), exec, [&](size_t i) {
    const size_t slot = tiles.slot(i);
    dispatch::MomentsRuns(RunsBlockView(x, type, g, tiles[i]), part_mean + slot, part_m2 + slot,
                          tiles.out_stride(), from_memory);
  });
  // Every channel splits into blocks the same way: channel 0's give the counts.
  for (size_t k = 0; k < per_channel; ++k) {
    counts[k] = static_cast<double>(plan[k].rows * plan[k].inner_count);
  }
  for (size_t c = 0; c < C; ++c) {
    MergeChannelBlocks(part_mean, part_m2, counts, per_channel, c, &mean[c], &variance[c]);
  }
}

}  // namespace bnorm
