// Where tile row m of a DES GEMM's A operand starts (element offset in its binding), shared by
// the scalar (des_common.glsl) and cooperative-matrix (des_cm.glsl) kernels. Mode 1 gathers the
// token rows named in tok_s (row_ok false for a padding row: the caller loads zeros); mode 2
// reads h, whose rows are the tile's own. Needs DES_GEMM_MODE, pc, row0 and (mode 1) tok_s.
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
