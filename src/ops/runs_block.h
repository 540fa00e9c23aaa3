// SPDX-License-Identifier: Apache-2.0
// Where a channels-first block of a BlockPlan starts, and the kernels' view of
// it: every channels-first driver (moments, normalize, the backward passes and
// their channel-resident forms) describes its blocks this one way.
#ifndef BNORM_SRC_OPS_RUNS_BLOCK_H_
#define BNORM_SRC_OPS_RUNS_BLOCK_H_

#include <cstddef>

#include "bnorm/dtype.hpp"
#include "bnorm/geometry.hpp"
#include "dispatch/views.h"
#include "src/parallel/blocks.h"

namespace bnorm {

// Bytes from the tensor's start to the block's first element (of `type`).
inline size_t RunsBlockOffset(const Geometry& g, const Block& b, DType type) {
  return (g.RowOffset(b.row) + b.channel * g.ChannelStride() + b.inner_begin) * SizeOf(type);
}

// The block of the tensor at `base` as the channels-first kernels read it.
inline dispatch::RunsView RunsBlockView(const void* base, DType type, const Geometry& g,
                                        const Block& b) {
  return dispatch::RunsView{static_cast<const char*>(base) + RunsBlockOffset(g, b, type),
                            type,
                            b.channels,
                            g.ChannelStride(),
                            b.rows,
                            b.inner_count,
                            g.RowStride()};
}

}  // namespace bnorm

#endif  // BNORM_SRC_OPS_RUNS_BLOCK_H_
