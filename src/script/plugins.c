#include "plugins.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "capalloc.h"
#include "luajson.h"

#define HOOK_STEP 1000
#define READ_FILE_MAX (1 << 20)

/* One Lua state of the pool, with its budgets. */
struct lstate {
    lua_State *L;
    struct cap_alloc mem;
    long budget;         /* instructions left in this call */
    struct timespec deadline;
    int exhausted;       /* the budget ran out: every catch rethrows */
    int broken;          /* rebuild before the next use */
    struct plugin_host *host;
    const struct plugin_request *req; /* during a call, for req.file_content */
};

struct plugin_host {
    atomic_int refs;
    char **names;  /* enabled plugins, in order */
    char **paths;  /* the file each was loaded from */
    size_t n;
    char *settings; /* JSON object */
    struct store *store;
    pthread_mutex_t lock;
    pthread_cond_t freed;
    struct lstate states[PLUGIN_STATES];
    int in_use[PLUGIN_STATES];
};

/* ---- budgets ---- */

static struct lstate *state_of(lua_State *L) { return *(struct lstate **)lua_getextraspace(L); }

static int past(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/*
 * Once the budget is spent the hook fires at every instruction and raises
 * again, and our pcall/xpcall rethrow, so a plugin cannot catch its way
 * past the limit (redis does the same for its scripts).
 */
static void l_budget_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    struct lstate *st = state_of(L);
    st->budget -= HOOK_STEP;
    if (!st->exhausted && st->budget > 0 && !past(&st->deadline))
        return;
    if (!st->exhausted) {
        st->exhausted = 1;
        lua_sethook(L, l_budget_hook, LUA_MASKCOUNT, 1);
    }
    luaL_error(L, "plugin exceeded its budget (%d ms or %ld instructions)",
               (int)PLUGIN_TIME_BUDGET_MS, PLUGIN_INSN_BUDGET);
}

static void budget_start(struct lstate *st)
{
    st->budget = PLUGIN_INSN_BUDGET;
    st->exhausted = 0;
    clock_gettime(CLOCK_MONOTONIC, &st->deadline);
    st->deadline.tv_nsec += (PLUGIN_TIME_BUDGET_MS % 1000) * 1000000L;
    st->deadline.tv_sec += PLUGIN_TIME_BUDGET_MS / 1000 + st->deadline.tv_nsec / 1000000000L;
    st->deadline.tv_nsec %= 1000000000L;
    lua_sethook(st->L, l_budget_hook, LUA_MASKCOUNT, HOOK_STEP);
}

/* ---- the safe library ---- */

/* pcall that cannot swallow the budget error. */
static int l_pcall(lua_State *L)
{
    luaL_checkany(L, 1);
    int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    if (state_of(L)->exhausted)
        return lua_error(L);
    lua_pushboolean(L, status == LUA_OK);
    lua_insert(L, 1);
    return lua_gettop(L);
}

/*
 * xpcall: Lua runs a message handler at the point of the error, where a
 * budget error leaves hooks off; we call the handler after unwinding
 * instead, with hooks on.
 */
static int l_xpcall(lua_State *L)
{
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_rotate(L, 1, 1); /* handler below everything */
    lua_remove(L, 3);    /* the original handler argument */
    int status = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0);
    if (state_of(L)->exhausted)
        return lua_error(L);
    if (status == LUA_OK) {
        lua_pushboolean(L, 1);
        lua_replace(L, 1);
        return lua_gettop(L);
    }
    lua_pushvalue(L, 1); /* handler */
    lua_rotate(L, -2, 1);
    lua_call(L, 1, 1);
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
}

/* Finalizers run with hooks off, outside any budget: none allowed. */
static int l_setmetatable(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_istable(L, 2) && lua_getfield(L, 2, "__gc") != LUA_TNIL)
        return luaL_error(L, "__gc metamethods are not allowed in plugins");
    lua_settop(L, 2);
    lua_setmetatable(L, 1);
    return 1;
}

