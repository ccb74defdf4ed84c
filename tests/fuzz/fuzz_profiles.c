/*
 * fuzz_profiles: the Lua loaders (src/script/script.h) on arbitrary files.
 *
 * The input is the whole file. It is written to a memfd and loaded through
 * /proc/self/fd/N, first as a languages file (script_load_languages), then
 * as a settings file (script_load_config). The sandbox has an instruction
 * budget and a memory cap, so no input may hang (libFuzzer's -timeout),
 * exhaust memory (-rss_limit_mb), crash or leak. Checked as well: a
 * refusal carries a message; an accepted set holds only complete profiles
 * that profile_find returns by name and alias, and each can serve a raw
 * request and a JSON request with files (so operator argv templates meet
 * request.c); accepted settings are within the flags' ranges.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/config.h"
#include "core/profile.h"
#include "core/request.h"
#include "script/script.h"

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "fuzz_profiles: check failed at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fd = -1;
static char path[64];
static struct config server;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fd = memfd_create("fuzz_profiles.lua", MFD_CLOEXEC);
    if (fd < 0) {
        perror("fuzz_profiles: memfd_create");
        abort();
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    config_defaults(&server);
    return 0;
}

static void write_input(const uint8_t *data, size_t size)
{
    CHECK(ftruncate(fd, 0) == 0);
    for (size_t off = 0; off < size;) {
        ssize_t n = pwrite(fd, data + off, size - off, (off_t)off);
        CHECK(n > 0);
        off += (size_t)n;
    }
}

static int strv_ok(char *const *v, int nonempty)
{
    return v && (!nonempty || v[0] != NULL);
}

static void check_limits(const struct limits *l)
{
    const long v[] = {l->timeout_ms, l->memory_mb, l->output_kb, l->pids, l->nofile, l->tmpfs_mb};
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
        CHECK(v[k] >= 0 && v[k] <= 100000000);
}

static void try_requests(const struct profile_set *set, const struct profile *p)
{
    struct run_spec spec;
    size_t count;
    const struct profile *got;
    struct request_error e;
    char json[512];

    struct request_in raw = {"text/plain", p->name, "2", "x\n", 2};
    int rc = request_parse(&raw, set, &server, &spec, &count, &got, &e);
    CHECK(rc == 0 || (e.status >= 400 && e.code && e.message[0]));
    if (rc == 0)
        CHECK(got == p && count == 2 && spec.run && spec.nfiles == 1);
    run_spec_free(&spec);

    snprintf(json, sizeof json,
             "{\"lang\":\"%s\",\"files\":[{\"name\":\"a.c\",\"content\":\"x\"},"
             "{\"name\":\"d/b.ts\",\"content\":\"eQ==\",\"encoding\":\"base64\"}],"
             "\"args\":[\"1\"],\"stdin\":\"in\"}",
             p->name);
    struct request_in js = {"application/json", NULL, NULL, json, strlen(json)};
    rc = request_parse(&js, set, &server, &spec, &count, &got, &e);
    CHECK(rc == 0 || (e.status >= 400 && e.code && e.message[0]));
    if (rc == 0)
        CHECK(got == p && spec.nfiles == 2 && spec.run && spec.stdin_len == 2);
    run_spec_free(&spec);
}

static void check_set(const struct profile_set *set)
{
    CHECK(set->n >= 1 && set->items);
    for (size_t i = 0; i < set->n; i++) {
        const struct profile *p = &set->items[i];
        CHECK(p->name && profile_name_valid(p->name));
        CHECK(p->image && p->image[0] && p->file && p->file[0] && p->source);
        CHECK(strv_ok(p->run, 1));
        CHECK(!p->compile || strv_ok(p->compile, 1));
        CHECK(profile_find(set, p->name) == p);
        for (size_t a = 0; p->aliases && p->aliases[a]; a++)
            CHECK(profile_find(set, p->aliases[a]) == p);
        for (size_t k = 0; p->env && p->env[k]; k++)
            CHECK(strchr(p->env[k], '=') && p->env[k][0] != '=');
        CHECK((p->test_code == NULL) == (p->test_stdout == NULL));
        check_limits(&p->limits);
        check_limits(&p->compile_limits);
        if (i < 8)
            try_requests(set, p);
    }
}

static void check_config(const struct config *c)
{
    CHECK(c->backlog >= 1 && c->backlog <= 1000000);
    CHECK(c->memory_mb >= 16 && c->memory_mb <= 1 << 20);
    CHECK(c->cpu_shares >= 2 && c->cpu_shares <= 262144);
    CHECK(c->output_kb >= 1 && c->output_kb <= 1 << 20);
    CHECK(c->timeout_s >= 1 && c->timeout_s <= 86400);
    CHECK(c->workers == CONFIG_WORKERS_UNSET || (c->workers >= 1 && c->workers <= 1024));
    CHECK(config_workers(c, 1) >= 1); /* a worker process always runs some */
    CHECK(c->claim_after_s >= 1 && c->claim_after_s <= 3600);
    CHECK(c->result_ttl_s >= 1 && c->result_ttl_s <= 86400);
    CHECK(c->queue_timeout_s >= 1 && c->queue_timeout_s <= 86400);
    CHECK(c->port >= 0 && c->port <= 65535);
    CHECK(c->max_count >= 1 && c->max_count <= 1000);
    CHECK(c->max_body_kb >= 1 && c->max_body_kb <= 1 << 20);
    CHECK(c->grace_s >= 0 && c->grace_s <= 3600);
    CHECK(c->gvisor == 0 || c->gvisor == 1);
    for (size_t i = 0; c->allow_images && c->allow_images[i]; i++)
        CHECK(c->allow_images[i] != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[BG_ERRLEN];
    write_input(data, size);

    struct profile_set *set = NULL;
    err[0] = '\0';
    int rc = script_load_languages(path, &set, err);
    if (rc == 0) {
        CHECK(set);
        check_set(set);
        profile_set_unref(set);
    } else {
        CHECK(rc == BG_ESCRIPT || rc == BG_ENOMEM);
        CHECK(err[0] || rc == BG_ENOMEM);
        CHECK(memchr(err, '\0', sizeof err));
    }

    struct config cfg;
    config_defaults(&cfg);
    err[0] = '\0';
    rc = script_load_config(path, &cfg, err);
    if (rc == 0)
        check_config(&cfg);
    else
        CHECK(err[0] || rc == BG_ENOMEM);
    config_free(&cfg);
    return 0;
}
