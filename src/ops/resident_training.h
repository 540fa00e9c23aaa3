// SPDX-License-Identifier: Apache-2.0
// The channels-first training forward that reads x from memory once: a
// channel's statistics pull it into the cache, and its normalize reads it
// from there right after (DESIGN.md, "Memory traffic and the roof": a group
// that fits in L2 is read once). Two volumes of traffic instead of three.
#ifndef BNORM_SRC_OPS_RESIDENT_TRAINING_H_
#define BNORM_SRC_OPS_RESIDENT_TRAINING_H_

#include <cstddef>

#include "bnorm/dtype.hpp"
#include "bnorm/execution.hpp"
#include "bnorm/geometry.hpp"

namespace bnorm {

// Whether ResidentTraining pays for a tensor of `type` laid out as `g`:
// channels-first, too large to stay cached between two passes, and one channel
// small enough to stay cached between its statistics and its normalize (in
// L2, or in the core's share of the last-level cache).
bool ChannelResident(DType type, const Geometry& g);
// The same for one group of g (a ghost batch's view of it): g beyond the
// caches, and one channel of the group small enough to stay cached.
bool ChannelResident(DType type, const Geometry& g, const Geometry& group);

// The per-channel coefficients of a training forward, y = ((x - hi) - lo) *
// scale + shift, from the channel's batch mean and biased variance. Called
// once per channel, from several threads at once for different channels.
class ChannelFold {
 public:
  virtual ~ChannelFold() = default;
  virtual void operator()(size_t channel, double mean, double variance, float* hi, float* lo,
                          float* scale, float* shift) const = 0;
};

// BatchMoments, then `fold` per channel, then Normalize with those
// coefficients, channel by channel (or block by block of several small
// channels) so that each channel is read from memory once; y is written with
// streaming stores. mean/variance are bitwise BatchMoments', y bitwise
// Normalize's with the coefficients, which are left in hi, lo, scale and shift
// (g.channels each), for any thread count. y may equal x. The caller checks
// the arguments (the layer's training step has).
void ResidentTraining(const void* x, void* y, DType type, const Geometry& g,
                      const ChannelFold& fold, double* mean, double* variance, float* hi, float* lo,
                      float* scale, float* shift, const Execution& exec);

}  // namespace bnorm

#endif  // BNORM_SRC_OPS_RESIDENT_TRAINING_H_
