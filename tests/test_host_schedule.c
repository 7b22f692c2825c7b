/* Noise schedules and time grids (SPEC 7-8): inverse of lambda, monotone grids with exact
 * end points, and a few values against the Python reference (models/drdiff/schedule.py). */
#include <math.h>
#include <stdio.h>

#include "schedule.h"
#include "util_rand.h"

static int failures;
#define CHECK(cond, ...)                 \
  do {                                   \
    if (!(cond)) {                       \
      printf("FAIL " __VA_ARGS__);       \
      printf("\n");                      \
      failures++;                        \
    }                                    \
  } while (0)

static const char *names[] = {"sqrt", "cosine", "linear_logsnr"};

/* The largest u where the sqrt / cosine schedule is not clamped (alpha_bar >= 1e-6). */
static double unclamped_max(drd_schedule s) {
  if (s == DRD_SCHEDULE_LINEAR_LOGSNR) return 1.0;
  double lo = 0, hi = 1; /* bisection on alpha_bar(u) > 1e-6 */
  for (int i = 0; i < 200; i++) {
    double mid = 0.5 * (lo + hi);
    if (drd_sched_alpha_bar(s, mid) > 1e-6) lo = mid;
    else hi = mid;
  }
  return lo;
}

/* The smallest u where it is not clamped (alpha_bar <= 1 - 1e-6): 0 except for cosine. */
static double unclamped_min(drd_schedule s) {
  if (drd_sched_alpha_bar(s, 0.0) < 1 - 1e-6) return 0.0;
  double lo = 0, hi = 1;
  for (int i = 0; i < 200; i++) {
    double mid = 0.5 * (lo + hi);
    if (drd_sched_alpha_bar(s, mid) >= 1 - 1e-6) lo = mid;
    else hi = mid;
  }
  return hi;
}

