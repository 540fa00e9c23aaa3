// SPDX-License-Identifier: Apache-2.0
// bnorm-bench's cache sweep and its shapes file (see sweep.h).
#include "tools/bench/sweep.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "tools/common/format.h"
#include "tools/common/parse.h"

namespace bnorm {
namespace bench {
namespace {

// One 56x56 image per sample before the batch grows: ResNet's largest BN activations after
// the stem, and the H x W of the tables.
constexpr double kImageValues = 56.0 * 56.0;
// How near the squarest image must come to its values before a flatter one is taken.
constexpr double kImageTolerance = 0.02;

constexpr int64_t kSweepChannels[] = {64, 256, 2048};

struct Size {
  size_t bytes;
  std::string label;
};

// `numerator`/`denominator` x the cache `name` of `bytes`: "1/4 L2", "8 LLC".
Size Scaled(size_t bytes, const char* name, size_t numerator, size_t denominator) {
  const std::string factor = denominator == 1
                                 ? std::to_string(numerator)
                                 : std::to_string(numerator) + "/" + std::to_string(denominator);
  return Size{bytes * numerator / denominator, factor + " " + name};
}

const char* LayoutName(const CaseSpec& spec) {
  return spec.layout == Layout::kNhwc ? "nhwc" : "nchw";
}

}  // namespace

size_t WorkingSetBytes(const std::vector<int64_t>& shape, DType dtype) {
  size_t values = 1;
  for (int64_t size : shape) values *= static_cast<size_t>(size);
  return 2 * values * SizeOf(dtype);
}

std::vector<int64_t> CacheSweepShape(size_t target_bytes, int64_t channels, DType dtype) {
  const double per_channel =
      static_cast<double>(target_bytes) /
      (2.0 * static_cast<double>(SizeOf(dtype)) * static_cast<double>(channels));
  const double samples = std::max(1.0, std::ceil(per_channel / kImageValues));
  const double image = per_channel / samples;
  int64_t best_h = 1, best_w = 1;
  double best_error = HUGE_VAL;
  for (int64_t h = std::max<int64_t>(1, static_cast<int64_t>(std::sqrt(image))); h >= 1; --h) {
    const int64_t w = std::max<int64_t>(1, std::llround(image / static_cast<double>(h)));
    const double error = std::fabs(static_cast<double>(h * w) - image) / image;
    if (error < best_error) {
      best_error = error;
      best_h = h;
      best_w = w;
    }
    if (error <= kImageTolerance) break;
  }
  return {static_cast<int64_t>(samples), channels, best_h, best_w};
}

std::vector<CaseSpec> CacheSweep(const CacheSizes& caches, DType dtype, size_t max_bytes) {
  const size_t l2 = caches.l2_bytes, llc = caches.llc_bytes;
  std::vector<Size> sizes = {Scaled(l2, "L2", 1, 4),   Scaled(l2, "L2", 1, 2),
                             Scaled(l2, "L2", 1, 1),   Scaled(l2, "L2", 2, 1),
                             Scaled(llc, "LLC", 1, 4), Scaled(llc, "LLC", 1, 2),
                             Scaled(llc, "LLC", 1, 1), Scaled(llc, "LLC", 2, 1),
                             Scaled(llc, "LLC", 4, 1), Scaled(llc, "LLC", 8, 1)};
  std::stable_sort(sizes.begin(), sizes.end(),
                   [](const Size& a, const Size& b) { return a.bytes < b.bytes; });
  // A machine whose LLC is 4 or 8 L2s (or is the L2) has sizes that coincide: one case each.
  std::vector<Size> distinct;
  for (const Size& size : sizes) {
    if (!distinct.empty() && distinct.back().bytes == size.bytes) {
      distinct.back().label += " = " + size.label;
    } else {
      distinct.push_back(size);
    }
  }
  std::vector<CaseSpec> cases;
  for (const Size& size : distinct) {
    if (max_bytes != 0 && size.bytes > max_bytes) break;
    for (const int64_t channels : kSweepChannels) {
      for (const Layout layout : {Layout::kNhwc, Layout::kNchw}) {
        CaseSpec spec;
        spec.origin = "--sweep cache (" + size.label + ")";
        spec.shape = CacheSweepShape(size.bytes, channels, dtype);
        spec.layout = layout;
        spec.sweep = SweepPoint{"cache", size.label, size.bytes, l2, llc};
        cases.push_back(spec);
      }
    }
  }
  return cases;
}

void PrintShapesFile(const std::vector<CaseSpec>& cases, DType dtype, const CacheSizes& caches) {
  std::printf(
      "# bnorm-bench's cases, logical N,C,... order; working set: x and y in %s. L2 %zu B, LLC %zu "
      "B (%s).\n",
      cli::ShortName(dtype), caches.l2_bytes, caches.llc_bytes, caches.source.c_str());
  std::printf("# Use with: bnorm-bench --shapes-file F, tools/pytorch-bench.py --shapes-file F\n");
  for (const CaseSpec& spec : cases) {
    const std::string shape = cli::Join(spec.shape, ",");
    const std::string layout =
        spec.layout == Layout::kAxis ? "axis=" + cli::Join(spec.axes, ",") : LayoutName(spec);
    if (spec.sweep) {
      std::printf("%-18s %-6s # %s: working set %zu B (target %zu B)\n", shape.c_str(),
                  layout.c_str(), spec.sweep->label.c_str(), WorkingSetBytes(spec.shape, dtype),
                  spec.sweep->target_bytes);
    } else {
      std::printf("%-18s %s\n", shape.c_str(), layout.c_str());
    }
  }
}

}  // namespace bench
}  // namespace bnorm