static int l_log(lua_State *L)
{
    const char *level = luaL_checkstring(L, 1);
    const char *msg = luaL_checkstring(L, 2);
    enum log_level lv;
    if (log_parse_level(level, &lv) < 0)
        return luaL_error(L, "bg.log: level must be debug, info, warn or error");
    lua_Debug ar;
    const char *src = "?";
    int line = 0;
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar)) {
        src = ar.short_src;
        line = ar.currentline;
    }
    log_msg(lv, "plugin %s:%d: %.1000s", src, line, msg);
    return 0;
}

static int l_print(lua_State *L)
{
    struct buf b = BUF_INIT;
    for (int i = 1; i <= lua_gettop(L); i++) {
        size_t n;
        const char *s = luaL_tolstring(L, i, &n);
        buf_append(&b, i > 1 ? "\t" : "", i > 1);
        buf_append(&b, s, n);
        lua_pop(L, 1);
    }
    log_info("plugin: %.1000s", b.data ? b.data : "");
    buf_free(&b);
    return 0;
}

/* Only the service's own variables: a plugin has no business with others. */
static int l_env(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *v = strncmp(name, "BG_", 3) == 0 ? getenv(name) : NULL;
    if (v)
        lua_pushstring(L, v);
    else
        lua_pushnil(L);
    return 1;
}

static int l_read_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    FILE *f = fopen(path, "r");
    if (!f) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(errno));
        return 2;
    }
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, READ_FILE_MAX);
    size_t n = fread(p, 1, READ_FILE_MAX, f);
    fclose(f);
    luaL_pushresultsize(&b, n);
    return 1;
}

/* One line appended to "stdout" or a file, in a single write. */
static int l_append_line(lua_State *L)
{
    const char *target = luaL_checkstring(L, 1);
    size_t n;
    const char *line = luaL_checklstring(L, 2, &n);
    char *copy = malloc(n + 1);
    if (!copy)
        return luaL_error(L, "out of memory");
    memcpy(copy, line, n);
    copy[n] = '\n';
    int fd = strcmp(target, "stdout") == 0
                 ? STDOUT_FILENO
                 : open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    ssize_t w = fd >= 0 ? write(fd, copy, n + 1) : -1;
    int err = errno;
    if (fd > STDOUT_FILENO)
        close(fd);
    free(copy);
    if (w != (ssize_t)(n + 1))
        return luaL_error(L, "bg.append_line(%s): %s", target, strerror(err));
    return 0;
}

/* Compare secrets in time that does not depend on where they differ. */
static int l_secure_equal(lua_State *L)
{
    size_t a, b;
    const unsigned char *x = (const unsigned char *)luaL_checklstring(L, 1, &a);
    const unsigned char *y = (const unsigned char *)luaL_checklstring(L, 2, &b);
    unsigned diff = a != b;
    size_t n = a > b ? a : b;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned)(x[i % (a ? a : 1)] ^ y[i % (b ? b : 1)]) * (a && b);
    lua_pushboolean(L, diff == 0);
    return 1;
}

static int l_now(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

static int l_time(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}


static int l_json_encode(lua_State *L)
{
    const char *why = NULL;
    luaL_checkany(L, 1);
    cJSON *j = to_json(L, 1, 0, &why);
    if (!j)
        return luaL_error(L, "bg.json_encode: %s", why ? why : "cannot encode");
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s)
        return luaL_error(L, "out of memory");
    lua_pushstring(L, s);
    free(s);
    return 1;
}

/* ---- the shared store ---- */

static struct store *store_of(lua_State *L) { return state_of(L)->host->store; }

static int l_store_get(lua_State *L)
{
    struct store_value v;
    if (!store_get(store_of(L), luaL_checkstring(L, 1), &v))
        lua_pushnil(L);
    else if (v.is_number)
        lua_pushnumber(L, v.number);
    else
        lua_pushlstring(L, v.text, v.len);
    return 1;
}

