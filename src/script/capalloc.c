#include "capalloc.h"

#include <lauxlib.h>
#include <lualib.h>
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

struct lua_State *cap_state_new(struct cap_alloc *a)
{
    lua_State *L = lua_newstate(cap_alloc_fn, a);
    if (!L)
        return NULL;
    luaL_requiref(L, "_G", luaopen_base, 1);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
    luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
    lua_settop(L, 0);
    return L;
}
