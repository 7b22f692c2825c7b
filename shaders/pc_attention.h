/* Push-constant layouts of the RoPE and HSA attention kernels, shared by the C runtime
 * (runtime/ops_attention.c) and the GLSL shaders: scalar 32-bit members only, so C and
 * std430 layouts agree byte for byte. In GLSL: layout(push_constant) uniform Push { drd_pc_x pc; }; */
#ifndef DRD_PC_ATTENTION_H
#define DRD_PC_ATTENTION_H

#ifdef __STDC_VERSION__ /* C, not GLSL */
#include <stdint.h>
typedef uint32_t uint;
#define DRD_PCA_STRUCT(name) typedef struct name name; struct name
#else
#define DRD_PCA_STRUCT(name) struct name
#endif

/* RoPE on a chunk of rows of x: [N, heads * 2 * n_pairs] f32 (shaders/rope_f32.comp).
 * x_off / o_off / t_off: element offset of the chunk's first row inside the X / O / table
 * bindings (bindings start at the storage-aligned offset at or before the row). */
DRD_PCA_STRUCT(drd_pc_rope) {
  uint rows;
  uint heads;
  uint n_pairs;  /* dh / 2 */
  uint x_off;
  uint o_off;
  uint t_off;
};

/* One HSA attention dispatch (shaders/attn_hsa_f32*.comp): the work items of one group,
 * q / out bound over a window of query rows, k / v over a window of key rows. */
DRD_PCA_STRUCT(drd_pc_attn) {
  uint N;          /* tokens: keys j >= N are masked, rows i >= N are not written */
  uint H;          /* heads; a row of q/k/v/out has H * DH elements */
  uint B;          /* HSA block size in tokens */
  uint q_row0;     /* first token row of the q / out window */
  uint q_off;      /* element offset of row q_row0 inside the q binding */
  uint o_off;      /* element offset of row q_row0 inside the out binding (f32 or f16 elements) */
  uint kv_row0;    /* first token row of the k / v window */
  uint kv_off;     /* element offset of row kv_row0 inside the k and v bindings */
  uint item_off;   /* uvec4 offset of this dispatch's first item inside the items binding */
  uint col_base;   /* CSR index of the col binding's first element */
  float scale_log2; /* 1 / sqrt(dh) * log2(e): scores are kept in the log2 domain */
};

/* One merge dispatch (shaders/attn_hsa_merge.comp): folds the partial results (slots) of
 * split rows, and the running state of rows that span several key windows. */
#define DRD_ATTN_MERGE_LOAD 1u  /* a running state (out = unnormalised o, stats = (m, l)) exists */
#define DRD_ATTN_MERGE_FINAL 2u /* the row's last piece: write out = o / l; else store the state */
DRD_PCA_STRUCT(drd_pc_attn_merge) {
  uint N;
  uint H;
  uint B;
  uint q_row0;     /* first token row of the out / stats window */
  uint q_off;      /* element offset of row q_row0 inside the out binding */
  uint st_off;     /* element offset of row q_row0 inside the stats binding */
  uint item_off;   /* uvec4 offset of the first merge item inside the items binding */
};

#endif
