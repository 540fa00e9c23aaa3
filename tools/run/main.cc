// SPDX-License-Identifier: Apache-2.0
// bnorm-run: one Keras BatchNormalization layer applied to .npy files, the
// interop CLI that cross-checks bnorm against Keras. Its --help (settings.cc) is the contract.
//
// Everything is read, validated and computed before the first byte is written,
// so a failing run leaves the output directory untouched.
#include <oneapi/tbb/task_arena.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/error.hpp"
#include "bnorm/execution.hpp"
#include "bnorm/targets.hpp"
#include "src/io/npy.h"
#include "src/plan/format.h"
#include "tools/common/cli.h"
#include "tools/run/failure.h"
#include "tools/run/ranks.h"
#include "tools/run/settings.h"
#include "tools/run/state_files.h"

namespace bnorm {
namespace run {
namespace {

struct Output {
  std::string name;
  npy::Array array;
};

std::vector<Output> Run(const Settings& s) {
  bnorm::Options options = s.options;
  if (s.target) {
    try {
      ForceTarget(*s.target);
    } catch (const Error& e) {
      UsageError(std::string("--target: ") + e.what());
    }
  }
  struct stat st;
  if (::stat(s.out.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) {
    IoError("--out " + s.out + " exists and is not a directory");
  }

  // Every file is read before anything is computed.
  const npy::Array x = ReadFile("--x", s.x);
  std::optional<npy::Array> dy;
  if (s.dy) {
    dy = ReadFile("--dy", *s.dy);
    if (dy->shape != x.shape || dy->dtype != x.dtype) {
      UsageError("--dy " + *s.dy + " is " + npy::Name(dy->dtype) + " of shape " +
                 FormatList(dy->shape) + "; expected --x's " + npy::Name(x.dtype) + " of shape " +
                 FormatList(x.shape));
    }
  }
  std::vector<ParameterFile> state;
  for (const auto& [flag, path] : s.state_files) state.push_back(ReadParameterFile(flag, path));
  std::optional<ParameterFile> adjustment_scale, adjustment_bias;
  if (s.adjustment_scale) {
    adjustment_scale = ReadParameterFile("--adjustment-scale", *s.adjustment_scale);
    adjustment_bias = ReadParameterFile("--adjustment-bias", *s.adjustment_bias);
  }

  // Shape-dependent checks need the parameter shape, known after Build; the
  // adjustment reads its values once they are checked.
  std::vector<float> adj_scale, adj_bias;
  if (adjustment_scale) {
    options.adjustment = [&adj_scale, &adj_bias](const std::vector<int64_t>&, float* scale,
                                                 float* bias) {
      std::copy(adj_scale.begin(), adj_scale.end(), scale);
      std::copy(adj_bias.begin(), adj_bias.end(), bias);
    };
  }
  BatchNorm layer(options);
  layer.set_communicator(s.communicator);
  layer.Build(x.shape);
  const std::vector<int64_t> parameter_shape = layer.parameter_shape();
  if (adjustment_scale) {
    adj_scale = adjustment_scale->Values(parameter_shape);
    adj_bias = adjustment_bias->Values(parameter_shape);
  }
  for (const ParameterFile& file : state) {
    const std::vector<float> values = file.Values(parameter_shape);
    try {
      if (file.flag == "--gamma") layer.set_gamma(values);
      if (file.flag == "--beta") layer.set_beta(values);
      if (file.flag == "--moving-mean") layer.set_moving_mean(values);
      if (file.flag == "--moving-variance") layer.set_moving_variance(values);
      if (file.flag == "--moving-stddev") layer.set_moving_stddev(values);
      if (file.flag == "--renorm-mean") layer.set_renorm_mean(values);
      if (file.flag == "--renorm-stddev") layer.set_renorm_stddev(values);
    } catch (const Error& e) {
      UsageError(file.flag + " " + file.path + ": " + e.what());
    }
  }

  std::unique_ptr<tbb::task_arena> arena;
  Execution exec;
  if (s.threads == 1) {
    exec = Execution::Serial();
  } else if (s.threads) {
    arena = std::make_unique<tbb::task_arena>(static_cast<int>(*s.threads));
    exec = Execution::Parallel(arena.get());
  }

  std::vector<Output> outputs;
  // The backward follows the last forward step, on the same input.
  if (x.dtype == npy::ElementType::kFloat16 || x.dtype == npy::ElementType::kBFloat16) {
    const DType dtype = x.dtype == npy::ElementType::kFloat16 ? DType::kFloat16 : DType::kBFloat16;
    const std::vector<uint16_t> in = npy::ToBits16(x);
    std::vector<uint16_t> y(in.size());
    for (int64_t step = 0; step < s.steps; ++step) {
      layer.Forward(in.data(), y.data(), dtype, x.shape, s.training, exec);
    }
    outputs.push_back({"y", npy::FromBits16(y, x.shape, x.dtype)});
    if (dy) {
      const std::vector<uint16_t> grad = npy::ToBits16(*dy);
      std::vector<uint16_t> dx(in.size());
      layer.Backward(in.data(), grad.data(), dx.data(), dtype, x.shape, exec);
      outputs.push_back({"dx", npy::FromBits16(dx, x.shape, x.dtype)});
    }
  } else {
    const std::vector<float> in = npy::ToFloats(x);
    std::vector<float> y(in.size());
    for (int64_t step = 0; step < s.steps; ++step) {
      layer.Forward(in.data(), y.data(), x.shape, s.training, exec);
    }
    outputs.push_back({"y", npy::FromFloats(y, x.shape, x.dtype)});
    if (dy) {
      const std::vector<float> grad = npy::ToFloats(*dy);
      std::vector<float> dx(in.size());
      layer.Backward(in.data(), grad.data(), dx.data(), x.shape, exec);
      outputs.push_back({"dx", npy::FromFloats(dx, x.shape, x.dtype)});
    }
  }

  const auto state_file = [&](const char* name, const std::vector<float>& values) {
    outputs.push_back({name, npy::FromFloats(values, parameter_shape, npy::ElementType::kFloat32)});
  };
  state_file("moving_mean", layer.moving_mean());
  state_file("moving_variance", layer.moving_variance());
  if (options.scale) state_file("gamma", layer.gamma());
  if (options.center) state_file("beta", layer.beta());
  if (options.renorm) {
    state_file("moving_stddev", layer.moving_stddev());
    state_file("renorm_mean", layer.renorm_mean());
    state_file("renorm_stddev", layer.renorm_stddev());
  }
  if (dy) {
    // Each accessor is empty where the gradient is not defined (no scale, say).
    const std::pair<const char*, const std::vector<float>*> gradients[] = {
        {"dgamma", &layer.gradient_gamma()},
        {"dbeta", &layer.gradient_beta()},
        {"d_adjustment_scale", &layer.gradient_adjustment_scale()},
        {"d_adjustment_bias", &layer.gradient_adjustment_bias()}};
    for (const auto& [name, values] : gradients) {
      if (!values->empty()) state_file(name, *values);
    }
  }
  return outputs;
}

void WriteOutputs(const std::string& dir, const std::vector<Output>& outputs) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) IoError("--out " + dir + ": cannot create the directory: " + error.message());
  for (const Output& output : outputs) {
    try {
      npy::Write(dir + "/" + output.name + ".npy", output.array);
    } catch (const Error& e) {
      IoError(std::string("--out: ") + e.what());
    }
  }
}

}  // namespace
}  // namespace run
}  // namespace bnorm

