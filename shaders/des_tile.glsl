// Tile placement shared by the scalar (des_common.glsl) and cooperative-matrix (des_cm.glsl)
// DES GEMMs. Needs DES_GEMM_MODE, pc, WG, BM, BN, the bindings tile_expert, seg_off and
// (mode 1) pair_tok, and the globals row0, n0, wb1, wb2 and (mode 1) shared tok_s[BM].

// Sets row0 (first row of the tile in the padded pair rows), n0 (first output column), wb1 and
// wb2 (the expert's weights in the two weight bindings) and, in mode 1, gathers the tile's
// token ids into tok_s. false: a surplus tile of a short last chunk, to return at once
// (uniform per workgroup, before any barrier).
bool des_tile_begin() {
  const uint tile = gl_WorkGroupID.y;
  uint e_rel;
  if (pc.expert == DRD_DES_NONE) { // all experts, one dispatch: tiles are laid end to end
    e_rel = tile_expert[tile];
    row0 = tile * BM;
  } else { // one expert: its weights, or a chunk of them, are what is bound
    e_rel = 0u;
    row0 = seg_off[pc.expert] + tile * BM;
  }
  n0 = pc.n_base + gl_WorkGroupID.x * BN;
  if (n0 >= pc.n_end) return false;
  wb1 = pc.w_off + e_rel * pc.w_estride;
  wb2 = pc.w2_off + e_rel * pc.w_estride;
#if DES_GEMM_MODE == 1
  for (uint r = gl_LocalInvocationID.x; r < BM; r += WG) tok_s[r] = pair_tok[row0 + r];
  barrier();
#endif
  return true;
}

// Where tile row m of A starts (element offset in its binding). Mode 1 gathers the token rows
// named in tok_s (row_ok false for a padding row: the caller loads zeros); mode 2 reads h,
// whose rows are the tile's own.
uint des_a_row(uint m, out bool row_ok) {
#if DES_GEMM_MODE == 1
  uint t = tok_s[m];
  row_ok = t != DRD_DES_NONE;
  return pc.a_off + (row_ok ? t : 0u) * pc.K;
#else
  row_ok = true;
  return (row0 + m) * pc.K;
#endif
}
