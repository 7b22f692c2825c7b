/* The SPIR-V embedded at build time: one entry per shaders/<name>.comp (see CMakeLists.txt). */
#ifndef DRD_VK_SHADERS_H
#define DRD_VK_SHADERS_H

#include <stddef.h>
#include <stdint.h>

typedef struct drd_shader_entry {
  const char *name;
  const uint32_t *code;
  const size_t *size; /* bytes */
} drd_shader_entry;

extern const drd_shader_entry drd_shader_table[]; /* ends with a NULL name */

static inline const drd_shader_entry *drd_shader_find(const char *name) {
  for (const drd_shader_entry *e = drd_shader_table; e->name; e++) {
    const char *a = e->name, *b = name;
    while (*a && *a == *b) a++, b++;
    if (*a == *b) return e;
  }
  return NULL;
}

#endif