int main(int argc, char** argv) {
  using bnorm::cli::OneLine;
  try {
    int exit_status = 0;
    std::optional<bnorm::run::Settings> settings =
        bnorm::run::ParseSettings(argc, argv, &exit_status);
    if (!settings) return exit_status;
    if (!settings->options.synchronized) {
      bnorm::run::WriteOutputs(settings->out, bnorm::run::Run(*settings));
      return 0;
    }
    // Synchronized: the arguments again with this process's rank in them.
    bnorm::run::Ranks ranks = bnorm::run::JoinRanks(&argc, &argv);
    std::vector<std::string> args = bnorm::run::WithRank(argc, argv, ranks.rank);
    std::vector<char*> pointers;
    for (std::string& arg : args) pointers.push_back(arg.data());
    settings =
        bnorm::run::ParseSettings(static_cast<int>(pointers.size()), pointers.data(), &exit_status);
    if (!settings) return exit_status;
    settings->communicator = ranks.communicator;
    bnorm::run::WriteOutputs(settings->out, bnorm::run::Run(*settings));
    settings.reset();
    bnorm::run::LeaveRanks(&ranks);
    return 0;
  } catch (const bnorm::run::Failure& failure) {
    std::fprintf(stderr, "bnorm-run: %s\n", OneLine(failure.message).c_str());
    return failure.exit_code;
  } catch (const bnorm::Error& e) {
    // The layer's own validation: the message names the Keras argument.
    std::fprintf(stderr, "bnorm-run: %s\n", OneLine(e.what()).c_str());
    return bnorm::cli::kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bnorm-run: %s\n", OneLine(e.what()).c_str());
    return bnorm::run::kExitIo;
  }
}