static int l_store_set(lua_State *L)
{
    struct store_value v = {0};
    const char *key = luaL_checkstring(L, 1);
    if (lua_type(L, 2) == LUA_TNUMBER) {
        v.is_number = 1;
        v.number = lua_tonumber(L, 2);
    } else {
        const char *s = luaL_checklstring(L, 2, &v.len);
        if (v.len >= sizeof v.text)
            return luaL_error(L, "store.set: value over %d bytes", STORE_MAX_VALUE - 1);
        memcpy(v.text, s, v.len);
    }
    int rc = store_set(store_of(L), key, &v, luaL_optnumber(L, 3, 0));
    if (rc < 0)
        return luaL_error(L, "store.set: %s", bg_strerror(rc));
    return 0;
}

static int l_store_incr(lua_State *L)
{
    double out;
    int rc = store_incr(store_of(L), luaL_checkstring(L, 1), luaL_optnumber(L, 2, 1),
                        luaL_optnumber(L, 3, 0), &out);
    if (rc < 0)
        return luaL_error(L, "store.incr: %s", rc == BG_EINVAL ? "not a number" : bg_strerror(rc));
    lua_pushnumber(L, out);
    return 1;
}

static int l_store_delete(lua_State *L)
{
    store_delete(store_of(L), luaL_checkstring(L, 1));
    return 0;
}

static int l_store_take(lua_State *L)
{
    double remaining, retry;
    int rc = store_take(store_of(L), luaL_checkstring(L, 1), luaL_checknumber(L, 2),
                        luaL_checknumber(L, 3), &remaining, &retry);
    if (rc < 0)
        return luaL_error(L, "store.take: bad arguments or key in use as a value");
    lua_pushboolean(L, rc);
    lua_pushnumber(L, remaining);
    lua_pushnumber(L, retry);
    return 3;
}

/* ---- states ---- */

static int l_file_content(lua_State *L)
{
    const struct plugin_request *r = state_of(L)->req;
    lua_Integer i = luaL_checkinteger(L, 1);
    if (!r || !r->parsed || i < 1 || (size_t)i > r->nfiles)
        return luaL_error(L, "req.file_content: no file %d", (int)i);
    lua_pushlstring(L, r->files[i - 1].data, r->files[i - 1].size);
    return 1;
}

static int l_undefined(lua_State *L)
{
    return luaL_error(L, "undefined global '%s'", luaL_optstring(L, 2, "?"));
}

static void set_funcs(lua_State *L, const luaL_Reg *fns)
{
    for (; fns->name; fns++) {
        lua_pushcfunction(L, fns->func);
        lua_setfield(L, -2, fns->name);
    }
}

/* Copy field `name` of the table at -1 into the table at -2. */
static void copy_field(lua_State *L, const char *name)
{
    lua_getfield(L, -1, name);
    lua_setfield(L, -3, name);
}

/*
 * A fresh environment for one plugin: the safe parts of the standard
 * library, bg and store, and strict globals. No io, os.execute, load,
 * require, package, debug, coroutine (a coroutine would catch errors
 * like pcall), collectgarbage, dofile or loadfile.
 */
