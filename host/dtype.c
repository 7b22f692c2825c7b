/* f16 / bf16 / Q8_0 <-> f32 by bit manipulation, so results do not depend on the compiler's
 * half-float support or the FPU's rounding mode. */
#include "dtype.h"

#include <math.h>
#include <string.h>

const char *drd_dtype_name(uint32_t type) {
  switch (type) {
  case DRD_DTYPE_F32: return "f32";
  case DRD_DTYPE_F16: return "f16";
  case DRD_DTYPE_Q8_0: return "q8_0";
  case DRD_DTYPE_BF16: return "bf16";
  }
  return NULL;
}

int drd_dtype_valid(uint32_t type) { return drd_dtype_name(type) != NULL; }

uint32_t drd_dtype_block_elems(uint32_t type) {
  if (!drd_dtype_valid(type)) return 0;
  return type == DRD_DTYPE_Q8_0 ? DRD_Q8_0_BLOCK : 1;
}

uint32_t drd_dtype_block_bytes(uint32_t type) {
  switch (type) {
  case DRD_DTYPE_F32: return 4;
  case DRD_DTYPE_F16: return 2;
  case DRD_DTYPE_BF16: return 2;
  case DRD_DTYPE_Q8_0: return DRD_Q8_0_BLOCK_BYTES;
  }
  return 0;
}

int drd_dtype_nbytes(uint32_t type, uint64_t n, uint64_t *nbytes) {
  uint32_t be = drd_dtype_block_elems(type), bb = drd_dtype_block_bytes(type);
  if (!be || n % be) return 0;
  uint64_t blocks = n / be;
  if (blocks > UINT64_MAX / bb) return 0;
  *nbytes = blocks * bb;
  return 1;
}

static float bits_to_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static uint32_t f32_to_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

float drd_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (man << 13)); /* inf, NaN + payload */
  if (exp != 0) return bits_to_f32(sign | ((exp + 112u) << 23) | (man << 13));
  /* zero or subnormal: man * 2^-24, exact in f32 */
  float v = (float)man * 5.9604644775390625e-08f;
  return sign ? -v : v;
}

uint16_t drd_f32_to_f16(float f) {
  uint32_t x = f32_to_bits(f);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
  uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) /* NaN: keep the top payload bits, force quiet so it stays a NaN */
    return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
  /* 65520 is halfway between 65504 (max f16, odd mantissa) and 65536: ties-to-even → inf */
  if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
  if (ax >= 0x38800000u) { /* normal f16 (>= 2^-14): rebias, round on the 13 dropped bits */
    ax -= 112u << 23;
    ax += 0xfffu + ((ax >> 13) & 1u);
    return (uint16_t)(sign | (ax >> 13)); /* a mantissa carry correctly bumps the exponent */
  }
  uint32_t e = ax >> 23;
  if (e < 102) return sign; /* below 2^-25: rounds to zero */
  /* subnormal f16: value in units of 2^-24 is m * 2^(e-126-23+24), i.e. m >> (126 - e) */
  uint32_t m = (ax & 0x7fffffu) | 0x800000u;
  uint32_t shift = 126u - e; /* 14..24 */
  uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (q & 1u))) q++; /* q may reach 0x400: smallest normal */
  return (uint16_t)(sign | q);
}

float drd_bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }

uint16_t drd_f32_to_bf16(float f) {
  uint32_t x = f32_to_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return (uint16_t)(x >> 16);
}

