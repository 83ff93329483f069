// Streaming-read memory bandwidth: sums a buffer much larger than the caches with N OpenMP
// threads (AVX2 loads via the compiler's vectorizer) and prints the best of R passes in GB/s.
//   bandwidth <MiB> <threads> <passes>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? strtoull(argv[1], 0, 10) : 1024;
  int threads = argc > 2 ? atoi(argv[2]) : 1;
  int passes = argc > 3 ? atoi(argv[3]) : 5;
  size_t n = mib * 1024 * 1024 / sizeof(uint64_t);
  uint64_t *buf = aligned_alloc(64, n * sizeof(uint64_t));
  if (!buf) return 1;
  omp_set_num_threads(threads);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) buf[i] = i * 2654435761u;
  double best = 0; uint64_t sink = 0;
  for (int p = 0; p < passes; p++) {
    double t0 = now(); uint64_t s = 0;
#pragma omp parallel for schedule(static) reduction(+ : s)
    for (size_t i = 0; i < n; i++) s += buf[i];
    double dt = now() - t0; sink += s;
    double gbs = n * sizeof(uint64_t) / dt / 1e9;
    if (gbs > best) best = gbs;
  }
  printf("{\"mib\":%zu,\"threads\":%d,\"passes\":%d,\"bestGBs\":%.3f,\"sink\":%llu}\n", mib, threads, passes, best, (unsigned long long)(sink & 1));
  free(buf);
  return 0;
}
