/* luajson: JSON values to Lua and back, for plugins and settings. */
#include "luajson.h"

#include <lauxlib.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/jsonstr.h"
#include "../common/utf8.h"

#define MAX_DEPTH 32
#define TO_JSON_MAX_NODES 100000


int push_json(lua_State *L, const cJSON *j, int depth)
{
    if (depth > MAX_DEPTH)
        return luaL_error(L, "JSON nested too deep");
    luaL_checkstack(L, 4, "JSON");
    if (cJSON_IsString(j))
        lua_pushstring(L, j->valuestring);
    else if (cJSON_IsRaw(j) && j->valuestring && j->valuestring[0] == '"') {
        /* Text with NUL bytes, quoted by us (see common/jsonstr.h). */
        struct buf text = BUF_INIT;
        if (json_unquote(j->valuestring, &text) == 0)
            lua_pushlstring(L, text.data ? text.data : "", text.len);
        else
            lua_pushnil(L);
        buf_free(&text);
    }
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

static cJSON *encode(lua_State *L, int idx, int depth, long *budget, const char **why);

/* A Lua string may hold any bytes: repair them to UTF-8, and keep NULs. */
static cJSON *encode_string(lua_State *L, int idx)
{
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (utf8_valid_prefix(s, len) == len && strlen(s) == len)
        return cJSON_CreateString(s);
    struct buf safe = BUF_INIT, lit = BUF_INIT;
    cJSON *item = NULL;
    if (utf8_repair(s, len, 0, &safe) == 0 && json_quote(safe.data, safe.len, &lit) == 0)
        item = cJSON_CreateRaw(lit.data);
    buf_free(&safe);
    buf_free(&lit);
    return item;
}

/* The items of a table at idx into out, in order for an array. */
static int encode_items(lua_State *L, int idx, int array, cJSON *out, int depth, long *budget,
                        const char **why)
{
    if (array) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            cJSON *v = encode(L, -1, depth + 1, budget, why);
            lua_pop(L, 1);
            if (!v)
                return -1;
            cJSON_AddItemToArray(out, v);
        }
        return 0;
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            *why = "object keys must be strings";
            lua_pop(L, 2);
            return -1;
        }
        cJSON *v = encode(L, -1, depth + 1, budget, why);
        if (!v) {
            lua_pop(L, 2);
            return -1;
        }
        cJSON_AddItemToObject(out, lua_tostring(L, -2), v);
        lua_pop(L, 1);
    }
    return 0;
}

static cJSON *encode(lua_State *L, int idx, int depth, long *budget, const char **why)
{
    idx = lua_absindex(L, idx);
    /* Depth alone does not bound a table that holds itself twice at every
     * level; a node budget does (cJSON's memory is not under Lua's cap). */
    if (depth > MAX_DEPTH || --*budget < 0 || !lua_checkstack(L, 4)) {
        *why = depth > MAX_DEPTH ? "nested too deep" : "too large to encode";
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
        return encode_string(L, idx);
    case LUA_TTABLE:
        break;
    default:
        *why = "only nil, booleans, numbers, strings and tables can be encoded";
        return NULL;
    }
    int array = is_array(L, idx);
    cJSON *out = array ? cJSON_CreateArray() : cJSON_CreateObject();
    if (out && encode_items(L, idx, array, out, depth, budget, why) < 0) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

cJSON *to_json(lua_State *L, int idx, int depth, const char **why)
{
    long budget = TO_JSON_MAX_NODES;
    *why = NULL;
    return encode(L, idx, depth, &budget, why);
}
