#include "script.h"

#include "../common/buf.h"
#include "capalloc.h"
#include "luajson.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEM_CAP (64u << 20)
#define INSN_BUDGET 50000000 /* instructions a whole file may run */
#define HOOK_STEP 10000

static void l_budget_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_getfield(L, LUA_REGISTRYINDEX, "bg.budget");
    lua_Integer left = lua_tointeger(L, -1) - HOOK_STEP;
    lua_pop(L, 1);
    lua_pushinteger(L, left);
    lua_setfield(L, LUA_REGISTRYINDEX, "bg.budget");
    if (left <= 0)
        luaL_error(L, "instruction budget exhausted (endless loop?)");
}

static int l_undefined_global(lua_State *L)
{
    return luaL_error(L, "undefined global '%s'", luaL_optstring(L, 2, "?"));
}

/*
 * A state with only the safe libraries. Removing load/dofile/loadfile/
 * require keeps a file from reading other files or loading bytecode.
 */
static lua_State *sandbox_new(struct cap_alloc *a)
{
    lua_State *L = cap_state_new(a);
    if (!L)
        return NULL;
    /* pcall/xpcall could catch the budget error and go on, and an xpcall
     * handler or a __gc finalizer runs with hooks off (no budget at all):
     * nothing may catch errors or set finalizers. */
    static const char *const banned[] = {"dofile", "loadfile", "load", "require",
                                         "collectgarbage", "pcall", "xpcall",
                                         "setmetatable", NULL};
    for (int i = 0; banned[i]; i++) {
        lua_pushnil(L);
        lua_setglobal(L, banned[i]);
    }
    /* The budget counts Lua instructions, not time inside one C call: a
     * pathological pattern can backtrack for ever inside string.find.
     * Profiles and settings need no patterns. */
    static const char *const patterns[] = {"find", "match", "gmatch", "gsub", NULL};
    lua_getglobal(L, LUA_STRLIBNAME);
    for (int i = 0; patterns[i]; i++) {
        lua_pushnil(L);
        lua_setfield(L, -2, patterns[i]);
    }
    lua_pop(L, 1);
    lua_pushinteger(L, INSN_BUDGET);
    lua_setfield(L, LUA_REGISTRYINDEX, "bg.budget");
    lua_sethook(L, l_budget_hook, LUA_MASKCOUNT, HOOK_STEP);
    return L;
}

/* Make reading an undefined global an error (set after definitions). */
static void strict_globals(lua_State *L)
{
    lua_pushglobaltable(L);
    lua_newtable(L);
    lua_pushcfunction(L, l_undefined_global);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
}

static int run_file(lua_State *L, const char *path, char *err)
{
    int rc = luaL_loadfilex(L, path, "t");
    if (rc == LUA_OK)
        rc = lua_pcall(L, 0, 0, 0);
    if (rc != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        bg_fail(err, BG_ESCRIPT, "%s", msg ? msg : "unknown Lua error");
        lua_pop(L, 1);
        return BG_ESCRIPT;
    }
    return 0;
}

/* ---- language profiles ---- */

struct loader {
    struct profile_set *set;
    size_t cap;
    const char *path;
};

/* Raise "file:line: language 'x': message" from inside a profile call. */
static int profile_error(lua_State *L, const char *name, const char *fmt, const char *arg)
{
    lua_Debug ar;
    int line = 0;
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar))
        line = ar.currentline;
    lua_pushfstring(L, "%s:%d: language '%s': ", lua_tostring(L, lua_upvalueindex(2)), line,
                    name);
    lua_pushfstring(L, fmt, arg);
    lua_concat(L, 2);
    return lua_error(L);
}

static char *dup_checked(lua_State *L, const char *s)
{
    char *p = strdup(s);
    if (!p)
        luaL_error(L, "out of memory");
    return p;
}

/* A list of strings {"a", "b"} at idx; NULL-terminated C copy. */
static char **to_strv(lua_State *L, int idx, const char *name, const char *key, int nonempty)
{
    if (!lua_istable(L, idx))
        profile_error(L, name, "'%s' must be a list of strings", key);
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        count++;
        lua_Integer k = lua_isinteger(L, -2) ? lua_tointeger(L, -2) : 0;
        if (k < 1 || k > n || lua_type(L, -1) != LUA_TSTRING)
            profile_error(L, name, "'%s' must be a list of strings", key);
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        if (strlen(s) != len)
            profile_error(L, name, "'%s' holds a string with a NUL byte", key);
        lua_pop(L, 1);
    }
    if ((lua_Integer)count != n || (nonempty && n == 0))
        profile_error(L, name, nonempty ? "'%s' must be a non-empty list of strings"
                                        : "'%s' must be a list of strings",
                      key);
    char **v = calloc((size_t)n + 1, sizeof *v);
    if (!v)
        luaL_error(L, "out of memory");
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        v[i - 1] = strdup(lua_tostring(L, -1));
        if (!v[i - 1]) {
            strv_free(v);
            luaL_error(L, "out of memory");
        }
        lua_pop(L, 1);
    }
    return v;
}

