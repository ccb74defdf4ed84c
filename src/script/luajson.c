/* luajson: JSON values to Lua and back, for plugins and settings. */
#include "luajson.h"

#include <lauxlib.h>

#define MAX_DEPTH 32


int push_json(lua_State *L, const cJSON *j, int depth)
{
    if (depth > MAX_DEPTH)
        return luaL_error(L, "JSON nested too deep");
    luaL_checkstack(L, 4, "JSON");
    if (cJSON_IsString(j))
        lua_pushstring(L, j->valuestring);
    else if (cJSON_IsNumber(j)) {
        if (j->valuedouble == (double)(lua_Integer)j->valuedouble)
            lua_pushinteger(L, (lua_Integer)j->valuedouble);
        else
            lua_pushnumber(L, j->valuedouble);
    } else if (cJSON_IsBool(j))
        lua_pushboolean(L, cJSON_IsTrue(j));
    else if (cJSON_IsArray(j)) {
        lua_createtable(L, cJSON_GetArraySize(j), 0);
        lua_Integer i = 1;
        const cJSON *c;
        cJSON_ArrayForEach(c, j)
        {
            push_json(L, c, depth + 1);
            lua_rawseti(L, -2, i++);
        }
    } else if (cJSON_IsObject(j)) {
        lua_newtable(L);
        const cJSON *c;
        cJSON_ArrayForEach(c, j)
        {
            push_json(L, c, depth + 1);
            lua_setfield(L, -2, c->string);
        }
    } else
        lua_pushnil(L);
    return 1;
}

/* A table is an array when its keys are exactly 1..n (n > 0). */
static int is_array(lua_State *L, int idx)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
    if (n == 0)
        return 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n) {
            lua_pop(L, 1);
            return 0;
        }
        count++;
    }
    return count == n;
}

cJSON *to_json(lua_State *L, int idx, int depth, const char **why)
{
    idx = lua_absindex(L, idx);
    if (depth > MAX_DEPTH) {
        *why = "nested too deep";
        return NULL;
    }
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return cJSON_CreateNull();
    case LUA_TBOOLEAN:
        return cJSON_CreateBool(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        return cJSON_CreateNumber(lua_tonumber(L, idx));
    case LUA_TSTRING:
        return cJSON_CreateString(lua_tostring(L, idx));
    case LUA_TTABLE:
        break;
    default:
        *why = "only nil, booleans, numbers, strings and tables can be encoded";
        return NULL;
    }
    int array = is_array(L, idx);
    cJSON *out = array ? cJSON_CreateArray() : cJSON_CreateObject();
    luaL_checkstack(L, 4, "JSON");
    lua_pushnil(L);
    while (out && lua_next(L, idx)) {
        cJSON *v = to_json(L, -1, depth + 1, why);
        if (!v || (!array && lua_type(L, -2) != LUA_TSTRING)) {
            if (!v || !*why)
                *why = *why ? *why : "object keys must be strings";
            cJSON_Delete(v);
            cJSON_Delete(out);
            lua_pop(L, 2);
            return NULL;
        }
        if (array)
            cJSON_AddItemToArray(out, v);
        else
            cJSON_AddItemToObject(out, lua_tostring(L, -2), v);
        lua_pop(L, 1);
    }
    return out;
}

