// SPDX-License-Identifier: Apache-2.0
// Option validation and the fused resolution of Keras' BatchNormalizationBase
// (__init__, _raise_if_fused_cannot_be_used and build).
#include "src/layer/options.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

#include "bnorm/error.hpp"
#include "src/plan/format.h"

namespace bnorm {
namespace {

// Every rule here is Keras' own validation of its arguments.
[[noreturn]] void Invalid(const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, message);
}

// Keras and bnorm both treat momentum as the weight of the old value; outside
// [0, 1] (or NaN) the moving statistics diverge or are poisoned for good.
void CheckUnitInterval(const char* name, float value) {
  if (!(value >= 0.0f && value <= 1.0f)) {
    Invalid(std::string(name) + " is " + FormatFloat(value) + "; expected a value in [0, 1]");
  }
}

void CheckClipping(const RenormClipping& clipping) {
  const auto check_nan = [](const char* key, const std::optional<float>& value) {
    if (value && std::isnan(*value)) {
      Invalid(std::string("renorm_clipping['") + key + "'] is nan; expected a number");
    }
  };
  check_nan("rmax", clipping.rmax);
  check_nan("rmin", clipping.rmin);
  check_nan("dmax", clipping.dmax);
  if (clipping.dmax && *clipping.dmax < 0.0f) {
    Invalid("renorm_clipping['dmax'] is " + FormatFloat(*clipping.dmax) +
            "; expected a value >= 0 (d is clipped to [-dmax, dmax])");
  }
  if (clipping.rmin && clipping.rmax && *clipping.rmin > *clipping.rmax) {
    Invalid("renorm_clipping['rmin'] is " + FormatFloat(*clipping.rmin) + ", above rmax " +
            FormatFloat(*clipping.rmax) + "; expected rmin <= rmax");
  }
}

}  // namespace

RenormClipping RenormClipping::FromMap(const std::map<std::string, float>& clipping) {
  RenormClipping result;
  for (const auto& [key, value] : clipping) {
    if (key == "rmax") {
      result.rmax = value;
    } else if (key == "rmin") {
      result.rmin = value;
    } else if (key == "dmax") {
      result.dmax = value;
    } else {
      Invalid("renorm_clipping has the key '" + key + "'; expected only 'rmax', 'rmin' and 'dmax'");
    }
  }
  return result;
}

void ValidateOptions(const Options& options) {
  if (options.axis.empty()) Invalid("axis is an empty list; expected at least one axis");
  CheckUnitInterval("momentum", options.momentum);
  if (!(std::isfinite(options.epsilon) && options.epsilon > 0.0f)) {
    Invalid("epsilon is " + FormatFloat(options.epsilon) + "; expected a finite value > 0");
  }
  if (options.renorm) {
    CheckUnitInterval("renorm_momentum", options.renorm_momentum);
    CheckClipping(options.renorm_clipping);
  }
  if (options.virtual_batch_size && *options.virtual_batch_size <= 0) {
    Invalid("virtual_batch_size is " + std::to_string(*options.virtual_batch_size) +
            "; expected a value > 0");
  }
  if (options.virtual_batch_size && options.adjustment) {
    Invalid("adjustment is set together with virtual_batch_size " +
            std::to_string(*options.virtual_batch_size) +
            "; Keras does not allow an adjustment with ghost batches");
  }
  if (options.synchronized_gradients && !options.synchronized) {
    Invalid("synchronized_gradients is set without synchronized; expected synchronized=true");
  }
  if (options.fused != Fused::kTrue) return;
  // Keras' _raise_if_fused_cannot_be_used: the fused kernel has none of these.
  if (options.renorm) Invalid("fused is kTrue together with renorm; expected renorm=false");
  if (options.synchronized) {
    Invalid("fused is kTrue together with synchronized; expected synchronized=false");
  }
  if (options.virtual_batch_size) {
    Invalid("fused is kTrue together with virtual_batch_size " +
            std::to_string(*options.virtual_batch_size) + "; expected no virtual_batch_size");
  }
  if (options.adjustment) {
    Invalid("fused is kTrue together with an adjustment; expected no adjustment");
  }
  if (options.axis.size() > 1) {
    Invalid("fused is kTrue with axis " + FormatList(options.axis) +
            "; the fused kernel needs a single axis, 1 or the last");
  }
}

bool ResolveAtBuild(const Options& options, const std::vector<int>& axes, size_t rank) {
  if (options.virtual_batch_size && axes.front() == 0) {
    Invalid("axis " + FormatList(axes) + " includes the batch axis 0 while virtual_batch_size is " +
            std::to_string(*options.virtual_batch_size) +
            "; ghost batches split axis 0, so it must not be a feature axis");
  }
  if (options.fused == Fused::kFalse) return false;
  // The fused kernel covers NCHW/NHWC (rank 4) and NCDHW/NDHWC (rank 5) only.
  const bool rank_ok = rank == 4 || rank == 5;
  const bool axis_ok = axes.size() == 1 && (axes[0] == 1 || axes[0] == static_cast<int>(rank) - 1);
  // Keras' synchronized layer never takes the fused kernel.
  const bool others_ok = !options.renorm && !options.virtual_batch_size && !options.adjustment &&
                         !options.synchronized;
  if (options.fused == Fused::kAuto) return rank_ok && axis_ok && others_ok;
  if (!rank_ok) {
    Invalid("fused is kTrue but the input has rank " + std::to_string(rank) +
            "; the fused kernel needs rank 4 or 5");
  }
  if (!axis_ok) {
    Invalid("fused is kTrue but axis is " + FormatList(options.axis) + " for an input of rank " +
            std::to_string(rank) + "; the fused kernel needs axis 1 or " +
            std::to_string(rank - 1));
  }
  return true;
}

double EffectiveEpsilon(const Options& options, bool fused) {
  const double epsilon = options.epsilon;
  return fused && epsilon < kFusedMinEpsilon ? kFusedMinEpsilon : epsilon;
}

std::string FormatFloat(float value) {
  if (std::isnan(value)) return "nan";
  // Nine significant digits always read back; fewer usually do ("0.99").
  for (int digits = 1;; ++digits) {
    std::ostringstream text;
    text.precision(digits);
    text << value;
    if (digits == 9 || std::strtof(text.str().c_str(), nullptr) == value) return text.str();
  }
}

}  // namespace bnorm