static const char *const limit_keys[] = {"timeout_ms", "memory_mb", "output_kb",
                                         "pids",       "nofile",    "tmpfs_mb", NULL};

static void to_limits(lua_State *L, int idx, const char *name, const char *key, struct limits *out)
{
    long *fields[] = {&out->timeout_ms, &out->memory_mb, &out->output_kb,
                      &out->pids,       &out->nofile,    &out->tmpfs_mb};
    if (!lua_istable(L, idx))
        profile_error(L, name, "'%s' must be a table", key);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        int i = 0;
        while (limit_keys[i] && strcmp(limit_keys[i], k) != 0)
            i++;
        if (!limit_keys[i])
            profile_error(L, name, "unknown limit '%s'", k);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) <= 0 ||
            lua_tointeger(L, -1) > 100000000)
            profile_error(L, name, "limit '%s' must be a positive whole number", k);
        *fields[i] = (long)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
}

/* env = { KEY = "value" } becomes "KEY=value" entries. */
static char **to_env(lua_State *L, int idx, const char *name)
{
    if (!lua_istable(L, idx))
        profile_error(L, name, "'%s' must be a table of names to strings", "env");
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            profile_error(L, name, "'%s' must be a table of names to strings", "env");
        const char *k = lua_tostring(L, -2);
        if (!*k || strchr(k, '='))
            profile_error(L, name, "bad environment variable name '%s'", k);
        n++;
        lua_pop(L, 1);
    }
    char **v = calloc(n + 1, sizeof *v);
    if (!v)
        luaL_error(L, "out of memory");
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t kl, vl;
        const char *k = lua_tolstring(L, -2, &kl), *val = lua_tolstring(L, -1, &vl);
        v[i] = malloc(kl + vl + 2);
        if (!v[i]) {
            strv_free(v);
            luaL_error(L, "out of memory");
        }
        snprintf(v[i++], kl + vl + 2, "%s=%s", k, val);
        lua_pop(L, 1);
    }
    return v;
}

static void to_test(lua_State *L, int idx, const char *name, struct profile *p)
{
    if (!lua_istable(L, idx))
        profile_error(L, name, "'%s' must be a table {code = ..., stdout = ...}", "test");
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        if (lua_type(L, -1) != LUA_TSTRING)
            profile_error(L, name, "test.%s must be a string", k);
        if (strcmp(k, "code") == 0)
            p->test_code = dup_checked(L, lua_tostring(L, -1));
        else if (strcmp(k, "stdout") == 0)
            p->test_stdout = dup_checked(L, lua_tostring(L, -1));
        else
            profile_error(L, name, "unknown key 'test.%s'", k);
        lua_pop(L, 1);
    }
    if (!p->test_code || !p->test_stdout)
        profile_error(L, name, "'%s' needs both code and stdout", "test");
}

static char *to_string(lua_State *L, int idx, const char *name, const char *key)
{
    if (lua_type(L, idx) != LUA_TSTRING || !*lua_tostring(L, idx))
        profile_error(L, name, "'%s' must be a non-empty string", key);
    return dup_checked(L, lua_tostring(L, idx));
}

static void fill_field(lua_State *L, const char *name, const char *key, struct profile *p)
{
    int v = lua_gettop(L);
    if (strcmp(key, "aliases") == 0)
        p->aliases = to_strv(L, v, name, key, 0);
    else if (strcmp(key, "version") == 0)
        p->version = to_string(L, v, name, key);
    else if (strcmp(key, "image") == 0)
        p->image = to_string(L, v, name, key);
    else if (strcmp(key, "packages") == 0)
        p->packages = to_strv(L, v, name, key, 0);
    else if (strcmp(key, "file") == 0)
        p->file = to_string(L, v, name, key);
    else if (strcmp(key, "compile") == 0)
        p->compile = to_strv(L, v, name, key, 1);
    else if (strcmp(key, "run") == 0)
        p->run = to_strv(L, v, name, key, 1);
    else if (strcmp(key, "env") == 0)
        p->env = to_env(L, v, name);
    else if (strcmp(key, "limits") == 0)
        to_limits(L, v, name, key, &p->limits);
    else if (strcmp(key, "compile_limits") == 0)
        to_limits(L, v, name, key, &p->compile_limits);
    else if (strcmp(key, "test") == 0)
        to_test(L, v, name, p);
    else
        profile_error(L, name, "unknown key '%s'", key);
}

