// f32 math helpers of the sampler kernels that must not depend on the driver's transcendental
// functions: Vulkan only promises sin/cos to 2^-11 absolute on [-pi, pi] and log to 2^-21
// absolute near 1 (too loose for Box-Muller tails and for angles of 2000 rad), and mobile GPUs
// have no f64. Only +, -, * (correctly rounded in Vulkan), one division and sqrt are used,
// so every device computes (nearly) the same bits.

// ------------------------------------------------------------------ double-float
// A value as an unevaluated sum hi + lo of two floats (~48 significant bits). `precise`
// keeps the compiler from contracting or reassociating the error-free transformations
// (Dekker's splitting needs exact rounding of every step; no fma is assumed, since Vulkan
// does not promise a fused fma()).

vec2 df_quick_two_sum(float a, float b) { // |a| >= |b|
  precise float s = a + b;
  precise float e = b - (s - a);
  return vec2(s, e);
}

vec2 df_two_prod(float a, float b) {
  precise float p = a * b;
  precise float ca = 4097.0 * a; // 2^12 + 1: splits a 24-bit significand into 12 + 12 bits
  precise float ah = ca - (ca - a);
  precise float al = a - ah;
  precise float cb = 4097.0 * b;
  precise float bh = cb - (cb - b);
  precise float bl = b - bh;
  precise float e = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
  return vec2(p, e);
}

vec2 df_mul(vec2 a, vec2 b) {
  vec2 p = df_two_prod(a.x, b.x);
  precise float e = p.y + (a.x * b.y + a.y * b.x);
  return df_quick_two_sum(p.x, e);
}

// ------------------------------------------------------------------ sine and cosine in turns
// (cos(2 pi f), sin(2 pi f)) for f = k/4 + r, k an integer (the quadrant) and |r| <= 1/8 + a
// little: the caller reduces exactly. Taylor polynomials on |x| <= pi/4 (truncation below
// 2e-9 relative): the result is within a couple of ulp of the true value.
vec2 sincos_quadrant(int k, float r) {
  const float TWO_PI_HI = 6.28318548202514648;    // float(2 pi)
  const float TWO_PI_LO = -1.74845553146951609e-7; // 2 pi - TWO_PI_HI
  float x = r * TWO_PI_HI + r * TWO_PI_LO;
  float z = x * x;
  float sn = x + x * z * (-1.66666666666666667e-1 + z * (8.33333333333333333e-3 + z * (-1.98412698412698413e-4 + z * 2.75573192239858907e-6)));
  float cs = 1.0 + z * (-0.5 + z * (4.16666666666666667e-2 + z * (-1.38888888888888889e-3 + z * (2.48015873015873016e-5 + z * -2.75573192239858907e-7))));
  switch (k & 3) {
  case 0: return vec2(cs, sn);
  case 1: return vec2(-sn, cs);
  case 2: return vec2(-cs, -sn);
  default: return vec2(sn, -cs);
  }
}

// The same for one float f >= 0 (exact reduction: 4f and f - k/4 are exact in f32).
vec2 sincos_turns(float f) {
  float k = floor(4.0 * f + 0.5);
  return sincos_quadrant(int(k), f - 0.25 * k);
}

// ------------------------------------------------------------------ natural logarithm
// ln(x) for finite x > 0 (normal), after FreeBSD's e_logf.c (fdlibm): x = 2^k (1 + f) with
// 1 + f in [sqrt(1/2), sqrt(2)), f exact; ln(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)) with
// s = f / (2 + f). Error under 1 ulp plus the division's; relative accuracy holds near x = 1
// (the Box-Muller radius for u1 -> 1) where driver log()s only promise 2^-21 absolute.
float log_f32(float x) {
  const float LN2_HI = 6.9313812256e-01; // 0x3f317180: k * LN2_HI is exact
  const float LN2_LO = 9.0580006145e-06; // 0x3717f7d1
  const float LG1 = 0.66666662693, LG2 = 0.40000972152, LG3 = 0.28498786688, LG4 = 0.24279078841;
  uint ix = floatBitsToUint(x) + (0x3f800000u - 0x3f3504f3u);
  int k = int(ix >> 23) - 127;
  float m = uintBitsToFloat((ix & 0x007fffffu) + 0x3f3504f3u); // in [sqrt(1/2), sqrt(2))
  float f = m - 1.0; // exact (Sterbenz)
  float s = f / (2.0 + f);
  float z = s * s, w = z * z;
  float R = z * (LG1 + w * LG3) + w * (LG2 + w * LG4);
  float hfsq = 0.5 * f * f;
  float dk = float(k);
  return dk * LN2_HI - ((hfsq - (s * (hfsq + R) + dk * LN2_LO)) - f);
}
