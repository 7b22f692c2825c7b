/* Monotonic wall-clock time for progress reports and benchmarks. */
#ifndef DRD_CLOCK_H
#define DRD_CLOCK_H

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC). */
double drd_now_s(void);

#endif
