/* Monotonic wall-clock time for progress reports and benchmarks, and sleeping until a time. */
#ifndef DRD_CLOCK_H
#define DRD_CLOCK_H

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC). */
double drd_now_s(void);

/* Sleeps until drd_now_s() reaches t (returns at once if it has). */
void drd_sleep_until_s(double t);

#endif
