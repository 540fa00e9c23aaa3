// SPDX-License-Identifier: Apache-2.0
// BackwardReduce and BackwardData: the dispatched backward kernels over
// thread-independent blocks. The reduction's per-block sums are added in
// block order in double, so results do not depend on the thread count; the
// data pass allocates nothing (engines call it in their hot path).
#include "bnorm/backward.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "bnorm/error.hpp"
#include "bnorm/targets.hpp"
#include "dispatch/backward.h"
#include "src/ops/runs_block.h"
#include "src/ops/runs_merge.h"
#include "src/ops/streaming.h"
#include "src/parallel/blocks.h"
#include "src/parallel/partials.h"
#include "src/plan/checks.h"

namespace bnorm {
namespace {

// The inputs both passes read. Everything is checked before the first write:
// a rejected call leaves its outputs as they were.
void CheckInputs(const void* x, const void* dy, DType type, const Geometry& g, const float* mean_hi,
                 const float* mean_lo, Activation activation, const void* y) {
  CheckTensorPresent("x", x, g.elements());
  CheckTensorPresent("dy", dy, g.elements());
  CheckPerChannelPresent("mean_hi", mean_hi, g.channels);
  CheckPerChannelPresent("mean_lo", mean_lo, g.channels);
  if (activation != Activation::kNone && activation != Activation::kRelu &&
      activation != Activation::kRelu6) {
    throw Error(ErrorCode::kInvalidArgument, "activation " +
                                                 std::to_string(static_cast<int>(activation)) +
                                                 " is not one of none, relu, relu6");
  }
  if (activation != Activation::kNone && y == nullptr) {
    throw Error(ErrorCode::kNullPointer, std::string("y is null; the ") +
                                             (activation == Activation::kRelu ? "relu" : "relu6") +
                                             " mask reads the forward's output, " +
                                             std::to_string(g.elements()) + " values");
  }
  CheckAligned("x", x, type);
  CheckAligned("dy", dy, type);
  if (y != nullptr) CheckAligned("y", y, type);
}

// dy and y of a block `offset` bytes into the tensors, with its channels' means.
dispatch::BackwardOperands Operands(const char* dy, const char* y, size_t offset,
                                    Activation activation, const float* mean_hi,
                                    const float* mean_lo) {
  dispatch::BackwardOperands in;
  in.dy = dy + offset;
  in.y = activation == Activation::kNone ? nullptr : y + offset;
  in.mask = activation;
  in.mean_hi = mean_hi;
  in.mean_lo = mean_lo;
  return in;
}

}  // namespace

void BackwardReduce(const void* x, const void* dy, DType type, const Geometry& g,
                    const BackwardReduceParams& p, double* sum_dy, double* sum_dy_xmu,
                    const Execution& exec) {
  const size_t C = g.channels;
  if (C == 0) return;
  CheckPerChannelPresent("sum_dy", sum_dy, C);
  CheckPerChannelPresent("sum_dy_xmu", sum_dy_xmu, C);
  const uintptr_t s1 = reinterpret_cast<uintptr_t>(sum_dy),
                  s2 = reinterpret_cast<uintptr_t>(sum_dy_xmu);
  if ((s1 < s2 ? s2 - s1 : s1 - s2) < C * sizeof(double)) {
    throw Error(ErrorCode::kInvalidArgument,
                "sum_dy and sum_dy_xmu overlap; expected two disjoint arrays of " +
                    std::to_string(C) + " values");
  }
  if (g.reduced() == 0) {  // an empty batch: nothing to sum
    std::fill(sum_dy, sum_dy + C, 0.0);
    std::fill(sum_dy_xmu, sum_dy_xmu + C, 0.0);
    return;
  }
  CheckInputs(x, dy, type, g, p.mean_hi, p.mean_lo, p.activation, p.y);
  const char* xb = static_cast<const char*>(x);
  const char* dyb = static_cast<const char*>(dy);
  const char* yb = static_cast<const char*>(p.y);
  const size_t size = SizeOf(type);
  ApplyTargetFromEnvironment();
  const BlockPlan plan(g);
  const bool from_memory = ExceedsCaches(type, g, /*tensors=*/3);  // x, dy and dx
  if (g.channels_last()) {
    // Per block: C sums of g, then C sums of g·(x − μ).
    Partials partials(plan.size() * 2 * C);
    ForEachBlock(plan.size(), g.elements(), exec, [&](size_t i) {
      const Block b = plan[i];
      double* part = partials.get() + i * 2 * C;
      const size_t offset = g.RowOffset(b.row) * size;
      dispatch::BackwardReduceRows({xb + offset, type, b.rows, C, g.RowStride()},
                                   Operands(dyb, yb, offset, p.activation, p.mean_hi, p.mean_lo),
                                   dispatch::BackwardSums{part, part + C}, from_memory);
    });
    // Blocks add up in block order, in parallel over groups of channels: each
    // channel's sums are the same for any thread count.
    const size_t groups = (C + kMergeChannels - 1) / kMergeChannels;
    ForEachBlock(groups, g.elements(), exec, [&](size_t group) {
      const size_t c0 = group * kMergeChannels;
      const size_t c1 = std::min(C, c0 + kMergeChannels);
      std::copy(partials.get() + c0, partials.get() + c1, sum_dy + c0);
      std::copy(partials.get() + C + c0, partials.get() + C + c1, sum_dy_xmu + c0);
      for (size_t i = 1; i < plan.size(); ++i) {
        const double* part = partials.get() + i * 2 * C;
        for (size_t c = c0; c < c1; ++c) {
          sum_dy[c] += part[c];
          sum_dy_xmu[c] += part[C + c];
        }
      }
    });
    return;
  }
  // Channels-first: one pair of sums per channel and block, at c * per_channel
  // plus the block's place among its channel's blocks (a block holding several
  // channels is its channels' only block).
  const size_t per_channel = plan.per_channel();
  Partials partials(2 * C * per_channel);
  double* part_s1 = partials.get();
  double* part_s2 = part_s1 + C * per_channel;
  const ReductionTiles tiles(plan, g, from_memory);
  ForEachBlock(tiles.size(), g.elements(), exec, [&](size_t i) {
    const Block b = tiles[i];
    const size_t slot = tiles.slot(i);
    dispatch::BackwardReduceRuns(
        RunsBlockView(x, type, g, b),
        Operands(dyb, yb, RunsBlockOffset(g, b, type), p.activation, p.mean_hi + b.channel,
                 p.mean_lo + b.channel),
        dispatch::BackwardSums{part_s1 + slot, part_s2 + slot, tiles.out_stride()}, from_memory);
  });
  for (size_t c = 0; c < C; ++c) {
    SumChannelBlocks(part_s1, part_s2, per_channel, c, &sum_dy[c], &sum_dy_xmu[c]);
  }
}

void BackwardData(const void* x, const void* dy, void* dx, DType type, const Geometry& g,
                  const BackwardDataParams& p, const Execution& exec) {
  if (g.elements() == 0) return;
  CheckInputs(x, dy, type, g, p.mean_hi, p.mean_lo, p.activation, p.y);
  CheckTensorPresent("dx", dx, g.elements());
  CheckPerChannelPresent("k", p.k, g.channels);
  CheckPerChannelPresent("a", p.a, g.channels);
  CheckPerChannelPresent("b", p.b, g.channels);
  CheckAligned("dx", dx, type);
  // dx == dy (in place), dx == x or dx == y is fine: every element is read
  // before the same lane writes it. Any other overlap would read values
  // already overwritten.
  const size_t bytes = g.Extent() * SizeOf(type);
  const void* y = p.activation == Activation::kNone ? nullptr : p.y;
  CheckInPlaceOrDisjoint("dy", dy, "dx", dx, bytes);
  CheckInPlaceOrDisjoint("x", x, "dx", dx, bytes);
  if (y != nullptr) CheckInPlaceOrDisjoint("y", y, "dx", dx, bytes);
  const char* xb = static_cast<const char*>(x);
  const char* dyb = static_cast<const char*>(dy);
  const char* yb = static_cast<const char*>(y);
  char* out = static_cast<char*>(dx);
  const size_t size = SizeOf(type);
  ApplyTargetFromEnvironment();
  const bool stream = ExceedsCaches(type, g, /*tensors=*/3);
  if (g.channels_last()) {
    const BlockPlan plan(g);
    ForEachBlock(plan.size(), g.elements(), exec, [&](size_t i) {
      const Block b = plan[i];
      const size_t offset = g.RowOffset(b.row) * size;
      dispatch::BackwardDataRows({xb + offset, type, b.rows, g.channels, g.RowStride()},
                                 Operands(dyb, yb, offset, p.activation, p.mean_hi, p.mean_lo),
                                 dispatch::BackwardCoefficients{p.k, p.a, p.b}, out + offset,
                                 stream);
    });
    return;
  }
  const ElementwisePlan plan(g);
  ForEachBlock(plan.size(), g.elements(), exec, [&](size_t i) {
    const Block b = plan[i];
    const size_t offset = RunsBlockOffset(g, b, type);
    const size_t c = b.channel;
    dispatch::BackwardDataRuns(
        RunsBlockView(x, type, g, b),
        Operands(dyb, yb, offset, p.activation, p.mean_hi + c, p.mean_lo + c),
        dispatch::BackwardCoefficients{p.k + c, p.a + c, p.b + c}, out + offset, stream);
  });
}

}  // namespace bnorm
