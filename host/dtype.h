/* Element types of model tensors: sizes, names, and the conversions between f32 and the
 * stored forms (f16, bf16, Q8_0). drd_tensor_to_f32 itself is declared in model_file.h. */
#ifndef DRD_DTYPE_H
#define DRD_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "model_file.h"

/* Q8_0 (GGUF's layout): blocks of 32 elements, each an f16 scale d then 32 int8 q;
 * element i of a block is f32(d) * q[i]. */
#define DRD_Q8_0_BLOCK 32
#define DRD_Q8_0_BLOCK_BYTES 34

/* "f32", "f16", "q8_0", "bf16", or NULL for a type SPEC does not allow. */
const char *drd_dtype_name(uint32_t type);
/* 1 if type is one of drd_dtype's values. */
int drd_dtype_valid(uint32_t type);
/* Elements per block (32 for Q8_0, else 1) and bytes per block; 0 for an invalid type. */
uint32_t drd_dtype_block_elems(uint32_t type);
uint32_t drd_dtype_block_bytes(uint32_t type);
/* Bytes that n elements take. Returns 0 and leaves *nbytes alone when the type is invalid,
 * n is not a whole number of blocks or the size does not fit in a uint64_t. */
int drd_dtype_nbytes(uint32_t type, uint64_t n, uint64_t *nbytes);

/* Exact: every f16 (subnormals, +-0, +-inf, NaN with its payload) has an f32 twin. */
float drd_f16_to_f32(uint16_t h);
/* Round to nearest, ties to even; overflow gives +-inf; NaN stays a (quiet) NaN. */
uint16_t drd_f32_to_f16(float f);
float drd_bf16_to_f32(uint16_t h);
/* Round to nearest, ties to even; NaN stays a (quiet) NaN. */
uint16_t drd_f32_to_bf16(float f);

/* Rows of f16 / bf16 <-> f32. src may be unaligned (it is read byte-wise). */
void drd_f16_to_f32_row(const void *src, float *dst, size_t n);
void drd_f32_to_f16_row(const float *src, uint16_t *dst, size_t n);
void drd_bf16_to_f32_row(const void *src, float *dst, size_t n);

/* Dequantizes elements [first, first + n) of a Q8_0 array that starts at blocks. */
void drd_q8_0_to_f32(const void *blocks, uint64_t first, uint64_t n, float *dst);
/* Quantizes n elements (n a multiple of 32) like ggml's reference quantizer:
 * d = max|x| / 127 (stored as f16), q = round(x / d). dst holds n / 32 * 34 bytes. */
void drd_f32_to_q8_0(const float *src, size_t n, void *dst);

#endif
