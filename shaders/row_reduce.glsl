// Workgroup-wide reductions for the row kernels (one workgroup per row). Plain shared-memory
// trees: they need no subgroup feature, which mobile drivers do not all expose, and cost a
// few barriers per row, small next to the row's memory traffic.
// Needs: local_size_x = WG (a power of two), shared float red_buf[WG].

float wg_reduce_sum(float v) {
  uint lid = gl_LocalInvocationID.x;
  red_buf[lid] = v;
  barrier();
  for (uint s = WG / 2; s > 0; s >>= 1) {
    if (lid < s) red_buf[lid] += red_buf[lid + s];
    barrier();
  }
  float r = red_buf[0];
  barrier(); // red_buf is reused by the next reduction
  return r;
}

float wg_reduce_max(float v) {
  uint lid = gl_LocalInvocationID.x;
  red_buf[lid] = v;
  barrier();
  for (uint s = WG / 2; s > 0; s >>= 1) {
    if (lid < s) red_buf[lid] = max(red_buf[lid], red_buf[lid + s]);
    barrier();
  }
  float r = red_buf[0];
  barrier();
  return r;
}
