/*
 * plugins: operator policy in Lua (auth, rate limits, tiers, audit).
 *
 * A plugin is a Lua file returning {name =, init =, on_request =,
 * on_result =}. This unit loads the enabled plugins into a small pool of
 * Lua states (hooks of different requests run in parallel, one state per
 * call, never behind one global lock) and calls their hooks through one
 * protected-call path. Every call has an instruction budget and a time
 * budget the plugin cannot catch (pcall rethrows it), every state a memory
 * cap; a policy hook that fails, runs out of budget or returns garbage
 * fails closed. The C side sees only plain structs: the core never sees
 * Lua. The whole Lua API is in docs/LUA_API.md.
 */
#ifndef BG_PLUGINS_H
#define BG_PLUGINS_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "../common/buf.h"
#include "../common/err.h"
#include "../core/store.h"

#define PLUGIN_STATES 4
#define PLUGIN_INSN_BUDGET 10000000L /* per hook call: ~100 ms of CPU */
#define PLUGIN_TIME_BUDGET_MS 200L   /* per hook call, wall clock */
#define PLUGIN_MEM_CAP (32u << 20)   /* per Lua state */

struct plugin_kv {
    const char *name;
    const char *value;
};

struct plugin_file {
    const char *name;
    const char *data;
    size_t size;
};

/* What a hook sees of a request (all borrowed, valid during the call). */
struct plugin_request {
    const char *request_id, *method, *path, *client;
    const struct plugin_kv *query;
    size_t nquery;
    const struct plugin_kv *headers;
    size_t nheaders;
    int parsed; /* a valid /compile request: the fields below are set */
    const char *lang;
    const struct plugin_file *files;
    size_t nfiles;
    const char *stdin_data;
    size_t stdin_len;
    char *const *args;
    long count, max_count;
    long timeout_ms, memory_mb, output_kb; /* what the run would get */
};

/* What the on_request hooks decided. */
struct plugin_verdict {
    int refused;          /* a plugin said no: status and message */
    int failed;           /* a hook broke: fail closed with a 500 */
    int status;
    char message[BG_ERRLEN];
    long count, timeout_ms, memory_mb, output_kb; /* possibly lowered */
    struct buf headers;   /* "Name: value\n" lines to add to the answer */
    char *ctx_json;       /* req.ctx, carried to on_result (malloc'd) */
};

struct plugin_options {
    const char *names;     /* "a,b,c" in order, or NULL/"" for none */
    const char *dir;       /* searched first (may be NULL) */
    const char *default_dir; /* "plugins" */
    const char *settings;  /* JSON object: plugin name -> its settings */
};

struct plugin_host;

/* Load every enabled plugin into each state; an error names file, line
 * and reason. A host with no plugins is valid (hooks cost nothing). */
int plugins_load(const struct plugin_options *o, struct store *store, struct plugin_host **out,
                 char err[BG_ERRLEN]);
void plugins_ref(struct plugin_host *h);
void plugins_unref(struct plugin_host *h);
/* How many plugins are enabled. */
size_t plugins_count(const struct plugin_host *h);

/* Run the on_request hooks in order; the first refusal wins. 0 always;
 * the outcome is in v (free it with plugin_verdict_free). */
int plugins_on_request(struct plugin_host *h, const struct plugin_request *r,
                       struct plugin_verdict *v);
void plugin_verdict_free(struct plugin_verdict *v);

/* Run the on_result hooks: they may annotate or redact the results array
 * (replaced in *results). An observer that fails is logged and ignored. */
void plugins_on_result(struct plugin_host *h, const struct plugin_request *r,
                       const char *ctx_json, cJSON **results);

#endif
