// Streaming-read memory bandwidth: sums a buffer much larger than the caches with N OpenMP
// threads and prints the best of R passes in GB/s. With `huge` = 1 the buffer is advised for
// transparent huge pages (MADV_HUGEPAGE), which matters where THP is in "madvise" mode: with
// 4 KiB pages the hardware prefetchers stop at every page boundary.
//   bandwidth <MiB> <threads> <passes> [huge]
#define _GNU_SOURCE
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? strtoull(argv[1], 0, 10) : 1024;
  int threads = argc > 2 ? atoi(argv[2]) : 1;
  int passes = argc > 3 ? atoi(argv[3]) : 5;
  int huge = argc > 4 ? atoi(argv[4]) : 0;
  size_t bytes = mib * 1024 * 1024;
  size_t n = bytes / sizeof(uint64_t);
  uint64_t *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf == MAP_FAILED) return 1;
#ifdef MADV_HUGEPAGE
  if (huge) madvise(buf, bytes, MADV_HUGEPAGE);
#endif
  omp_set_num_threads(threads);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) buf[i] = i * 2654435761u;
  double best = 0; uint64_t sink = 0;
  for (int p = 0; p < passes; p++) {
    double t0 = now(); uint64_t s = 0;
#pragma omp parallel for schedule(static) reduction(+ : s)
    for (size_t i = 0; i < n; i += 8) {
      // 8 independent lanes per iteration: enough loads in flight per core
      s += buf[i] + buf[i + 1] + buf[i + 2] + buf[i + 3] + buf[i + 4] + buf[i + 5] + buf[i + 6] + buf[i + 7];
    }
    double dt = now() - t0; sink += s;
    double gbs = bytes / dt / 1e9;
    if (gbs > best) best = gbs;
  }
  printf("{\"mib\":%zu,\"threads\":%d,\"passes\":%d,\"huge\":%d,\"bestGBs\":%.3f,\"sink\":%llu}\n", mib, threads, passes, huge, best, (unsigned long long)(sink & 1));
  munmap(buf, bytes);
  return 0;
}