static void push_env(lua_State *L)
{
    static const char *const base[] = {"assert", "error",    "ipairs", "next",  "pairs",
                                        "select", "tonumber", "tostring", "type", "rawequal",
                                        "rawget", "rawlen",   "rawset", "getmetatable", NULL};
    static const luaL_Reg safe[] = {{"pcall", l_pcall},
                                    {"xpcall", l_xpcall},
                                    {"setmetatable", l_setmetatable},
                                    {"print", l_print},
                                    {NULL, NULL}};
    static const luaL_Reg bg[] = {{"log", l_log},
                                  {"env", l_env},
                                  {"read_file", l_read_file},
                                  {"append_line", l_append_line},
                                  {"secure_equal", l_secure_equal},
                                  {"now", l_now},
                                  {"time", l_time},
                                  {"json_encode", l_json_encode},
                                  {NULL, NULL}};
    static const luaL_Reg store[] = {{"get", l_store_get},   {"set", l_store_set},
                                     {"incr", l_store_incr}, {"delete", l_store_delete},
                                     {"take", l_store_take}, {NULL, NULL}};
    lua_newtable(L); /* env */
    lua_pushglobaltable(L);
    for (size_t i = 0; base[i]; i++)
        copy_field(L, base[i]);
    static const char *const libs[] = {"string", "table", "math", "utf8", NULL};
    for (size_t i = 0; libs[i]; i++)
        copy_field(L, libs[i]);
    lua_pop(L, 1);
    set_funcs(L, safe);
    lua_newtable(L);
    lua_pushcfunction(L, l_time);
    lua_setfield(L, -2, "time");
    lua_setfield(L, -2, "os");
    lua_newtable(L);
    set_funcs(L, bg);
    lua_setfield(L, -2, "bg");
    lua_newtable(L);
    set_funcs(L, store);
    lua_setfield(L, -2, "store");
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "_G");
    lua_newtable(L);
    lua_pushcfunction(L, l_undefined);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
}

static int msgh(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

/* Load one plugin file into st; leaves nothing on the stack. The plugin's
 * table goes to registry["bg.plugins"][i]. */
static int load_one(struct lstate *st, size_t i, char *err)
{
    lua_State *L = st->L;
    struct plugin_host *h = st->host;
    int rc = BG_ESCRIPT;
    budget_start(st);
    lua_pushcfunction(L, msgh);
    if (luaL_loadfilex(L, h->paths[i], "t") != LUA_OK) {
        bg_fail(err, rc, "plugin %s: %s", h->names[i], lua_tostring(L, -1));
        goto out;
    }
    push_env(L);
    lua_setupvalue(L, -2, 1); /* _ENV */
    if (lua_pcall(L, 0, 1, -2) != LUA_OK) {
        bg_fail(err, rc, "plugin %s: %s", h->names[i], lua_tostring(L, -1));
        goto out;
    }
    if (!lua_istable(L, -1)) {
        bg_fail(err, rc, "plugin %s (%s): the file must return a table of hooks", h->names[i],
                h->paths[i]);
        goto out;
    }
    static const char *const hooks[] = {"init", "on_request", "on_result", NULL};
    for (size_t k = 0; hooks[k]; k++) {
        int t = lua_getfield(L, -1, hooks[k]);
        lua_pop(L, 1);
        if (t != LUA_TNIL && t != LUA_TFUNCTION) {
            bg_fail(err, rc, "plugin %s (%s): '%s' must be a function", h->names[i], h->paths[i],
                    hooks[k]);
            goto out;
        }
    }
    if (lua_getfield(L, -1, "init") == LUA_TFUNCTION) {
        cJSON *all = cJSON_Parse(h->settings ? h->settings : "{}");
        const cJSON *mine = cJSON_GetObjectItemCaseSensitive(all, h->names[i]);
        if (mine)
            push_json(L, mine, 0);
        else
            lua_newtable(L);
        cJSON_Delete(all);
        budget_start(st);
        if (lua_pcall(L, 1, 0, -4) != LUA_OK) {
            bg_fail(err, rc, "plugin %s: init failed: %s", h->names[i], lua_tostring(L, -1));
            goto out;
        }
    } else
        lua_pop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, "bg.plugins");
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
    rc = 0;
out:
    lua_settop(L, 0);
    lua_sethook(L, NULL, 0, 0);
    return rc;
}

static void state_close(struct lstate *st)
{
    if (st->L)
        lua_close(st->L);
    st->L = NULL;
}

