#include "clock.h"

#include <errno.h>
#include <math.h>
#include <time.h>

double drd_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void drd_sleep_until_s(double t) {
  if (!(t > drd_now_s())) return;
  struct timespec ts;
  double whole = floor(t);
  ts.tv_sec = (time_t)whole;
  ts.tv_nsec = (long)((t - whole) * 1e9);
  if (ts.tv_nsec > 999999999L) ts.tv_nsec = 999999999L;
  /* absolute, so a signal that interrupts the sleep does not lengthen it */
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}