int main(void) {
  const uint64_t seed = drd_test_seed();
  drd_rng rng = {seed};
  for (int si = 0; si < 3; si++) {
    const drd_schedule s = (drd_schedule)si;
    const double umax = unclamped_max(s) * (1 - 1e-9), umin = unclamped_min(s) * (1 + 1e-9);
    /* lambda^-1(lambda(u)) = u on the unclamped part; alpha^2 + sigma^2 = 1; lambda decreasing */
    double prev = INFINITY;
    for (int i = 0; i <= 2000; i++) {
      double u = umin + (i < 1001 ? (umax - umin) * i / 1000.0 : (double)drd_rng_uniform(&rng, 0.0f, 1.0f) * (umax - umin));
      const double l = drd_sched_lambda(s, u), back = drd_sched_lambda_inv(s, l);
      CHECK(fabs(back - u) < 1e-9 * (1 + fabs(u)) + 1e-12, "%s: lambda_inv(lambda(%.17g)) = %.17g", names[si], u, back);
      const double a = drd_sched_alpha(s, u), sg = drd_sched_sigma(s, u);
      CHECK(fabs(a * a + sg * sg - 1) < 1e-12, "%s: alpha^2 + sigma^2 = %.17g at u=%g", names[si], a * a + sg * sg, u);
      CHECK(fabs(l - (log(a) - log(sg))) < 1e-9 * (1 + fabs(l)), "%s: lambda != ln alpha - ln sigma at u=%g", names[si], u);
      if (i > 0 && i < 1001) CHECK(l < prev, "%s: lambda not decreasing at u=%g", names[si], u);
      if (i < 1001) prev = l;
    }
    /* clamping: alpha_bar stays in [1e-6, 1 - 1e-6] for sqrt / cosine */
    if (s != DRD_SCHEDULE_LINEAR_LOGSNR) {
      CHECK(drd_sched_alpha_bar(s, 1.0) == 1e-6, "%s: alpha_bar(1) = %g, want the clamp 1e-6", names[si], drd_sched_alpha_bar(s, 1.0));
      CHECK(drd_sched_alpha_bar(s, 0.0) <= 1 - 1e-6, "%s: alpha_bar(0) above the clamp", names[si]);
    }
    /* grids */
    const uint32_t steps_list[] = {1, 2, 3, 5, 8, 10, 20, 100, 1000};
    for (size_t k = 0; k < sizeof steps_list / sizeof steps_list[0]; k++) {
      const uint32_t S = steps_list[k];
      for (int g = 1; g <= 2; g++) {
        double u[1001];
        drd_status st = drd_sched_grid(s, (drd_grid)g, S, DRD_U_MAX, DRD_U_MIN, u);
        CHECK(st == DRD_OK, "%s grid %d S=%u failed", names[si], g, S);
        CHECK(u[0] == 1.0 && u[S] == 1e-3, "%s grid %d S=%u: end points %.17g %.17g", names[si], g, S, u[0], u[S]);
        for (uint32_t i = 1; i <= S; i++)
          CHECK(u[i] < u[i - 1], "%s grid %d S=%u: u[%u]=%.17g not below u[%u]=%.17g", names[si], g, S, i, u[i], i - 1, u[i - 1]);
        if (g == DRD_GRID_TIME_UNIFORM)
          for (uint32_t i = 0; i <= S; i++)
            CHECK(fabs(u[i] - (1.0 - 0.999 * i / S)) < 1e-15, "%s time grid S=%u u[%u]=%.17g", names[si], S, i, u[i]);
        if (g == DRD_GRID_LOGSNR_UNIFORM) {
          const double l0 = drd_sched_lambda(s, 1.0), l1 = drd_sched_lambda(s, 1e-3);
          for (uint32_t i = 1; i < S; i++) {
            const double want = l0 + (l1 - l0) * i / S;
            CHECK(fabs(drd_sched_lambda(s, u[i]) - want) < 1e-8 * (1 + fabs(want)),
                  "%s logsnr grid S=%u: lambda(u[%u]) = %.17g, want %.17g", names[si], S, i, drd_sched_lambda(s, u[i]), want);
          }
        }
      }
    }
  }
  double u[4];
  CHECK(drd_sched_grid(DRD_SCHEDULE_SQRT, DRD_GRID_TIME_UNIFORM, 0, 1, 1e-3, u) == DRD_ERROR_INVALID_ARGUMENT, "steps=0 accepted");
  CHECK(drd_sched_grid(DRD_SCHEDULE_SQRT, (drd_grid)7, 3, 1, 1e-3, u) == DRD_ERROR_INVALID_ARGUMENT, "grid 7 accepted");
  CHECK(fabs(drd_sched_alpha_bar(DRD_SCHEDULE_LINEAR_LOGSNR, 0.5) - 0.5) < 1e-15, "linear_logsnr alpha_bar(0.5) != 0.5");

  /* The Python reference's logsnr_uniform grids for S = 8, and lambda / alpha_bar at 0.3. */
  static const double py_grid[3][9] = {
      {0x1.0000000000000p+0, 0x1.fff0a54e8b741p-1, 0x1.ffdfa1ff488d0p-1, 0x1.ff4def124e70cp-1, 0x1.fa76e9126105cp-1,
       0x1.d3a78cd61320bp-1, 0x1.066625eb2156dp-1, 0x1.a62dc40fa895bp-5, 0x1.0624dd2f1a9fcp-10},
      {0x1.0000000000000p+0, 0x1.fe892d3fbd4c4p-1, 0x1.f979bce59ea3ap-1, 0x1.e2fe89a2f1e53p-1, 0x1.848d5a92c3a57p-1,
       0x1.4bb7e22470d3fp-2, 0x1.2e79512a1b3c0p-4, 0x1.8a6d6af55a1b2p-7, 0x1.0624dd2f1a9fcp-10},
      {0x1.0000000000000p+0, 0x1.c010624dd2fcep-1, 0x1.8020c49ba5f9ep-1, 0x1.403126e978f6dp-1, 0x1.004189374bf3bp-1,
       0x1.80a3d70a3de13p-2, 0x1.00c49ba5e3db2p-2, 0x1.01cac08313aa0p-3, 0x1.0624dd2f1a9fcp-10}};
  static const double py_lam[3] = {-0x1.88e439bafc7a8p-4, 0x1.4e7061e8b0798p-1, 0x1.0000000000001p+1};
  static const double py_ab[3] = {0x1.cf09e3b74a6d8p-2, 0x1.92e5ef3c8afc2p-1, 0x1.f6ca82f0de1eap-1};
  for (int si = 0; si < 3; si++) {
    double g[9];
    drd_sched_grid((drd_schedule)si, DRD_GRID_LOGSNR_UNIFORM, 8, 1.0, 1e-3, g);
    for (int i = 0; i <= 8; i++)
      CHECK(fabs(g[i] - py_grid[si][i]) <= 1e-12 * fabs(py_grid[si][i]), "%s: grid[%d] = %a, Python %a", names[si], i, g[i], py_grid[si][i]);
    const double l = drd_sched_lambda((drd_schedule)si, 0.3), ab = drd_sched_alpha_bar((drd_schedule)si, 0.3);
    CHECK(fabs(l - py_lam[si]) <= 1e-13 * fabs(py_lam[si]), "%s: lambda(0.3) = %a, Python %a", names[si], l, py_lam[si]);
    CHECK(fabs(ab - py_ab[si]) <= 1e-14 * fabs(py_ab[si]), "%s: alpha_bar(0.3) = %a, Python %a", names[si], ab, py_ab[si]);
  }
  if (failures) {
    printf("test_host_schedule: %d failure(s), seed %llu\n", failures, (unsigned long long)seed);
    return 1;
  }
  printf("test_host_schedule: ok\n");
  return 0;
}
