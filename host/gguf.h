/* A generic GGUF v3 parser over a read-only buffer in memory. It knows nothing of DrDiff:
 * it checks the container (every length, count, offset and size against the buffer,
 * duplicate keys and tensor names, alignment, overlapping tensor data) so that model_file.c
 * and anything else can then read the index without further bounds checks. */
#ifndef DRD_GGUF_H
#define DRD_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "drdiff.h"

#define DRD_GGUF_VERSION 3
#define DRD_GGUF_DEFAULT_ALIGNMENT 32
#define DRD_GGUF_MAX_DIMS 4

typedef enum drd_gguf_type {
  DRD_GGUF_U8 = 0,
  DRD_GGUF_I8 = 1,
  DRD_GGUF_U16 = 2,
  DRD_GGUF_I16 = 3,
  DRD_GGUF_U32 = 4,
  DRD_GGUF_I32 = 5,
  DRD_GGUF_F32 = 6,
  DRD_GGUF_BOOL = 7,
  DRD_GGUF_STRING = 8,
  DRD_GGUF_ARRAY = 9,
  DRD_GGUF_U64 = 10,
  DRD_GGUF_I64 = 11,
  DRD_GGUF_F64 = 12,
} drd_gguf_type;

/* A string inside the buffer: not NUL-terminated, may hold any bytes. */
typedef struct drd_gguf_str {
  const char *ptr;
  uint64_t len;
} drd_gguf_str;

typedef struct drd_gguf_kv {
  const char *key; /* NUL-terminated copy (keys never hold a NUL byte) */
  drd_gguf_type type;
  /* Scalars, widened: u for U8/U16/U32/U64/BOOL, i for I8..I64, f for F32/F64 (exact),
   * s for STRING. */
  union {
    uint64_t u;
    int64_t i;
    double f;
    drd_gguf_str s;
  } v;
  /* ARRAY only: element type (never ARRAY: nested arrays are rejected), count, the raw
   * little-endian elements in the buffer (fixed-size types), and for string arrays one
   * drd_gguf_str per element. */
  drd_gguf_type arr_type;
  uint64_t arr_count;
  const unsigned char *arr_data;
  drd_gguf_str *arr_strs;
} drd_gguf_kv;

typedef struct drd_gguf_tensor {
  const char *name; /* NUL-terminated copy (names never hold a NUL byte) */
  uint32_t n_dims;  /* 1..4 */
  uint64_t ne[DRD_GGUF_MAX_DIMS]; /* fastest-first; each >= 1; unused entries are 1 */
  uint32_t type;    /* a drd_dtype */
  uint64_t offset;  /* from the start of the data section; a multiple of the alignment */
  uint64_t n_elements;
  uint64_t nbytes;
  const unsigned char *data; /* base + data_offset + offset; nbytes of it lie in the buffer */
} drd_gguf_tensor;

typedef struct drd_gguf {
  const unsigned char *base;
  size_t size;
  uint32_t version;
  uint32_t alignment;   /* general.alignment or 32 */
  uint64_t data_offset; /* start of the data section in the buffer */
  uint64_t n_kv;
  drd_gguf_kv *kv;      /* in file order */
  uint64_t n_tensors;
  drd_gguf_tensor *tensors; /* in file order */
  void *priv;           /* sorted indexes and the name pool */
} drd_gguf;

/* Parses a GGUF v3 buffer; the buffer must outlive the result. On failure returns
 * DRD_ERROR_BAD_MODEL (or DRD_ERROR_OUT_OF_HOST_MEMORY) with drd_last_error() saying what
 * and where; the message is not logged, so a caller can add its own context. */
drd_status drd_gguf_parse(const void *data, size_t size, drd_gguf **out);
void drd_gguf_free(drd_gguf *g);

/* NULL when absent. O(log n). */
const drd_gguf_kv *drd_gguf_find_kv(const drd_gguf *g, const char *key);
const drd_gguf_tensor *drd_gguf_find_tensor(const drd_gguf *g, const char *name);

/* "u8", "string", "array", ...; "invalid" for other values. */
const char *drd_gguf_type_name(uint32_t type);
/* Array elements (i < arr_count, element type checked by the caller): unsigned types and
 * bool widen to uint64, signed to int64, F32/F64 to double. */
uint64_t drd_gguf_arr_uint(const drd_gguf_kv *kv, uint64_t i);
int64_t drd_gguf_arr_int(const drd_gguf_kv *kv, uint64_t i);
double drd_gguf_arr_float(const drd_gguf_kv *kv, uint64_t i);
/* 1 if s holds exactly the C string z. */
int drd_gguf_str_eq(drd_gguf_str s, const char *z);

#endif
