/* Platform floor: how long a thread sleeping in epoll_wait on one CPU takes to run again after
 * another CPU writes its eventfd, after `idle` seconds of sleep. No vhostd code is involved: this
 * is what any interrupt-driven target waits on this machine before it can do anything. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static int efd, ep, rounds, sleeper_cpu;
static volatile long long kicked_at;

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void pin(int cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  sched_setaffinity(0, sizeof s, &s);
}

static void *sleeper(void *arg) {
  (void)arg;
  pin(sleeper_cpu);
  for (int i = 0; i < rounds; i++) {
    struct epoll_event e;
    epoll_wait(ep, &e, 1, -1);
    long long woke = now_ns();
    uint64_t v;
    if (read(efd, &v, sizeof v) < 0) perror("read");
    printf("%.1f\n", (woke - kicked_at) / 1000.0);
    fflush(stdout);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: wake-latency SLEEPER_CPU KICKER_CPU IDLE_SECONDS ROUNDS\n");
    return 2;
  }
  sleeper_cpu = atoi(argv[1]);
  int kicker_cpu = atoi(argv[2]);
  double idle = strtod(argv[3], NULL);
  rounds = atoi(argv[4]);
  efd = eventfd(0, EFD_NONBLOCK);
  ep = epoll_create1(0);
  struct epoll_event e = {.events = EPOLLIN};
  epoll_ctl(ep, EPOLL_CTL_ADD, efd, &e);
  pthread_t th;
  pthread_create(&th, NULL, sleeper, NULL);
  pin(kicker_cpu);
  for (int i = 0; i < rounds; i++) {
    usleep((useconds_t)(idle * 1e6));
    kicked_at = now_ns();
    uint64_t one = 1;
    if (write(efd, &one, sizeof one) < 0) perror("write");
  }
  pthread_join(th, NULL);
  return 0;
}
