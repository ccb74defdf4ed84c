/*
 * capalloc: the Lua allocator with a ceiling, shared by every sandboxed
 * state (operator files and plugins). Internal to the script module.
 * Past the ceiling an allocation fails and Lua raises "not enough memory",
 * so a script cannot exhaust the service's memory.
 */
#ifndef BG_CAPALLOC_H
#define BG_CAPALLOC_H

#include <stddef.h>

struct cap_alloc {
    size_t used;
    size_t cap;
};

/* A lua_Alloc; ud is a struct cap_alloc. */
void *cap_alloc_fn(void *ud, void *ptr, size_t osize, size_t nsize);

/* A Lua state under a's ceiling with only the safe libraries opened (base,
 * string, table, math, utf8), the stack left empty; NULL if out of memory.
 * Each caller then removes or wraps what it must. */
struct lua_State *cap_state_new(struct cap_alloc *a);

#endif
