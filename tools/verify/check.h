// SPDX-License-Identifier: Apache-2.0
// One case of bnorm-verify: a shape, a distribution and a base-pointer offset, with its seeded
// data and float64 reference results, checked on a target (moments, normalize and the backward's
// reduce and data passes; one thread against all threads bit for bit, writes outside the output).
#ifndef BNORM_TOOLS_VERIFY_CHECK_H_
#define BNORM_TOOLS_VERIFY_CHECK_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bnorm/geometry.hpp"
#include "tools/common/buffer.h"
#include "tools/verify/matrix.h"
#include "tools/verify/report.h"

namespace bnorm {
namespace verify {

struct Case {
  Shape shape;
  Geometry g;
  const Distribution* dist;
  size_t offset;  // floats between a 64-byte boundary and x (and y)
  std::string name;
};

// `count` floats at a 64-byte boundary (tools/common/buffer.h); out of memory ends the run.
class Buffer {
 public:
  explicit Buffer(size_t count);
  float* get() const { return reinterpret_cast<float*>(bytes_.get()); }

 private:
  testing::AlignedBuffer bytes_;
};

class CaseRunner {
 public:
  CaseRunner(const Case& c, uint64_t seed, Report* report);

  // Checks the case on `target` (forced), recording into row `target_index` of the report.
  void Run(size_t target_index, const std::string& target);

 private:
  void CheckMoments(size_t t, const std::string& target);
  // kNormalize, or kNormalizeAdd with dy as the residual.
  void CheckNormalize(size_t t, const std::string& target, Kernel kernel);
  // check_backward.cc: S1, S2 and dx against the float64 reference.
  void PrepareBackward(uint64_t seed);
  void CheckBackwardReduce(size_t t, const std::string& target);
  void CheckBackwardData(size_t t, const std::string& target);
  // An output (y, dx) sits kGuard + offset floats into a buffer of GuardedSize() floats
  // that all start as a signalling-NaN pattern; the kernel must only touch the output.
  size_t GuardedSize() const;
  float* FillGuarded(const Buffer& buffer) const;
  void CheckGuards(const Buffer& buffer, Row* row, const std::string& target, const char* what,
                   const char* mode);

  const Case& c_;
  Report* report_;
  const size_t n_;
  const size_t C_;
  const Buffer x_buffer_;
  float* const x_;
  std::vector<double> ref_mean_, ref_var_, ref_y_;
  std::vector<float> hi_, lo_, scale_, shift_;
  // The backward: dy (at x's offset), the reference sums with their scales Σ|term|, the
  // data pass's float coefficients and its reference dx with each channel's max |dx|.
  const Buffer dy_buffer_;
  float* const dy_;
  std::vector<double> ref_s1_, ref_s2_, abs1_, abs2_, ref_dx_, dx_scale_;
  std::vector<float> k_, a_, b_;
};

// A per-case seed, so a case's data does not depend on which cases ran
// before it (--quick and the full matrix share their common cases).
uint64_t CaseSeed(uint64_t seed, size_t shape, size_t dist);

}  // namespace verify
}  // namespace bnorm

#endif  // BNORM_TOOLS_VERIFY_CHECK_H_
