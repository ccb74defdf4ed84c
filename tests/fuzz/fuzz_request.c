/*
 * fuzz_request: request parsing (src/core/request.h), both forms.
 *
 * Input layout, so one corpus covers both forms and the query string:
 *   byte 0   bit 0: JSON form (1) or raw form (0)
 *            bits 1-2: which Content-Type the client sent (see ctypes below)
 *            bit 3: no ?lang= (raw form), bit 4: no ?count= (raw form)
 *   JSON:    the rest is the body.
 *   raw:     "LANG\nCOUNT\nBODY": the query's lang, its count, the code.
 * The profiles are the real lua/languages.lua (read once) under the
 * server's default settings, plus one extra allowed image with no profile.
 *
 * Besides "no crash, no leak, no UB" it checks what request.h promises:
 * a refusal is a 4xx/5xx with a code and a message and leaves nothing to
 * free; an acceptance is a complete run_spec within the server's limits
 * whose file names pass request_name_valid, and in the JSON form the body
 * was one whole JSON document. request_name_valid is checked against the
 * rules in its comment, and request_has_escaped_nul against a scanner that
 * knows where JSON strings are.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/profile.h"
#include "core/request.h"
#include "script/script.h"

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "fuzz_request: check failed at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

static struct profile_set *set;
static struct config cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[BG_ERRLEN] = "";
    if (script_load_languages(BG_SOURCE_DIR "/lua/languages.lua", &set, err) < 0) {
        fprintf(stderr, "fuzz_request: %s\n", err);
        abort();
    }
    char *const extra[] = {"example.org/allowed:1", NULL};
    set->allow_images = strv_dup(extra);
    config_defaults(&cfg);
    return 0;
}

/* The rules of request_name_valid's comment, written independently. */
static int name_ok_reference(const char *s, size_t len)
{
    if (len == 0 || memchr(s, '\0', len) || s[0] == '/')
        return 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '/') {
            unsigned char c = (unsigned char)s[i];
            if (c < 0x20 || c == 0x7f || c == '\\')
                return 0;
            continue;
        }
        size_t seg = i - start;
        if (seg == 0 || seg > 255 || (seg == 1 && s[start] == '.') ||
            (seg == 2 && s[start] == '.' && s[start + 1] == '.'))
            return 0;
        start = i + 1;
    }
    return 1;
}

/* Whether a \u0000 escape appears inside a JSON string of s[0..len). */
static int escaped_nul_reference(const char *s, size_t len)
{
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        if (!in_string) {
            in_string = s[i] == '"';
            continue;
        }
        if (s[i] == '"') {
            in_string = 0;
        } else if (s[i] == '\\' && i + 1 < len) {
            if (s[i + 1] == 'u' && i + 6 <= len && memcmp(s + i + 2, "0000", 4) == 0)
                return 1;
            i++; /* the escaped character */
        }
    }
    return 0;
}

static int all_space(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!strchr(" \t\r\n", s[i]) || !s[i])
            return 0;
    return 1;
}

static void check_refusal(int rc, const struct run_spec *spec, const struct request_error *e)
{
    static const struct run_spec zero;
    CHECK(rc < 0);
    CHECK(e->status >= 400 && e->status <= 599);
    CHECK(e->code && e->code[0]);
    CHECK(e->message[0]);
    CHECK(memchr(e->message, '\0', sizeof e->message));
    CHECK(memcmp(spec, &zero, sizeof zero) == 0); /* nothing left to free */
}

static void check_limits(const struct run_limits *l)
{
    CHECK(l->timeout_ms > 0 && l->timeout_ms <= cfg.timeout_s * 1000);
    CHECK(l->memory_mb > 0 && l->memory_mb <= cfg.memory_mb);
    CHECK(l->output_bytes > 0 && l->output_bytes <= cfg.output_kb * 1024);
    CHECK(l->pids > 0 && l->nofile > 0 && l->tmpfs_mb > 0);
    CHECK(l->artifact_bytes == 0);
}