static int state_open(struct plugin_host *h, struct lstate *st, char *err)
{
    st->host = h;
    st->broken = 0;
    st->mem.used = 0;
    st->mem.cap = PLUGIN_MEM_CAP;
    st->L = cap_state_new(&st->mem);
    if (!st->L)
        return bg_fail(err, BG_ENOMEM, "cannot create a Lua state");
    *(struct lstate **)lua_getextraspace(st->L) = st;
    lua_State *L = st->L;
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "bg.plugins");
    for (size_t i = 0; i < h->n; i++) {
        int rc = load_one(st, i, err);
        if (rc < 0) {
            state_close(st);
            return rc;
        }
    }
    return 0;
}

/* ---- the host ---- */

static char *find_plugin(const char *name, const struct plugin_options *o)
{
    const char *dirs[] = {o->dir, o->default_dir ? o->default_dir : "plugins"};
    char path[4096];
    for (size_t i = 0; i < 2; i++) {
        if (!dirs[i] || !*dirs[i])
            continue;
        snprintf(path, sizeof path, "%s/%s.lua", dirs[i], name);
        if (access(path, R_OK) == 0)
            return strdup(path);
    }
    return NULL;
}

static int plugin_name_ok(const char *s)
{
    if (!*s || strlen(s) > 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static int parse_names(struct plugin_host *h, const struct plugin_options *o, char *err)
{
    char *list = strdup(o->names ? o->names : "");
    char *save = NULL;
    if (!list)
        return BG_ENOMEM;
    size_t cap = strlen(list) / 2 + 2;
    h->names = calloc(cap, sizeof *h->names);
    h->paths = calloc(cap, sizeof *h->paths);
    int rc = h->names && h->paths ? 0 : BG_ENOMEM;
    for (char *t = strtok_r(list, ",", &save); rc == 0 && t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        if (!plugin_name_ok(t)) {
            rc = bg_fail(err, BG_EINVAL, "bad plugin name '%.64s'", t);
            break;
        }
        h->names[h->n] = strdup(t);
        h->paths[h->n] = find_plugin(t, o);
        if (!h->paths[h->n]) {
            free(h->names[h->n]);
            rc = bg_fail(err, BG_ENOTFOUND, "plugin '%s' not found in %s%s%s", t,
                         o->dir ? o->dir : "", o->dir ? " or " : "",
                         o->default_dir ? o->default_dir : "plugins");
            break;
        }
        h->n++;
    }
    free(list);
    return rc;
}

int plugins_load(const struct plugin_options *o, struct store *store, struct plugin_host **out,
                 char err[BG_ERRLEN])
{
    struct plugin_host *h = calloc(1, sizeof *h);
    if (!h)
        return bg_fail(err, BG_ENOMEM, "out of memory");
    atomic_init(&h->refs, 1);
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->freed, NULL);
    h->store = store;
    h->settings = o->settings ? strdup(o->settings) : NULL;
    int rc = parse_names(h, o, err);
    for (size_t i = 0; rc == 0 && h->n && i < PLUGIN_STATES; i++)
        rc = state_open(h, &h->states[i], err);
    if (rc < 0) {
        plugins_unref(h);
        return rc;
    }
    *out = h;
    return 0;
}

void plugins_ref(struct plugin_host *h) { atomic_fetch_add(&h->refs, 1); }

void plugins_unref(struct plugin_host *h)
{
    if (!h || atomic_fetch_sub(&h->refs, 1) != 1)
        return;
    for (size_t i = 0; i < PLUGIN_STATES; i++)
        state_close(&h->states[i]);
    for (size_t i = 0; i < h->n; i++) {
        free(h->names[i]);
        free(h->paths[i]);
    }
    free(h->names);
    free(h->paths);
    free(h->settings);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->freed);
    free(h);
}

size_t plugins_count(const struct plugin_host *h) { return h ? h->n : 0; }

