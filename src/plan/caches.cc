// SPDX-License-Identifier: Apache-2.0
// The caches a core really has (see caches.h).
#include "src/plan/caches.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace bnorm {
namespace {

constexpr size_t kDefaultL2 = size_t{512} << 10;
constexpr size_t kDefaultLlc = size_t{16} << 20;

// The first line of a small sysfs file, or "" when it cannot be read.
std::string ReadLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return "";
  return line;
}

// A whole decimal number of `text`, or -1.
long long ParseWhole(const std::string& text) {
  if (text.empty() || text.size() > 18) return -1;
  long long v = 0;
  for (char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

// The items of a comma-separated list, empty ones included ("0," has two),
// so that a stray comma reads as a malformed item.
std::vector<std::string> CommaItems(const std::string& text) {
  std::vector<std::string> items;
  size_t start = 0;
  for (size_t comma; (comma = text.find(',', start)) != std::string::npos; start = comma + 1) {
    items.push_back(text.substr(start, comma - start));
  }
  items.push_back(text.substr(start));
  return items;
}

// BNORM_CACHES's sizes over `c` when it is set and well-formed; a warning on
// stderr (once: the caller runs once) and `c` unchanged when it is malformed.
void ApplyEnvironment(CacheSizes* c) {
  const char* text = std::getenv("BNORM_CACHES");
  if (text == nullptr || *text == '\0') return;
  const CacheSizes parsed = ParseCacheOverride(text);
  if (parsed.l2_bytes == 0) {
    std::fprintf(stderr,
                 "bnorm: BNORM_CACHES=\"%s\" ignored: expected l2=SIZE,llc=SIZE[,llc_cpus=N] "
                 "with SIZE as 512K, 32M or bytes and llc >= l2\n",
                 text);
    return;
  }
  *c = parsed;
}

}  // namespace

CacheSizes ParseCacheOverride(const std::string& text) {
  CacheSizes c;
  c.llc_sharing_cpus = 1;
  for (const std::string& item : CommaItems(text)) {
    const size_t equals = item.find('=');
    if (equals == std::string::npos) return CacheSizes{};
    const std::string key = item.substr(0, equals);
    const std::string value = item.substr(equals + 1);
    if (key == "l2") {
      c.l2_bytes = ParseCacheSize(value);
      if (c.l2_bytes == 0) return CacheSizes{};
    } else if (key == "llc") {
      c.llc_bytes = ParseCacheSize(value);
      if (c.llc_bytes == 0) return CacheSizes{};
    } else if (key == "llc_cpus") {
      const long long n = ParseWhole(value);
      if (n <= 0) return CacheSizes{};
      c.llc_sharing_cpus = static_cast<size_t>(n);
    } else {
      return CacheSizes{};
    }
  }
  if (c.l2_bytes == 0 || c.llc_bytes < c.l2_bytes) return CacheSizes{};
  c.source = "BNORM_CACHES";
  return c;
}

size_t ParseCacheSize(const std::string& text) {
  if (text.empty()) return 0;
  size_t unit = 1;
  std::string digits = text;
  switch (text.back()) {
    case 'K':
      unit = size_t{1} << 10;
      digits.pop_back();
      break;
    case 'M':
      unit = size_t{1} << 20;
      digits.pop_back();
      break;
    case 'G':
      unit = size_t{1} << 30;
      digits.pop_back();
      break;
    default:
      break;
  }
  const long long v = ParseWhole(digits);
  return v < 0 ? 0 : static_cast<size_t>(v) * unit;
}

size_t CountCpuList(const std::string& list) {
  size_t count = 0;
  for (const std::string& item : CommaItems(list)) {
    const size_t dash = item.find('-');
    if (dash == std::string::npos) {
      if (ParseWhole(item) < 0) return 0;
      ++count;
    } else {
      const long long lo = ParseWhole(item.substr(0, dash));
      const long long hi = ParseWhole(item.substr(dash + 1));
      if (lo < 0 || hi < lo) return 0;
      count += static_cast<size_t>(hi - lo + 1);
    }
  }
  return count;
}

CacheSizes ReadSysfsCaches(const std::string& cpu_dir) {
  CacheSizes caches;
  int llc_level = 0;
  for (int index = 0;; ++index) {
    const std::string dir = cpu_dir + "/index" + std::to_string(index);
    const std::string level_text = ReadLine(dir + "/level");
    if (level_text.empty()) break;
    const long long level = ParseWhole(level_text);
    const std::string type = ReadLine(dir + "/type");
    if (level < 2 || type == "Instruction") continue;
    const size_t size = ParseCacheSize(ReadLine(dir + "/size"));
    if (size == 0) continue;
    if (level == 2) caches.l2_bytes = size;
    if (level >= llc_level) {
      llc_level = static_cast<int>(level);
      caches.llc_bytes = size;
      const size_t sharing = CountCpuList(ReadLine(dir + "/shared_cpu_list"));
      caches.llc_sharing_cpus = sharing == 0 ? 1 : sharing;
    }
  }
  caches.source = "sysfs";
  return caches;
}

const CacheSizes& MachineCaches() {
  static const CacheSizes caches = [] {
    CacheSizes c = ReadSysfsCaches("/sys/devices/system/cpu/cpu0/cache");
    if (c.l2_bytes == 0 || c.llc_bytes == 0) {
      c.source = "sysconf";
#ifdef _SC_LEVEL2_CACHE_SIZE
      if (c.l2_bytes == 0) {
        const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);  // 0 or -1 where unknown
        if (l2 > 0) c.l2_bytes = static_cast<size_t>(l2);
      }
#endif
#ifdef _SC_LEVEL3_CACHE_SIZE
      if (c.llc_bytes == 0) {
        const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
        if (l3 > 0) c.llc_bytes = static_cast<size_t>(l3);
      }
#endif
    }
    if (c.l2_bytes == 0 || c.llc_bytes == 0) {
      c.source = "default";
      if (c.l2_bytes == 0) c.l2_bytes = kDefaultL2;
      if (c.llc_bytes == 0) c.llc_bytes = std::max(kDefaultLlc, c.l2_bytes);
    }
    ApplyEnvironment(&c);
    return c;
  }();
  return caches;
}

size_t ResidentChannelBytes() {
  const CacheSizes& c = MachineCaches();
  return std::max(c.l2_bytes / 2, c.llc_bytes / (2 * c.llc_sharing_cpus));
}

}  // namespace bnorm
