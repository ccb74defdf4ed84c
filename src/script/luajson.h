/*
 * luajson: cJSON values to Lua values and back. Internal to the script
 * module (it is the only one that sees Lua).
 *
 * A Lua table is a JSON array when its keys are exactly 1..n (n > 0), else
 * an object whose keys must be strings. Nesting is bounded.
 */
#ifndef BG_LUAJSON_H
#define BG_LUAJSON_H

#include <cjson/cJSON.h>
#include <lua.h>

/* Push j; raises a Lua error when nested too deep. Returns 1. */
int push_json(lua_State *L, const cJSON *j, int depth);
/* The value at idx as JSON, or NULL with *why set. At most 100,000 values
 * and 32 levels; arrays keep their order. Raises no Lua error. */
cJSON *to_json(lua_State *L, int idx, int depth, const char **why);

#endif
