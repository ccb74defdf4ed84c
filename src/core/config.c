#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile.h"

enum kind { K_LONG, K_BOOL, K_STR };

struct flag {
    const char *name;
    enum kind kind;
    size_t off;
    long min, max;
    const char *help;
};

#define F_LONG(n, field, lo, hi, h) {n, K_LONG, offsetof(struct config, field), lo, hi, h}
#define F_STR(n, field, h) {n, K_STR, offsetof(struct config, field), 0, 0, h}

static const struct flag flags[] = {
    F_LONG("backlog", backlog, 1, 1000000, "jobs that may wait for a worker (default 2000)"),
    F_LONG("memory", memory_mb, 16, 1 << 20, "memory per run in MB, swap included (default 512)"),
    F_LONG("cpu", cpu_shares, 2, 262144, "CPU shares per run (default 1024)"),
    F_LONG("output", output_kb, 1, 1 << 20, "stdout+stderr cap per run in KB (default 30)"),
    F_LONG("timeout", timeout_s, 1, 86400, "wall-clock limit per run in seconds (default 30)"),
    F_LONG("workers", workers, 1, 1024,
           "worker threads running jobs (default 4; with --queue, start runs none unless given)"),
    F_LONG("port", port, 0, 65535, "TCP port to listen on (default 8080)"),
    {"gvisor", K_BOOL, offsetof(struct config, gvisor), 0, 1, "run containers with runtime runsc"},
    F_STR("host", host, "address to listen on (default 127.0.0.1)"),
    F_STR("runtime", runtime, "container runtime name (overrides --gvisor)"),
    F_STR("languages", languages, "language profiles file (default lua/languages.lua)"),
    F_STR("docker-host", docker_host, "engine address (default $DOCKER_HOST, else the local socket)"),
    F_LONG("max-count", max_count, 1, 1000, "largest count per request (default 10)"),
    F_LONG("max-body", max_body_kb, 1, 1 << 20, "largest request body in KB (default 1024)"),
    F_LONG("grace", grace_s, 0, 3600, "seconds SIGTERM waits for runs in flight (default 10)"),
    F_LONG("pool", pool, 0, 256, "containers kept started ahead of demand, in all (default 8)"),
    F_STR("config", config_file, "Lua settings file (default lua/config.lua when present)"),
    F_STR("log-level", log_level, "debug, info, warn or error (default info)"),
    F_STR("plugins", plugins, "policy plugins to enable, in order (e.g. auth,ratelimit)"),
    F_STR("plugin-dir", plugin_dir, "folder searched for plugins before plugins/"),
    F_STR("queue", queue, "shared queue redis://[[user]:password@]host[:port][/db] (default in-process)"),
    F_LONG("claim-after", claim_after_s, 1, 3600,
           "seconds a worker may be silent before its jobs go to another (default 30)"),
    F_LONG("result-ttl", result_ttl_s, 1, 86400, "seconds an unread result stays in Redis (default 60)"),
    F_LONG("queue-timeout", queue_timeout_s, 1, 86400,
           "seconds a shared-queue job may go unanswered before it fails (default 300)"),
};

#define NFLAGS (sizeof flags / sizeof flags[0])

static const struct flag *find(const char *name)
{
    for (size_t i = 0; i < NFLAGS; i++)
        if (strcmp(flags[i].name, name) == 0)
            return &flags[i];
    return NULL;
}

int config_known(const char *name, int *is_bool)
{
    const struct flag *f = find(name);
    if (f && is_bool)
        *is_bool = f->kind == K_BOOL;
    return f != NULL;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof *c);
    c->backlog = 2000;
    c->memory_mb = 512;
    c->cpu_shares = 1024;
    c->output_kb = 30;
    c->timeout_s = 30;
    c->workers = CONFIG_WORKERS_UNSET;
    c->port = 8080;
    c->max_count = 10;
    c->max_body_kb = 1024;
    c->grace_s = 10;
    c->pool = 8;
    c->claim_after_s = 30;
    c->result_ttl_s = 60;
    c->queue_timeout_s = 300;
    c->host = strdup("127.0.0.1");
    c->languages = strdup("lua/languages.lua");
    c->docker_host = dup_or_null(getenv("DOCKER_HOST"));
    c->log_level = strdup("info");
}

void config_free(struct config *c)
{
    for (size_t i = 0; i < NFLAGS; i++)
        if (flags[i].kind == K_STR) {
            char **p = (char **)((char *)c + flags[i].off);
            free(*p);
            *p = NULL;
        }
    strv_free(c->allow_images);
    c->allow_images = NULL;
    free(c->plugin_settings);
    c->plugin_settings = NULL;
}

int config_set(struct config *c, const char *name, const char *value, char err[BG_ERRLEN])
{
    const struct flag *f = find(name);
    if (!f)
        return bg_fail(err, BG_EINVAL, "unknown flag --%s", name);
    void *field = (char *)c + f->off;
    if (f->kind == K_BOOL) {
        if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
            *(int *)field = 1;
        else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
            *(int *)field = 0;
        else
            return bg_fail(err, BG_EINVAL, "--%s takes true or false, not '%s'", name, value);
        return 0;
    }
    if (f->kind == K_STR) {
        char *copy = strdup(value);
        if (!copy)
            return BG_ENOMEM;
        free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end)
        return bg_fail(err, BG_EINVAL, "--%s takes a whole number, not '%s'", name, value);
    if (v < f->min || v > f->max)
        return bg_fail(err, BG_EINVAL, "--%s must be between %ld and %ld, not %ld", name, f->min,
                       f->max, v);
    *(long *)field = v;
    return 0;
}

int config_parse_args(struct config *c, int argc, char **argv, int *help, char err[BG_ERRLEN])
{
    *help = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            *help = 1;
            return 0;
        }
        if (strncmp(a, "--", 2) != 0 || !a[2])
            return bg_fail(err, BG_EINVAL, "unexpected argument '%s' (flags start with --)", a);
        char name[64];
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (len >= sizeof name)
            return bg_fail(err, BG_EINVAL, "unknown flag %s", a);
        memcpy(name, a + 2, len);
        name[len] = '\0';
        int is_bool = 0;
        if (!config_known(name, &is_bool))
            return bg_fail(err, BG_EINVAL, "unknown flag --%s", name);
        const char *value = eq ? eq + 1 : NULL;
        if (!value && is_bool)
            value = "true";
        if (!value) {
            if (i + 1 >= argc)
                return bg_fail(err, BG_EINVAL, "flag --%s needs a value", name);
            value = argv[++i];
        }
        int rc = config_set(c, name, value, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void config_print_help(void)
{
    printf("Flags of 'bg-compiler start':\n");
    for (size_t i = 0; i < NFLAGS; i++) {
        const struct flag *f = &flags[i];
        printf("  --%-14s %s %s\n", f->name,
               f->kind == K_LONG ? "N   " : f->kind == K_STR ? "TEXT" : "    ", f->help);
    }
}

const char *config_runtime(const struct config *c)
{
    if (c->runtime && *c->runtime)
        return c->runtime;
    return c->gvisor ? "runsc" : NULL;
}

long config_workers(const struct config *c, int worker_process)
{
    if (c->workers != CONFIG_WORKERS_UNSET)
        return c->workers;
    return c->queue && !worker_process ? 0 : 4;
}
