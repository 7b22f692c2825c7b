// Row-wise softmax state on cooperative-matrix accumulators, shared by attn_hsa_cm.comp and
// sas_absorb_cm.comp (read the first for the scheme). VK_KHR_cooperative_matrix leaves open
// which invocation holds which element, so row values (the reference maximum m, the sum l)
// are accumulators whose every element holds its row's value; component-wise operations pair
// the elements of one index in matrices of one type, whoever holds them. Only finding a
// row's maximum needs rows: `id` holds each element's index r * CN + c.
//
// The includer defines CM_C (the f32 accumulator type), CM, CN, SG, SLACK (how far a value
// may pass its row's m before m is raised), NEG (below every real value), the f32 shared
// array cs (CM * CN floats per subgroup from sc) and sync_subgroup().

// Each element's index r * CN + c (exact in f32), in the accumulator layout, through the
// subgroup's scratch at sc.
CM_C element_ids(uint sc, uint lane) {
  for (uint e = lane; e < CM * CN; e += SG) cs[sc + e] = float(e);
  sync_subgroup();
  CM_C id;
  coopMatLoad(id, cs, sc, CN, gl_CooperativeMatrixLayoutRowMajor);
  sync_subgroup(); // loaded before the scratch is reused
  return id;
}

bool exceeds(CM_C z, CM_C m) { // some element of z above its row's m by more than SLACK
  bool up = false;
  for (int i = 0; i < z.length(); i++) up = up || z[i] > m[i] + float(SLACK);
  return up;
}

// m (every element its row's reference) raised to the row maxima of z. Subgroup-uniform
// control flow.
CM_C raised_rows(CM_C m, CM_C z, CM_C id) {
  CM_C mn = m;
  for (uint r = 0; r < CM; r++) {
    float part = NEG;
    for (int i = 0; i < z.length(); i++)
      if (uint(id[i]) / CN == r) part = max(part, z[i]);
    part = subgroupMax(part);
    for (int i = 0; i < z.length(); i++)
      if (uint(id[i]) / CN == r) mn[i] = max(mn[i], part);
  }
  return mn;
}

// Row `lane` (< CM) of x, whose rows hold one value each (m, or l after P 1), through the
// subgroup's scratch at sc.
float row_value(CM_C x, uint sc, uint lane) {
  coopMatStore(x, cs, sc, CN, gl_CooperativeMatrixLayoutRowMajor);
  sync_subgroup();
  const float r = lane < CM ? cs[sc + lane * CN] : 0.0;
  sync_subgroup(); // read before the next store
  return r;
}