static struct lstate *acquire(struct plugin_host *h)
{
    pthread_mutex_lock(&h->lock);
    for (;;) {
        for (size_t i = 0; i < PLUGIN_STATES; i++)
            if (!h->in_use[i]) {
                h->in_use[i] = 1;
                pthread_mutex_unlock(&h->lock);
                return &h->states[i];
            }
        pthread_cond_wait(&h->freed, &h->lock);
    }
}

/* A state whose hook broke may hold half-made state (or be out of
 * memory): rebuild it from the files before anyone uses it again. */
static void release(struct plugin_host *h, struct lstate *st)
{
    char err[BG_ERRLEN];
    st->req = NULL;
    if (st->broken || !st->L) {
        state_close(st);
        if (state_open(h, st, err) < 0)
            log_error("plugins: cannot rebuild a Lua state: %s", err);
    } else
        lua_gc(st->L, LUA_GCCOLLECT);
    pthread_mutex_lock(&h->lock);
    h->in_use[st - h->states] = 0;
    pthread_cond_signal(&h->freed);
    pthread_mutex_unlock(&h->lock);
}

static void push_pairs(lua_State *L, const struct plugin_kv *kv, size_t n, int lower)
{
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        if (lower) {
            char name[128];
            size_t k = 0;
            for (; kv[i].name[k] && k < sizeof name - 1; k++)
                name[k] = (char)(kv[i].name[k] >= 'A' && kv[i].name[k] <= 'Z'
                                     ? kv[i].name[k] + 32
                                     : kv[i].name[k]);
            name[k] = '\0';
            lua_pushstring(L, kv[i].value ? kv[i].value : "");
            lua_setfield(L, -2, name);
        } else {
            lua_pushstring(L, kv[i].value ? kv[i].value : "");
            lua_setfield(L, -2, kv[i].name);
        }
    }
}

static void set_str(lua_State *L, const char *k, const char *v)
{
    if (v) {
        lua_pushstring(L, v);
        lua_setfield(L, -2, k);
    }
}

