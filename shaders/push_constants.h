/* Push-constant layouts shared by the C runtime and the GLSL shaders: one struct per
 * kernel, scalar 32-bit members only, so C and std430 layouts agree byte for byte.
 * In GLSL: layout(push_constant) uniform Push { drd_pc_x pc; }; */
#ifndef DRD_PUSH_CONSTANTS_H
#define DRD_PUSH_CONSTANTS_H

#ifdef __STDC_VERSION__ /* C, not GLSL */
#include <stdint.h>
typedef uint32_t uint;
#define DRD_PC_STRUCT(name) typedef struct name name; struct name
#else
#define DRD_PC_STRUCT(name) struct name
#endif

/* out[i] = op(a[i], b[i]) for i < n; alpha for scale */
DRD_PC_STRUCT(drd_pc_eltwise) {
  uint n;
  float alpha;
};

#endif
