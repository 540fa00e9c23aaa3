// SPDX-License-Identifier: Apache-2.0
// The caches a core really has, for the decisions that depend on them (when
// outputs stream, what fits in L2). Read from Linux sysfs, which describes the
// cache a core shares (e.g. one CCX's 32 MiB L3); sysconf's
// _SC_LEVEL3_CACHE_SIZE reports the whole socket's on some VMs (256-480 MiB),
// which would keep tensors "in cache" that are not.
#ifndef BNORM_SRC_PLAN_CACHES_H_
#define BNORM_SRC_PLAN_CACHES_H_

#include <cstddef>
#include <string>

namespace bnorm {

struct CacheSizes {
  size_t l2_bytes = 0;          // one core's L2 (unified or data)
  size_t llc_bytes = 0;         // the last-level cache the core shares
  size_t llc_sharing_cpus = 1;  // how many logical CPUs share it
  std::string source;           // "sysfs", "sysconf" or "default"
};

// Parses sysfs cache directories under `cpu_dir` (e.g.
// /sys/devices/system/cpu/cpu0/cache): index*/{level,type,size,shared_cpu_list}.
// Fields it cannot read stay 0 (llc_sharing_cpus 1).
CacheSizes ReadSysfsCaches(const std::string& cpu_dir);

// This machine's, read once: sysfs for cpu0, else sysconf, else 512 KiB L2
// and 16 MiB LLC. The environment variable BNORM_CACHES replaces them all
// (e.g. "l2=512K,llc=32M,llc_cpus=2"): for a machine whose sysfs misreports,
// and for tests and benchmarks that must decide as on another machine.
const CacheSizes& MachineCaches();

// BNORM_CACHES's value: "l2=SIZE,llc=SIZE[,llc_cpus=N]" (SIZE as
// ParseCacheSize reads it, llc >= l2, N >= 1, default 1), source
// "BNORM_CACHES"; all zero (l2_bytes 0) when malformed.
CacheSizes ParseCacheOverride(const std::string& text);

// How many bytes a pass may read of one channel and still find them cached
// when its second pass comes (the channel-resident training and backward): half
// the core's L2, or its share of half the last-level cache, with room left for
// the next channel's prefetched loads.
size_t ResidentChannelBytes();

// The count of CPUs in a sysfs CPU list ("0-1", "0,2,4-7"); 0 when malformed.
size_t CountCpuList(const std::string& list);

// A sysfs size ("512K", "32768K", "1M", "1024"); 0 when malformed.
size_t ParseCacheSize(const std::string& text);

}  // namespace bnorm

#endif  // BNORM_SRC_PLAN_CACHES_H_
