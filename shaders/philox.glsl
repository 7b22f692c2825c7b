// Philox4x32-10 (Salmon et al., SC'11), as SPEC 9 and host/philox.c define it: multipliers
// 0xD2511F53 / 0xCD9E8D57, key increments 0x9E3779B9 / 0xBB67AE85, 10 rounds, the key bumped
// before every round but the first. umulExtended gives the 32 x 32 -> 64-bit product as
// (hi, lo) words in core GLSL, so the words equal the host's bit for bit on every device.

uvec4 philox4x32_10(uvec4 c, uvec2 k) {
  for (int r = 0; r < 10; r++) {
    if (r > 0) k += uvec2(0x9E3779B9u, 0xBB67AE85u);
    uint hi0, lo0, hi1, lo1;
    umulExtended(0xD2511F53u, c.x, hi0, lo0);
    umulExtended(0xCD9E8D57u, c.z, hi1, lo1);
    c = uvec4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
  }
  return c;
}