static void set_int(lua_State *L, const char *k, long v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

/* The req table a hook sees (see docs/LUA_API.md). */
static void push_request(lua_State *L, const struct plugin_request *r, const char *ctx_json)
{
    lua_newtable(L);
    set_str(L, "request_id", r->request_id);
    set_str(L, "method", r->method);
    set_str(L, "path", r->path);
    set_str(L, "client", r->client);
    push_pairs(L, r->query, r->nquery, 0);
    lua_setfield(L, -2, "query");
    push_pairs(L, r->headers, r->nheaders, 1);
    lua_setfield(L, -2, "headers");
    lua_newtable(L);
    lua_setfield(L, -2, "response_headers");
    cJSON *ctx = ctx_json ? cJSON_Parse(ctx_json) : NULL;
    if (ctx)
        push_json(L, ctx, 0);
    else
        lua_newtable(L);
    cJSON_Delete(ctx);
    lua_setfield(L, -2, "ctx");
    lua_pushcfunction(L, l_file_content);
    lua_setfield(L, -2, "file_content");
    if (!r->parsed)
        return;
    set_str(L, "lang", r->lang);
    lua_createtable(L, (int)r->nfiles, 0);
    for (size_t i = 0; i < r->nfiles; i++) {
        lua_createtable(L, 0, 2);
        set_str(L, "name", r->files[i].name);
        set_int(L, "size", (long)r->files[i].size);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "files");
    lua_pushlstring(L, r->stdin_data ? r->stdin_data : "", r->stdin_len);
    lua_setfield(L, -2, "stdin");
    lua_newtable(L);
    for (size_t i = 0; r->args && r->args[i]; i++) {
        lua_pushstring(L, r->args[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "args");
    set_int(L, "count", r->count);
    set_int(L, "max_count", r->max_count);
    lua_createtable(L, 0, 3);
    set_int(L, "timeout_ms", r->timeout_ms);
    set_int(L, "memory_mb", r->memory_mb);
    set_int(L, "output_kb", r->output_kb);
    lua_setfield(L, -2, "limits");
}

/* Call plugin i's hook with the values above it on the stack (the req
 * table at `req`, and nargs in all). 0, or BG_ESCRIPT with the traceback
 * logged. */
static int call_hook(struct lstate *st, size_t i, const char *hook, int nargs, int nres,
                     const char *request_id)
{
    lua_State *L = st->L;
    struct plugin_host *h = st->host;
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, msgh);
    lua_getfield(L, LUA_REGISTRYINDEX, "bg.plugins");
    lua_rawgeti(L, -1, (lua_Integer)i + 1);
    lua_remove(L, -2);
    if (lua_getfield(L, -1, hook) != LUA_TFUNCTION) {
        lua_settop(L, base + nargs);
        return 1; /* no such hook: nothing to do */
    }
    lua_remove(L, -2); /* the plugin table */
    for (int a = 0; a < nargs; a++)
        lua_pushvalue(L, base + 1 + a);
    budget_start(st);
    int status = lua_pcall(L, nargs, nres, base + nargs + 1);
    lua_sethook(L, NULL, 0, 0);
    if (status != LUA_OK) {
        log_error("[%s] plugin %s (%s): %s failed: %s", request_id, h->names[i], h->paths[i],
                  hook, lua_tostring(L, -1));
        st->broken = 1;
        lua_settop(L, base + nargs);
        return BG_ESCRIPT;
    }
    lua_remove(L, base + nargs + 1); /* msgh */
    return 0;
}

static int lowered(lua_State *L, int tbl, const char *key, long *value, long lo, const char **why)
{
    lua_getfield(L, tbl, key);
    if (!lua_isnil(L, -1)) {
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < lo || lua_tointeger(L, -1) > *value) {
            lua_pop(L, 1);
            *why = key;
            return -1;
        }
        *value = (long)lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
    return 0;
}

/* Read back what the hooks changed in req (at index req). */
static int read_back(lua_State *L, int req, const struct plugin_request *r,
                     struct plugin_verdict *v, const char **why)
{
    buf_reset(&v->headers);
    free(v->ctx_json);
    v->ctx_json = NULL;
    if (r->parsed) {
        if (lowered(L, req, "count", &v->count, 1, why) < 0)
            return -1;
        if (lua_getfield(L, req, "limits") != LUA_TTABLE) {
            lua_pop(L, 1);
            return *why = "limits", -1;
        }
        int lim = lua_gettop(L);
        if (lowered(L, lim, "timeout_ms", &v->timeout_ms, 1, why) < 0 ||
            lowered(L, lim, "memory_mb", &v->memory_mb, 1, why) < 0 ||
            lowered(L, lim, "output_kb", &v->output_kb, 1, why) < 0)
            return lua_pop(L, 1), -1;
        lua_pop(L, 1);
    }
    if (lua_getfield(L, req, "response_headers") == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING ||
                strpbrk(lua_tostring(L, -2), "\r\n: ") || strpbrk(lua_tostring(L, -1), "\r\n")) {
                lua_pop(L, 3);
                return *why = "response_headers", -1;
            }
            buf_appendf(&v->headers, "%s: %s\n", lua_tostring(L, -2), lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    lua_getfield(L, req, "ctx");
    const char *bad = NULL;
    cJSON *ctx = to_json(L, -1, 0, &bad);
    lua_pop(L, 1);
    if (!ctx)
        return *why = "ctx", -1;
    v->ctx_json = cJSON_PrintUnformatted(ctx);
    cJSON_Delete(ctx);
    return 0;
}

/* The hook's answer: nothing/true goes on; false, status, message refuses. */
static int verdict_of(lua_State *L, int first, struct plugin_verdict *v)
{
    int t = lua_type(L, first);
    if (t == LUA_TNIL || (t == LUA_TBOOLEAN && lua_toboolean(L, first)))
        return 0;
    if (t != LUA_TBOOLEAN || !lua_isinteger(L, first + 1) || lua_tointeger(L, first + 1) < 400 ||
        lua_tointeger(L, first + 1) > 599 ||
        (!lua_isnil(L, first + 2) && lua_type(L, first + 2) != LUA_TSTRING))
        return -1;
    v->refused = 1;
    v->status = (int)lua_tointeger(L, first + 1);
    snprintf(v->message, sizeof v->message, "%s",
             lua_isnil(L, first + 2) ? "refused by policy" : lua_tostring(L, first + 2));
    return 1;
}

int plugins_on_request(struct plugin_host *h, const struct plugin_request *r,
                       struct plugin_verdict *v)
{
    memset(v, 0, sizeof *v);
    v->count = r->count;
    v->timeout_ms = r->timeout_ms;
    v->memory_mb = r->memory_mb;
    v->output_kb = r->output_kb;
    if (!h || h->n == 0)
        return 0;
    struct lstate *st = acquire(h);
    lua_State *L = st->L;
    const char *why = NULL;
    if (!L) {
        v->failed = 1;
        release(h, st);
        return 0;
    }
    st->req = r;
    push_request(L, r, NULL);
    int req = lua_gettop(L);
    /* In order; the first refusal wins. After each hook, what it changed
     * is checked at once, so an error names the plugin that made it. */
    for (size_t i = 0; i < h->n && !v->refused && !v->failed; i++) {
        int rc = call_hook(st, i, "on_request", 1, 3, r->request_id);
        if (rc == 1)
            continue;
        if (rc == 0 && verdict_of(L, req + 1, v) < 0) {
            log_error("[%s] plugin %s: on_request returned garbage (want nothing, true, or "
                      "false, status 400-599, message)",
                      r->request_id, h->names[i]);
            rc = BG_ESCRIPT;
        }
        lua_settop(L, req);
        if (rc < 0)
            v->failed = 1;
        else if (read_back(L, req, r, v, &why) < 0) {
            log_error("[%s] plugin %s: req.%s was set to something not allowed (limits and "
                      "count may only be lowered; headers and ctx hold strings and tables)",
                      r->request_id, h->names[i], why);
            v->failed = 1;
        }
    }
    if (v->failed)
        st->broken = 1;
    lua_settop(L, 0);
    release(h, st);
    return 0;
}

void plugin_verdict_free(struct plugin_verdict *v)
{
    buf_free(&v->headers);
    free(v->ctx_json);
    v->ctx_json = NULL;
}

void plugins_on_result(struct plugin_host *h, const struct plugin_request *r,
                       const char *ctx_json, cJSON **results)
{
    if (!h || h->n == 0)
        return;
    struct lstate *st = acquire(h);
    lua_State *L = st->L;
    if (!L) {
        release(h, st);
        return;
    }
    st->req = r;
    push_request(L, r, ctx_json);
    push_json(L, *results, 0);
    int base = lua_gettop(L) - 2;
    int changed = 0;
    for (size_t i = 0; i < h->n; i++) {
        int rc = call_hook(st, i, "on_result", 2, 0, r->request_id);
        changed |= rc == 0;
        lua_settop(L, base + 2);
    }
    if (changed) {
        const char *why = NULL;
        cJSON *out = to_json(L, base + 2, 0, &why);
        if (out && (cJSON_IsArray(out) || cJSON_GetArraySize(out) == 0)) {
            if (!cJSON_IsArray(out)) { /* an emptied table reads as {} */
                cJSON_Delete(out);
                out = cJSON_CreateArray();
            }
            cJSON_Delete(*results);
            *results = out;
        } else {
            log_error("[%s] plugins: on_result left results that are not a list (%s); "
                      "answering the results unchanged",
                      r->request_id, why ? why : "not an array");
            cJSON_Delete(out);
        }
    }
    lua_settop(L, 0);
    release(h, st);
}