static void check_acceptance(const struct run_spec *spec, size_t count, const struct profile *p)
{
    const char *why;
    CHECK(p != NULL);
    CHECK(count >= 1 && count <= (size_t)cfg.max_count);
    CHECK(spec->language && strcmp(spec->language, p->name) == 0);
    CHECK(spec->image && spec->image[0]);
    CHECK(spec->run && spec->run[0]);
    CHECK(spec->env);
    CHECK(spec->nfiles >= 1 && spec->nfiles <= 64 && spec->files);
    for (size_t i = 0; i < spec->nfiles; i++) {
        const struct run_file *f = &spec->files[i];
        CHECK(f->name && f->data && !f->exec);
        CHECK(request_name_valid(f->name, strlen(f->name), &why));
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(spec->files[j].name, f->name) != 0);
    }
    CHECK((spec->stdin_data == NULL) == (spec->stdin_len == 0));
    check_limits(&spec->limits);
    CHECK(spec->compile_limits.timeout_ms > 0 &&
          spec->compile_limits.timeout_ms <= cfg.timeout_s * 1000);
    CHECK(spec->compile_limits.memory_mb > 0 && spec->compile_limits.memory_mb <= cfg.memory_mb);
}

static void check_name_and_nul(const char *body, size_t len)
{
    /* request_name_valid wants a C string whose strlen is len. */
    char *name = malloc(len + 1);
    const char *why = NULL;
    CHECK(name);
    memcpy(name, body, len);
    name[len] = '\0';
    int ok = request_name_valid(name, len, &why);
    CHECK(ok == name_ok_reference(name, len));
    CHECK(ok || (why && why[0]));
    free(name);

    int nul = request_has_escaped_nul(body, len);
    if (len && memchr(body, '\0', len))
        return;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (root && end) {
        /* Within a JSON document only strings hold backslashes. */
        size_t used = (size_t)(end - body);
        CHECK(request_has_escaped_nul(body, used) == escaped_nul_reference(body, used));
        CHECK(!escaped_nul_reference(body, used) || nul);
    }
    cJSON_Delete(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const json_ctypes[] = {"application/json",
                                              "application/json; charset=utf-8",
                                              "  Application/JSON", "application/jsonp"};
    static const char *const raw_ctypes[] = {NULL, "text/plain", "application/x-www-form-urlencoded",
                                             "application/jso"};
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    const char *rest = (const char *)data + 1;
    size_t rest_len = size - 1;
    int json = mode & 1;

    struct request_in in = {0};
    char *lang = NULL, *count_text = NULL;
    if (json) {
        in.content_type = json_ctypes[(mode >> 1) & 3];
        in.body = rest;
        in.body_len = rest_len;
    } else {
        in.content_type = raw_ctypes[(mode >> 1) & 3];
        const char *nl1 = memchr(rest, '\n', rest_len);
        const char *lang_end = nl1 ? nl1 : rest + rest_len;
        const char *count_start = nl1 ? nl1 + 1 : rest + rest_len;
        const char *nl2 = memchr(count_start, '\n', (size_t)(rest + rest_len - count_start));
        const char *count_end = nl2 ? nl2 : rest + rest_len;
        /* Query values reach us as C strings: a NUL ends them. */
        lang = strndup(rest, (size_t)(lang_end - rest));
        count_text = strndup(count_start, (size_t)(count_end - count_start));
        CHECK(lang && count_text);
        in.query_lang = mode & 8 ? NULL : lang;
        in.query_count = mode & 16 ? NULL : count_text;
        in.body = nl2 ? nl2 + 1 : rest + rest_len;
        in.body_len = (size_t)(rest + rest_len - in.body);
    }

    struct run_spec spec;
    size_t count = 0;
    const struct profile *p = NULL;
    struct request_error e;
    memset(&e, 0, sizeof e);
    int rc = request_parse(&in, set, &cfg, &spec, &count, &p, &e);
    if (rc == 0) {
        check_acceptance(&spec, count, p);
        if (json) {
            /* Accepted JSON is one whole document: no trailing bytes. */
            const char *end = NULL;
            cJSON *root = cJSON_ParseWithLengthOpts(in.body, in.body_len, &end, 0);
            CHECK(root && end);
            CHECK(all_space(end, (size_t)(in.body + in.body_len - end)));
            cJSON_Delete(root);
        } else {
            CHECK(spec.nfiles == 1 && spec.files[0].len == in.body_len);
            CHECK(memcmp(spec.files[0].data, in.body, in.body_len) == 0);
        }
    } else {
        check_refusal(rc, &spec, &e);
    }
    run_spec_free(&spec);

    check_name_and_nul(rest, rest_len);
    free(lang);
    free(count_text);
    return 0;
}