/* The new profile is the last item: any earlier match is a clash. */
static void check_unique(lua_State *L, struct loader *ld, const struct profile *p)
{
    const struct profile *self = &ld->set->items[ld->set->n - 1];
    if (profile_find(ld->set, p->name) != self)
        profile_error(L, p->name, "name '%s' is already taken", p->name);
    for (size_t a = 0; p->aliases && p->aliases[a]; a++) {
        if (!profile_name_valid(p->aliases[a]))
            profile_error(L, p->name, "alias '%s' must match [a-z0-9][a-z0-9+._-]*",
                          p->aliases[a]);
        if (profile_find(ld->set, p->aliases[a]) != self)
            profile_error(L, p->name, "alias '%s' is already taken", p->aliases[a]);
    }
}

/* language "name" { ... }: the table half. Upvalues: name, path, loader. */
static int l_language_body(lua_State *L)
{
    struct loader *ld = lua_touserdata(L, lua_upvalueindex(3));
    const char *name = lua_tostring(L, lua_upvalueindex(1));
    if (!lua_istable(L, 1) || lua_gettop(L) != 1)
        return profile_error(L, name, "%s", "expected language \"name\" { ... }");
    if (ld->set->n == ld->cap) {
        size_t cap = ld->cap ? ld->cap * 2 : 16;
        struct profile *items = realloc(ld->set->items, cap * sizeof *items);
        if (!items)
            return luaL_error(L, "out of memory");
        ld->set->items = items;
        ld->cap = cap;
    }
    struct profile *p = &ld->set->items[ld->set->n++];
    memset(p, 0, sizeof *p);
    p->name = dup_checked(L, name);
    lua_Debug ar;
    int line = (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar)) ? ar.currentline : 0;
    lua_pushfstring(L, "%s:%d", ld->path, line);
    p->source = dup_checked(L, lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            return profile_error(L, name, "%s", "keys must be names");
        fill_field(L, name, lua_tostring(L, -2), p);
        lua_settop(L, 2);
    }
    if (!p->image || !p->file || !p->run)
        return profile_error(L, name, "missing required field '%s'",
                             !p->image ? "image" : !p->file ? "file" : "run");
    check_unique(L, ld, p);
    return 0;
}

static int l_language(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    if (!profile_name_valid(name))
        return luaL_error(L, "language name '%s' must match [a-z0-9][a-z0-9+._-]*", name);
    lua_settop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1)); /* path */
    lua_pushvalue(L, lua_upvalueindex(2)); /* loader */
    lua_pushcclosure(L, l_language_body, 3);
    return 1;
}

int script_load_languages(const char *path, struct profile_set **out, char err[BG_ERRLEN])
{
    struct cap_alloc a = {0, MEM_CAP};
    struct loader ld = {profile_set_new(), 0, path};
    lua_State *L = NULL;
    int rc = BG_ENOMEM;

    if (!ld.set)
        goto out;
    L = sandbox_new(&a);
    if (!L)
        goto out;
    lua_pushstring(L, path);
    lua_pushlightuserdata(L, &ld);
    lua_pushcclosure(L, l_language, 2);
    lua_setglobal(L, "language");
    strict_globals(L);
    rc = run_file(L, path, err);
    if (rc == 0 && ld.set->n == 0)
        rc = bg_fail(err, BG_ESCRIPT, "%s: no language defined", path);
out:
    if (L)
        lua_close(L);
    if (rc < 0) {
        profile_set_unref(ld.set);
        return rc;
    }
    *out = ld.set;
    return 0;
}

/* ---- settings ---- */

static int config_value(lua_State *L, struct config *cfg, const char *key, char *err)
{
    char name[64];
    char text[64];
    const char *value;
    snprintf(name, sizeof name, "%s", key);
    for (char *p = name; *p; p++)
        if (*p == '_')
            *p = '-';
    if (!config_known(name, NULL))
        return bg_fail(err, BG_EINVAL, "unknown setting '%s'", key);
    switch (lua_type(L, -1)) {
    case LUA_TBOOLEAN:
        value = lua_toboolean(L, -1) ? "true" : "false";
        break;
    case LUA_TNUMBER:
        if (!lua_isinteger(L, -1))
            return bg_fail(err, BG_EINVAL, "setting '%s' must be a whole number", key);
        snprintf(text, sizeof text, "%lld", (long long)lua_tointeger(L, -1));
        value = text;
        break;
    case LUA_TSTRING:
        value = lua_tostring(L, -1);
        break;
    default:
        return bg_fail(err, BG_EINVAL, "setting '%s' has the wrong type", key);
    }
    return config_set(cfg, name, value, err);
}