static uint16_t load_u16le(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

void drd_f16_to_f32_row(const void *src, float *dst, size_t n) {
  const unsigned char *p = src;
  for (size_t i = 0; i < n; i++) dst[i] = drd_f16_to_f32(load_u16le(p + 2 * i));
}

void drd_f32_to_f16_row(const float *src, uint16_t *dst, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = drd_f32_to_f16(src[i]);
}

void drd_bf16_to_f32_row(const void *src, float *dst, size_t n) {
  const unsigned char *p = src;
  for (size_t i = 0; i < n; i++) dst[i] = drd_bf16_to_f32(load_u16le(p + 2 * i));
}

void drd_q8_0_to_f32(const void *blocks, uint64_t first, uint64_t n, float *dst) {
  const unsigned char *base = blocks;
  uint64_t i = first, end = first + n;
  while (i < end) {
    const unsigned char *blk = base + (i / DRD_Q8_0_BLOCK) * DRD_Q8_0_BLOCK_BYTES;
    float d = drd_f16_to_f32(load_u16le(blk));
    uint64_t j = i % DRD_Q8_0_BLOCK, stop = DRD_Q8_0_BLOCK;
    if (end - i < stop - j) stop = j + (end - i);
    for (; j < stop; j++, i++) *dst++ = d * (float)(int8_t)blk[2 + j];
  }
}

void drd_f32_to_q8_0(const float *src, size_t n, void *dst) {
  unsigned char *out = dst;
  for (size_t b = 0; b < n / DRD_Q8_0_BLOCK; b++) {
    const float *x = src + b * DRD_Q8_0_BLOCK;
    unsigned char *blk = out + b * DRD_Q8_0_BLOCK_BYTES;
    float amax = 0;
    for (int j = 0; j < DRD_Q8_0_BLOCK; j++)
      if (fabsf(x[j]) > amax) amax = fabsf(x[j]);
    float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    uint16_t dh = drd_f32_to_f16(d);
    blk[0] = (unsigned char)(dh & 0xff);
    blk[1] = (unsigned char)(dh >> 8);
    for (int j = 0; j < DRD_Q8_0_BLOCK; j++) {
      float q = roundf(x[j] * id);
      if (q != q) q = 0.0f; /* NaN or inf input: (int8_t)NaN would be undefined */
      if (q > 127.0f) q = 127.0f; /* only reachable through f32 rounding of x * id */
      if (q < -128.0f) q = -128.0f;
      blk[2 + j] = (unsigned char)(int8_t)q;
    }
  }
}

void drd_tensor_to_f32(const drd_tensor_view *t, uint64_t first, uint64_t n, float *dst) {
  const unsigned char *p = t->data;
  switch (t->type) {
  case DRD_DTYPE_F32: memcpy(dst, p + first * 4, (size_t)n * 4); break;
  case DRD_DTYPE_F16: drd_f16_to_f32_row(p + first * 2, dst, (size_t)n); break;
  case DRD_DTYPE_BF16: drd_bf16_to_f32_row(p + first * 2, dst, (size_t)n); break;
  case DRD_DTYPE_Q8_0: drd_q8_0_to_f32(p, first, n, dst); break;
  }
}

bool drd_tensor_fits_f16(const drd_tensor_view *t) {
  const unsigned char *p = t->data;
  switch (t->type) {
  case DRD_DTYPE_F16: return true;
  case DRD_DTYPE_BF16:
    /* bf16's largest value below 65520 (which rounds to infinity in f16) is 0x477f = 65280 */
    for (uint64_t i = 0; i < t->n_elements; i++)
      if (((p[2 * i] | (uint16_t)p[2 * i + 1] << 8) & 0x7fff) > 0x477f) return false;
    return true;
  case DRD_DTYPE_Q8_0:
    for (uint64_t b = 0; b < t->n_elements / DRD_Q8_0_BLOCK; b++) {
      const unsigned char *blk = p + b * DRD_Q8_0_BLOCK_BYTES;
      float d = fabsf(drd_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8)));
      if (d * 128.0f < 65504.0f) continue; /* every q fits: most blocks end here */
      if (d != d) return false;
      for (int j = 0; j < DRD_Q8_0_BLOCK; j++)
        if (d * fabsf((float)(int8_t)blk[2 + j]) > 65504.0f) return false;
    }
    return true;
  case DRD_DTYPE_F32:
    for (uint64_t i = 0; i < t->n_elements; i++) {
      float x;
      memcpy(&x, p + 4 * i, 4);
      if (!(fabsf(x) <= 65504.0f)) return false;
    }
    return true;
  }
  return false;
}
