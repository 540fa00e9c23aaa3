// SPDX-License-Identifier: Apache-2.0
// The cache sizes behind the streaming threshold: sysfs parsing on a fake tree
// (what a core shares, not what the socket has), the parsers' edge cases, and
// the machine's own values.
#include "src/plan/caches.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "src/ops/streaming.h"
#include "tests/test_util.h"

namespace bnorm {
namespace {

class FakeSysfs : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/caches_test.XXXXXX";
    ASSERT_NE(mkdtemp(&pattern[0]), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  void Index(int i, const std::string& level, const std::string& type, const std::string& size,
             const std::string& shared) {
    const std::string d = dir_ + "/index" + std::to_string(i);
    ASSERT_EQ(mkdir(d.c_str(), 0777), 0);
    std::ofstream(d + "/level") << level << "\n";
    std::ofstream(d + "/type") << type << "\n";
    std::ofstream(d + "/size") << size << "\n";
    std::ofstream(d + "/shared_cpu_list") << shared << "\n";
  }

  std::string dir_;
};

TEST_F(FakeSysfs, ReadsTheL2AndTheSharedLastLevelCache) {
  // A Zen CCX: private 32K L1s and 512K L2, a 32 MiB L3 shared by CPUs 0-7.
  Index(0, "1", "Data", "32K", "0");
  Index(1, "1", "Instruction", "32K", "0");
  Index(2, "2", "Unified", "512K", "0");
  Index(3, "3", "Unified", "32768K", "0-7");
  const CacheSizes c = ReadSysfsCaches(dir_);
  EXPECT_EQ(c.l2_bytes, size_t{512} << 10);
  EXPECT_EQ(c.llc_bytes, size_t{32} << 20);
  EXPECT_EQ(c.llc_sharing_cpus, 8u);
  EXPECT_EQ(c.source, "sysfs");
}

TEST_F(FakeSysfs, WithoutAnL3TheL2IsTheLastLevel) {
  Index(0, "1", "Data", "64K", "0");
  Index(1, "2", "Unified", "1M", "0,1");
  const CacheSizes c = ReadSysfsCaches(dir_);
  EXPECT_EQ(c.l2_bytes, size_t{1} << 20);
  EXPECT_EQ(c.llc_bytes, size_t{1} << 20);
  EXPECT_EQ(c.llc_sharing_cpus, 2u);
}

TEST_F(FakeSysfs, UnreadableEntriesLeaveZeros) {
  Index(0, "2", "Unified", "lots", "0");
  const CacheSizes missing = ReadSysfsCaches(dir_ + "/no-such-dir");
  EXPECT_EQ(missing.l2_bytes, 0u);
  EXPECT_EQ(missing.llc_bytes, 0u);
  const CacheSizes malformed = ReadSysfsCaches(dir_);
  EXPECT_EQ(malformed.l2_bytes, 0u);
  EXPECT_EQ(malformed.llc_sharing_cpus, 1u);
}

TEST(CacheText, SizesAndCpuLists) {
  EXPECT_EQ(ParseCacheSize("512K"), size_t{512} << 10);
  EXPECT_EQ(ParseCacheSize("32M"), size_t{32} << 20);
  EXPECT_EQ(ParseCacheSize("4096"), 4096u);
  EXPECT_EQ(ParseCacheSize(""), 0u);
  EXPECT_EQ(ParseCacheSize("K"), 0u);
  EXPECT_EQ(ParseCacheSize("-1K"), 0u);
  EXPECT_EQ(CountCpuList("0"), 1u);
  EXPECT_EQ(CountCpuList("0-1"), 2u);
  EXPECT_EQ(CountCpuList("0,2,4-7"), 6u);
  EXPECT_EQ(CountCpuList("3-1"), 0u);
  EXPECT_EQ(CountCpuList("a"), 0u);
  EXPECT_EQ(CountCpuList("0,"), 0u);
}

TEST(CacheOverride, ParsesEveryFieldAndRejectsTheMalformed) {
  const CacheSizes c = ParseCacheOverride("l2=1M,llc=64M,llc_cpus=8");
  EXPECT_EQ(c.l2_bytes, size_t{1} << 20);
  EXPECT_EQ(c.llc_bytes, size_t{64} << 20);
  EXPECT_EQ(c.llc_sharing_cpus, 8u);
  EXPECT_EQ(c.source, "BNORM_CACHES");
  EXPECT_EQ(ParseCacheOverride("llc=32M,l2=512K").llc_sharing_cpus, 1u);
  for (const char* bad : {"", "l2=512K", "llc=32M", "l2=512K,llc=256K", "l2=512K,llc=32M,",
                          "l2=512K,llc=32M,llc_cpus=0", "l2=512K,llc=32M,l3=1M", "l2,llc=32M",
                          "l2=x,llc=32M"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(ParseCacheOverride(bad).l2_bytes, 0u);
  }
}

// test_util.h sets BNORM_CACHES for every test binary.
TEST(MachineCaches, FollowTheEnvironment) {
  const CacheSizes& c = MachineCaches();
  const CacheSizes want = ParseCacheOverride(std::getenv("BNORM_CACHES"));
  EXPECT_EQ(c.source, "BNORM_CACHES");
  EXPECT_EQ(c.l2_bytes, want.l2_bytes);
  EXPECT_EQ(c.llc_bytes, want.llc_bytes);
}

TEST(MachineCaches, AreSaneAndSetTheStreamingThreshold) {
  const CacheSizes& c = MachineCaches();
  EXPECT_GE(c.l2_bytes, size_t{64} << 10);
  EXPECT_GE(c.llc_bytes, c.l2_bytes);
  EXPECT_GE(c.llc_sharing_cpus, 1u);
  EXPECT_EQ(StreamingThresholdBytes(), c.llc_bytes / 2);
}

}  // namespace
}  // namespace bnorm
