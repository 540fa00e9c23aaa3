// SPDX-License-Identifier: Apache-2.0
// bnorm-verify's matrix: the shapes (chosen for the kernels' edges), layouts and value
// distributions every kernel runs on every target.
#ifndef BNORM_TOOLS_VERIFY_MATRIX_H_
#define BNORM_TOOLS_VERIFY_MATRIX_H_

#include <cstddef>

#include "tools/common/random.h"

namespace bnorm {
namespace verify {

enum Layout { kChannelsLast = 0, kChannelsFirst = 1 };
inline const char* const kLayoutNames[] = {"channels-last", "channels-first"};
enum Kernel {
  kMoments = 0,
  kNormalize = 1,
  kNormalizeAdd = 2,  // Normalize with a residual (NormalizeParams::residual)
  kBackwardReduce = 3,
  kBackwardData = 4
};
inline constexpr int kKernelCount = 5;
inline constexpr int kLayoutCount = 2;
inline const char* const kKernelNames[] = {"moments", "normalize", "norm-add", "bwd-reduce",
                                           "bwd-data"};

struct Shape {
  Layout layout;
  size_t outer, channels, inner;
  bool quick;  // part of the --quick matrix
};

// Sizes chosen for the kernels' edges: 1, 3 and 17 values per channel;
// channel counts that leave tails on every vector width (3, 5, 17, 130,
// 1000); channels-first runs shorter than a vector, strided runs, and runs
// longer than a work block (2^16 values) that split into pieces; 1000003
// values per channel; and tensors of 2^18 values and more, where the kernels
// go parallel, so that thread-count independence is really exercised.
inline const Shape kShapes[] = {
    {kChannelsLast, 1, 5, 1, true},          // 1 value per channel
    {kChannelsLast, 3, 17, 1, true},         // 3 per channel
    {kChannelsLast, 17, 3, 1, true},         // 17 per channel
    {kChannelsLast, 64, 64, 1, true},        // NHWC 1x8x8x64
    {kChannelsLast, 1000, 130, 1, true},     // channel tails
    {kChannelsLast, 4096, 64, 1, true},      // 2^18 values: parallel
    {kChannelsLast, 100003, 1, 1, true},     // one channel
    {kChannelsLast, 777, 1000, 1, false},    // many channels, parallel
    {kChannelsLast, 25088, 64, 1, false},    // NHWC 8x56x56x64
    {kChannelsLast, 1000003, 3, 1, false},   // 1000003 per channel
    {kChannelsFirst, 1, 5, 3, true},         // 3 per channel
    {kChannelsFirst, 1, 7, 17, true},        // 17 per channel
    {kChannelsFirst, 3, 4, 17, true},        // strided runs
    {kChannelsFirst, 2, 64, 49, true},       // NCHW 2x64x7x7
    {kChannelsFirst, 100003, 2, 2, true},    // many 2-value runs, parallel
    {kChannelsFirst, 32, 64, 196, true},     // NCHW 32x64x14x14, parallel
    {kChannelsFirst, 8, 64, 3136, false},    // NCHW 8x64x56x56
    {kChannelsFirst, 5, 3, 70001, false},    // runs split into pieces
    {kChannelsFirst, 1, 2, 1000003, false},  // 1000003 per channel
};

// The normal distributions shift each channel's mean by up to +-std and widen
// its std by up to 3/8, so a kernel that mixes up channels cannot pass. The
// uniform distribution is exactly [0, 1) in every channel.
struct Distribution {
  const char* name;
  bool uniform;
  double mean;
  double std;
};

inline const Distribution kDistributions[] = {
    {"normal(0,1)", false, 0.0, 1.0},       {"normal(1e4,1)", false, 1e4, 1.0},
    {"normal(1e4,1e-2)", false, 1e4, 1e-2}, {"normal(-3,1e3)", false, -3.0, 1e3},
    {"uniform[0,1)", true, 0.0, 0.0},
};

// One value of `channel` drawn from `dist`.
inline float Sample(const Distribution& dist, size_t channel, testing::Random* rng) {
  if (dist.uniform) return static_cast<float>(rng->Uniform());
  const double shift = 0.25 * (static_cast<double>(channel % 9) - 4.0);
  const double widen = 1.0 + 0.125 * static_cast<double>(channel % 4);
  return static_cast<float>(dist.mean + dist.std * shift + dist.std * widen * rng->Normal());
}

}  // namespace verify
}  // namespace bnorm

#endif  // BNORM_TOOLS_VERIFY_MATRIX_H_
