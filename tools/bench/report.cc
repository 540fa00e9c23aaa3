// SPDX-License-Identifier: Apache-2.0
// bnorm-bench's table and JSON (nlohmann-json; the keys are read by tools/bench-table.py and
// tests/bnorm_bench_test.cc).
#include "tools/bench/report.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "bnorm/targets.hpp"
#include "nlohmann/json.hpp"
#include "tools/bench/sweep.h"
#include "tools/common/format.h"
#include "tools/common/parse.h"

namespace bnorm {
namespace bench {
namespace {

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown CPU";
}

// JSON numbers keep six significant digits, as bnorm-bench has always written them: timings do
// not repeat further than that. nlohmann-json writes a non-finite number as null.
double Rounded(double v) {
  return std::isfinite(v) ? std::strtod(cli::FormatNumber(v).c_str(), nullptr) : v;
}

nlohmann::ordered_json Rounded(const std::optional<double>& v) {
  return v ? nlohmann::ordered_json(Rounded(*v)) : nlohmann::ordered_json(nullptr);
}

}  // namespace

void PrintTableIntro(const Options& o, bool layer_training) {
  std::vector<std::string> supported;
  for (const TargetInfo& t : SupportedTargets()) supported.push_back(t.name);
  const size_t value_bytes = SizeOf(o.dtype);
  std::printf("bnorm-bench: %s, %u hardware threads; targets supported: %s\n", CpuModel().c_str(),
              std::thread::hardware_concurrency(), cli::Join(supported, ", ").c_str());
  const char* layer_rows = !o.backward   ? "; training rows run the bnorm::BatchNorm layer"
                           : !o.training ? "; backward rows run the bnorm::BatchNorm layer"
                                         : "; training and backward rows run the bnorm::BatchNorm "
                                           "layer";
  std::printf("dtype %s, virtual_batch_size %s, renorm %s%s\n", cli::ShortName(o.dtype),
              o.virtual_batch_size ? std::to_string(*o.virtual_batch_size).c_str() : "none",
              o.renorm ? "on" : "off", layer_training ? layer_rows : "");
  std::string backward;
  if (o.backward) {
    backward = ", backward " + std::to_string(5 * value_bytes) +
               " B/value: x and dy read twice, dx written";
  }
  const std::string inference =
      o.residual ? "inference y = relu(bn(x) + z) " + std::to_string(3 * value_bytes) +
                       " B/value: x and z read, y written"
                 : "inference " + std::to_string(2 * value_bytes) + " B/value";
  std::printf(
      "GB/s on minimum traffic (%s, training %zu B/value%s); roof: copy GB/s "
      "of the same buffers (best of memcpy and streaming stores), timed in turns with bnorm\n\n",
      inference.c_str(), 3 * value_bytes, backward.c_str());
}

void PrintTableHeader(bool compare) {
  std::printf("%-18s %-8s %-9s %3s %-8s %10s %24s %8s %7s %7s %6s %8s", "shape", "layout", "mode",
              "thr", "target", "median", "p10..p90", "Gelem/s", "GB/s", "roof", "%roof", "x ref");
  if (compare) std::printf(" %10s %8s", "oneDNN", "oneDNN/bn");
  std::printf("\n");
}

void PrintTableRow(const Row& r, bool compare) {
  // A batch-1 call takes microseconds, its fixed cost a fraction of one: in ms with four
  // significant digits these would read 0.0002345, so rows below 1 ms print in us.
  const bool micro = r.stats.median < 1e-3;
  const double scale = micro ? 1e6 : 1e3;
  const char* unit = micro ? "us" : "ms";
  const auto time = [&](double seconds) {
    char text[32];
    std::snprintf(text, sizeof(text), "%.4g %s", seconds * scale, unit);
    return std::string(text);
  };
  char spread[64];
  std::snprintf(spread, sizeof(spread), "%.4g..%.4g %s", r.stats.p10 * scale, r.stats.p90 * scale,
                unit);
  char speedup[24] = "-";
  if (r.reference_seconds) {
    std::snprintf(speedup, sizeof(speedup), "%.1fx", *r.reference_seconds / r.stats.median);
  }
  std::printf("%-18s %-8s %-9s %3d %-8s %10s %24s %8.3f %7.2f %7.2f %5.1f%% %8s",
              cli::FormatShape(r.c->shape).c_str(), r.c->label.c_str(), r.mode.c_str(), r.threads,
              r.target.c_str(), time(r.stats.median).c_str(), spread, r.gelems(), r.gbps(),
              r.roof.gbps, r.pct_roof(), speedup);
  if (compare && r.onednn_seconds) {
    std::printf(" %10s %8.2f", time(*r.onednn_seconds).c_str(), *r.onednn_seconds / r.stats.median);
  }
  std::printf("\n");
  std::fflush(stdout);
}

void PrintJson(const std::vector<Row>& rows, const Options& o) {
  using Json = nlohmann::ordered_json;
  const auto ratio = [](const std::optional<double>& seconds, double median) {
    return seconds ? std::optional<double>(*seconds / median) : std::nullopt;
  };
  Json array = Json::array();
  for (const Row& r : rows) {
    Json row = {
        {"shape", r.c->shape},
        {"layout", r.c->label},
        {"memory_shape", r.c->memory_shape},
        {"mode", r.mode},
        {"dtype", cli::ShortName(o.dtype)},
        {"virtual_batch_size", o.virtual_batch_size ? Json(*o.virtual_batch_size) : Json(nullptr)},
        {"renorm", o.renorm},
        {"threads", r.threads},
        {"target", r.target},
        {"elements", r.c->geometry.elements()},
        {"traffic_volumes", r.volumes},
        {"seconds", Rounded(r.stats.median)},
        {"p10_seconds", Rounded(r.stats.p10)},
        {"p90_seconds", Rounded(r.stats.p90)},
        {"min_seconds", Rounded(r.stats.min)},
        {"calls", r.stats.calls},
        {"gelem_per_s", Rounded(r.gelems())},
        {"gbps", Rounded(r.gbps())},
        {"roof_gbps", Rounded(r.roof.gbps)},
        {"roof_memcpy_gbps", Rounded(r.roof.memcpy_gbps)},
        {"roof_stream_gbps", Rounded(r.roof.stream_gbps)},
        {"roof_copy", r.roof.copy},
        {"pct_roof", Rounded(r.pct_roof())},
        {"reference_seconds", Rounded(r.reference_seconds)},
        {"speedup_vs_reference", Rounded(ratio(r.reference_seconds, r.stats.median))},
        {"max_abs_diff_vs_reference", Rounded(r.reference_max_abs_diff)},
    };
    // Only under --residual, so that other runs keep their keys; false on the rows it leaves
    // unchanged (training, backward).
    if (o.residual) row["residual"] = r.residual;
    if (r.c->sweep) {
      const SweepPoint& point = *r.c->sweep;
      row["sweep"] = point.sweep;
      row["size_label"] = point.label;
      row["working_set_bytes"] = WorkingSetBytes(r.c->shape, o.dtype);
      row["target_working_set_bytes"] = point.target_bytes;
      row["l2_bytes"] = point.l2_bytes;
      row["llc_bytes"] = point.llc_bytes;
    }
    if (o.compare_onednn) {
      row["onednn_seconds"] = Rounded(r.onednn_seconds);
      row["speedup_vs_onednn"] = Rounded(ratio(r.onednn_seconds, r.stats.median));
      row["onednn_max_abs_diff"] = Rounded(r.onednn_max_abs_diff);
    }
    array.push_back(std::move(row));
  }
  std::printf("%s\n", array.dump(2).c_str());
}

}  // namespace bench
}  // namespace bnorm