/* A list of strings at the top of the stack, as a NULL-terminated vector. */
static int read_string_list(lua_State *L, char ***out)
{
    if (!lua_istable(L, -1))
        return BG_EINVAL;
    size_t n = lua_rawlen(L, -1);
    char **v = calloc(n + 1, sizeof *v);
    if (!v)
        return BG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        v[i] = lua_type(L, -1) == LUA_TSTRING ? strdup(lua_tostring(L, -1)) : NULL;
        lua_pop(L, 1);
        if (!v[i]) {
            strv_free(v);
            return BG_EINVAL;
        }
    }
    *out = v;
    return 0;
}

static int config_images(lua_State *L, struct config *cfg, char *err)
{
    char **v = NULL;
    if (read_string_list(L, &v) < 0)
        return bg_fail(err, BG_EINVAL, "allow_images must be a list of image names");
    strv_free(cfg->allow_images);
    cfg->allow_images = v;
    return 0;
}

/* Whether a settings name (max_count or max-count) is one of the flags. */
static int is_flag_name(const char *key)
{
    char name[64];
    snprintf(name, sizeof name, "%s", key);
    for (char *p = name; *p; p++)
        if (*p == '_')
            *p = '-';
    return config_known(name, NULL);
}

/* plugins = {"auth", "ratelimit"}: the same as --plugins auth,ratelimit. */
static int config_plugins(lua_State *L, struct config *cfg, char *err)
{
    char **names = NULL;
    if (read_string_list(L, &names) < 0)
        return bg_fail(err, BG_EINVAL, "plugins must be a list of plugin names");
    struct buf b = BUF_INIT;
    for (size_t i = 0; names && names[i]; i++)
        buf_appendf(&b, "%s%s", i ? "," : "", names[i]);
    strv_free(names);
    int rc = config_set(cfg, "plugins", b.data ? b.data : "", err);
    buf_free(&b);
    return rc;
}

/* Any other table is the settings of the plugin of that name. */
static int config_plugin_settings(lua_State *L, struct config *cfg, const char *name, char *err)
{
    const char *why = NULL;
    cJSON *all = cJSON_Parse(cfg->plugin_settings ? cfg->plugin_settings : "{}");
    cJSON *mine = to_json(L, -1, 0, &why);
    if (!all || !mine) {
        cJSON_Delete(all);
        cJSON_Delete(mine);
        return bg_fail(err, BG_EINVAL, "settings '%s': %s", name, why ? why : "bad table");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(all, name);
    cJSON_AddItemToObject(all, name, mine);
    char *text = cJSON_PrintUnformatted(all);
    cJSON_Delete(all);
    if (!text)
        return BG_ENOMEM;
    free(cfg->plugin_settings);
    cfg->plugin_settings = text;
    return 0;
}

int script_load_config(const char *path, struct config *cfg, char err[BG_ERRLEN])
{
    struct cap_alloc a = {0, MEM_CAP};
    char msg[BG_ERRLEN];
    lua_State *L = sandbox_new(&a);
    int rc;
    if (!L)
        return BG_ENOMEM;
    /* Remember which globals the sandbox itself defines. */
    lua_newtable(L);
    lua_pushglobaltable(L);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pushvalue(L, -2);
        lua_pushboolean(L, 1);
        lua_settable(L, -6); /* builtins[key] = true */
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "bg.builtins");
    strict_globals(L);
    rc = run_file(L, path, err);
    if (rc < 0)
        goto out;
    lua_getfield(L, LUA_REGISTRYINDEX, "bg.builtins");
    lua_pushglobaltable(L);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pushvalue(L, -2);
        lua_gettable(L, -5);
        int builtin = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (!builtin && lua_type(L, -2) == LUA_TSTRING) {
            const char *key = lua_tostring(L, -2);
            if (strcmp(key, "allow_images") == 0)
                rc = config_images(L, cfg, msg);
            else if (strcmp(key, "plugins") == 0)
                rc = config_plugins(L, cfg, msg);
            else if (lua_istable(L, -1) && !is_flag_name(key))
                rc = config_plugin_settings(L, cfg, key, msg);
            else
                rc = config_value(L, cfg, key, msg);
            if (rc < 0) {
                bg_fail(err, rc, "%s: %s", path, msg);
                goto out;
            }
        }
        lua_pop(L, 1);
    }
    rc = 0;
out:
    lua_close(L);
    return rc;
}
