// SPDX-License-Identifier: Apache-2.0
// The tools' CLI11 set-up, help layout and usage-error handling (see cli.h).
#include "tools/common/cli.h"

#include <cstdio>
#include <memory>
#include <utility>

#include "bnorm/error.hpp"
#include "bnorm/targets.hpp"

namespace bnorm {
namespace cli {
namespace {

// CLI11's layout puts the description above the usage line and a blank line before each
// group's name; bnorm's tools print the usage line first and one blank line between groups.
class HelpFormatter : public CLI::Formatter {
 public:
  explicit HelpFormatter(std::string usage) : usage_(std::move(usage)) {}

  std::string make_help(const CLI::App* app, std::string, CLI::AppFormatMode) const override {
    std::string help = usage_ + "\n\n" + app->get_description() + "\n";
    for (const std::string& group : app->get_groups()) {
      const std::vector<const CLI::Option*> options = app->get_options(
          [&group](const CLI::Option* o) { return o->get_group() == group && o->nonpositional(); });
      if (!group.empty() && !options.empty()) help += "\n" + make_group(group, false, options);
    }
    const std::string footer = make_footer(app);
    return footer.empty() ? help : help + "\n" + footer;
  }

  std::string make_group(std::string group, bool positional,
                         std::vector<const CLI::Option*> options) const override {
    std::string text = group + ":\n";
    for (const CLI::Option* option : options) text += make_option(option, positional);
    return text;
  }

 private:
  std::string usage_;
};

}  // namespace

std::string OneLine(std::string message) {
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return message;
}

CLI::Validator IsTarget(bool allow_all) {
  return CLI::Validator(
      [allow_all](std::string& name) -> std::string {
        if (allow_all && name == "all") return std::string();
        try {
          bnorm::ForceTarget(name);
          bnorm::ResetTarget();
          return std::string();
        } catch (const bnorm::Error& e) {
          return e.what();
        }
      },
      std::string());
}

void Configure(CLI::App* app, const std::string& usage, size_t column) {
  auto formatter = std::make_shared<HelpFormatter>(usage);
  formatter->column_width(column);
  app->formatter(formatter);
  app->set_help_flag();
}

CLI::Option* AddHelpFlag(CLI::App* app, const std::string& group) {
  return app->set_help_flag("-h,--help", "this text")->group(group);
}

std::optional<int> Parse(CLI::App* app, int argc, char** argv, bool help_on_error) {
  try {
    app->parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::CallForHelp&) {
    std::fputs(app->help().c_str(), stdout);
    return 0;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: %s\n", app->get_name().c_str(), OneLine(e.what()).c_str());
    if (help_on_error) std::fprintf(stderr, "\n%s", app->help().c_str());
    return kExitUsage;
  }
}

}  // namespace cli
}  // namespace bnorm
