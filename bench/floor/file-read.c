/* Platform floor: one CPU reading random 4 KiB blocks of a file into a small set of buffers (as a
 * target copies into guest buffers), with a syscall per block (pread) or as a memcpy from a shared
 * mapping of the file (mmap). No vhostd code: the ceiling any per-request-syscall target meets on
 * this file, and what the copy alone costs. Also times an empty syscall. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define BUFFERS 32

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: file-read FILE pread|mmap|syscall COUNT\n");
    return 2;
  }
  const char *mode = argv[2];
  long n = atol(argv[3]);
  if (strcmp(mode, "syscall") == 0) {
    double t0 = seconds();
    for (long i = 0; i < n; i++) syscall(SYS_getppid);
    printf("%.3f\n", (seconds() - t0) / n * 1e6);
    return 0;
  }
  int fd = open(argv[1], O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < BLOCK) {
    perror(argv[1]);
    return 1;
  }
  size_t blocks = st.st_size / BLOCK;
  char *buf = aligned_alloc(BLOCK, BUFFERS * BLOCK);
  memset(buf, 1, BUFFERS * BLOCK);
  char *map = NULL;
  if (strcmp(mode, "mmap") == 0) {
    map = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
      perror("mmap");
      return 1;
    }
  }
  unsigned long x = 88172645463325252UL;
  double t0 = seconds();
  for (long i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    off_t off = (off_t)(x % blocks) * BLOCK;
    char *dst = buf + (i % BUFFERS) * BLOCK;
    if (map) {
      memcpy(dst, map + off, BLOCK);
    } else if (pread(fd, dst, BLOCK, off) != BLOCK) {
      perror("pread");
      return 1;
    }
  }
  /* microseconds per block */
  printf("%.3f\n", (seconds() - t0) / n * 1e6);
  return 0;
}
