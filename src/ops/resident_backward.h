// SPDX-License-Identifier: Apache-2.0
// The channels-first training backward that reads x and dy from memory once: a
// channel's sums S1, S2 pull its x and dy into the cache, and its dx pass reads
// them from there right after (DESIGN.md, "Memory traffic and the roof"). Three
// volumes of traffic instead of five.
#ifndef BNORM_SRC_OPS_RESIDENT_BACKWARD_H_
#define BNORM_SRC_OPS_RESIDENT_BACKWARD_H_

#include <cstddef>

#include "bnorm/backward.hpp"
#include "bnorm/dtype.hpp"
#include "bnorm/execution.hpp"
#include "bnorm/geometry.hpp"

namespace bnorm {

// Whether ResidentBackward pays for x, dy and dx of `type` laid out as `g`:
// channels-first, too large to stay cached between two passes, and one
// channel's x and dy small enough to stay cached between its sums and its dx.
bool ChannelResidentBackward(DType type, const Geometry& g);

// The data pass's k, a and b of one channel from its sums S1 = Σdy and
// S2 = Σdy·(x − μ). Called once per channel, from several threads at once for
// different channels.
class ChannelConstants {
 public:
  virtual ~ChannelConstants() = default;
  virtual void operator()(size_t channel, double sum_dy, double sum_dy_xmu, float* k, float* a,
                          float* b) const = 0;
};

// BackwardReduce, then `constants` per channel, then BackwardData with them,
// channel by channel (or block by block of several small channels). The sums
// are bitwise BackwardReduce's, dx bitwise BackwardData's with the constants,
// which are left in k, a and b (g.channels each), for any thread count. dx may
// be dy. The mask of `params` applies as in BackwardReduce. The caller checks
// the arguments (the layer's Backward has).
void ResidentBackward(const void* x, const void* dy, void* dx, DType type, const Geometry& g,
                      const BackwardReduceParams& params, const ChannelConstants& constants,
                      double* sum_dy, double* sum_dy_xmu, float* k, float* a, float* b,
                      const Execution& exec);

}  // namespace bnorm

#endif  // BNORM_SRC_OPS_RESIDENT_BACKWARD_H_
