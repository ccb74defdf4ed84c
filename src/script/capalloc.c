#include "capalloc.h"

#include <stdlib.h>

void *cap_alloc_fn(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct cap_alloc *a = ud;
    if (!ptr)
        osize = 0; /* for a new block Lua passes the object type here */
    if (nsize == 0) {
        a->used -= osize;
        free(ptr);
        return NULL;
    }
    if (nsize > osize && a->used + (nsize - osize) > a->cap)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p)
        a->used = a->used - osize + nsize;
    return p;
}
