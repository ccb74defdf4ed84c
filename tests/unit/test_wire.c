/*
 * Unit tests of the wire codec (src/cluster/wire.h) and of base64_encode
 * (src/common/base64.h): every field of a spec and a result survives a
 * round trip, binary bytes included; the decoders refuse malformed text
 * with BG_EINVAL and a message naming the field, and what they leave
 * behind frees cleanly (run under the sanitizer build for that).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/wire.h"
#include "common/base64.h"
#include "common/buf.h"
#include "common/err.h"
#include "sandbox/run.h"

/* ------------------------------------------------------------ helpers */

static const char binary[] = {'a', '\0', 'b', (char)0xff, '\0', (char)0x80, '\n', (char)0xfe};

static char *dup_bytes(const void *p, size_t len)
{
    char *d = malloc(len + 1);
    assert_non_null(d);
    if (len)
        memcpy(d, p, len);
    d[len] = '\0';
    return d;
}

/* A malloc'd NULL-terminated vector of copies of the arguments. */
static char **strv(const char *first, ...)
{
    char **v = calloc(16, sizeof *v);
    size_t n = 0;
    va_list ap;
    assert_non_null(v);
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        v[n++] = strdup(s);
    va_end(ap);
    return v;
}

static void set_file(struct run_file *f, const char *name, const void *data, size_t len, int exec)
{
    f->name = strdup(name);
    f->data = dup_bytes(data, len);
    f->len = len;
    f->exec = exec;
}

static void set_limits(struct run_limits *l, long base)
{
    l->timeout_ms = base + 1;
    l->compile_timeout_ms = base + 2;
    l->memory_mb = base + 3;
    l->output_bytes = base + 4;
    l->pids = base + 5;
    l->nofile = base + 6;
    l->tmpfs_mb = base + 7;
    l->cpu_shares = base + 8;
    l->artifact_bytes = base + 9;
    l->custom_memory = base % 2 == 0;
}

/* Every field set, with binary file contents and stdin. */
static void full_spec(struct run_spec *s)
{
    memset(s, 0, sizeof *s);
    s->language = strdup("c");
    s->image = strdup("bg-compiler/gcc:13");
    s->compile = strv("gcc", "-O2", "main.c", "-o", "main", NULL);
    s->run = strv("./main", "x y", "", NULL);
    s->env = strv("PATH=/usr/bin", "LANG=C.UTF-8", NULL);
    s->args = strv("x y", "", NULL);
    s->files = calloc(3, sizeof *s->files);
    s->nfiles = 3;
    set_file(&s->files[0], "main.c", "int main(void){return 0;}\n", 26, 0);
    set_file(&s->files[1], "data/blob.bin", binary, sizeof binary, 1);
    set_file(&s->files[2], "empty", "", 0, 0);
    s->stdin_data = dup_bytes(binary, sizeof binary);
    s->stdin_len = sizeof binary;
    set_limits(&s->limits, 1000);
    set_limits(&s->compile_limits, 2001);
}

static void assert_strv_equal(char *const *a, char *const *b)
{
    if (!a || !b) {
        assert_ptr_equal(a, b);
        return;
    }
    size_t i = 0;
    for (; a[i] && b[i]; i++)
        assert_string_equal(a[i], b[i]);
    assert_null(a[i]);
    assert_null(b[i]);
}

static void assert_bytes_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    assert_int_equal(alen, blen);
    if (alen)
        assert_memory_equal(a, b, alen);
}

static void assert_files_equal(const struct run_file *a, size_t na, const struct run_file *b,
                               size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_string_equal(a[i].name, b[i].name);
        assert_non_null(b[i].data);
        assert_bytes_equal(a[i].data, a[i].len, b[i].data, b[i].len);
        assert_int_equal(a[i].exec, b[i].exec);
    }
}

static void assert_limits_equal(const struct run_limits *a, const struct run_limits *b)
{
    assert_int_equal(a->timeout_ms, b->timeout_ms);
    assert_int_equal(a->compile_timeout_ms, b->compile_timeout_ms);
    assert_int_equal(a->memory_mb, b->memory_mb);
    assert_int_equal(a->output_bytes, b->output_bytes);
    assert_int_equal(a->pids, b->pids);
    assert_int_equal(a->nofile, b->nofile);
    assert_int_equal(a->tmpfs_mb, b->tmpfs_mb);
    assert_int_equal(a->cpu_shares, b->cpu_shares);
    assert_int_equal(a->artifact_bytes, b->artifact_bytes);
    assert_int_equal(a->custom_memory, b->custom_memory);
}

static void assert_spec_equal(const struct run_spec *a, const struct run_spec *b)
{
    assert_string_equal(a->language, b->language);
    assert_string_equal(a->image, b->image);
    assert_strv_equal(a->compile, b->compile);
    assert_strv_equal(a->run, b->run);
    assert_strv_equal(a->env, b->env);
    assert_strv_equal(a->args, b->args);
    assert_files_equal(a->files, a->nfiles, b->files, b->nfiles);
    assert_int_equal(a->stdin_data == NULL, b->stdin_data == NULL);
    assert_bytes_equal(a->stdin_data, a->stdin_len, b->stdin_data, b->stdin_len);
    assert_limits_equal(&a->limits, &b->limits);
    assert_limits_equal(&a->compile_limits, &b->compile_limits);
}

/* Encode, decode, compare; the decoded spec encodes to the same text. */
static void spec_round_trip(const struct run_spec *in)
{
    size_t len = 0, len2 = 0;
    char err[BG_ERRLEN] = "";
    struct run_spec out;
    char *text = wire_spec_encode(in, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    assert_int_equal(wire_spec_decode(text, len, &out, err), 0);
    assert_string_equal(err, "");
    assert_spec_equal(in, &out);
    char *again = wire_spec_encode(&out, &len2);
    assert_non_null(again);
    assert_string_equal(text, again);
    free(again);
    free(text);
    run_spec_free(&out);
}

static void set_step(struct step_result *s, long base)
{
    s->present = 1;
    assert_int_equal(buf_append(&s->out, binary, sizeof binary), 0);
    assert_int_equal(buf_append(&s->err, "warning: \xe2\x9c\x93\n", 13), 0);
    s->exit_code = (int)base;
    s->signal = (int)base + 1;
    s->timed_out = 1;
    s->output_limit = 0;
    s->oom_killed = 1;
    s->artifact_limit = 0;
    s->wall_ms = base * 10;
    s->cpu_ms = base * 20;
    s->memory_kb = base * 30;
}

static void full_result(struct run_result *r)
{
    run_result_init(r);
    r->status = RUN_MEMORY_LIMIT;
    set_step(&r->compile, 3);
    set_step(&r->run, -1);
    r->run.output_limit = 1;
    r->run.artifact_limit = 1;
    r->duration_ms = 1234;
    r->artifacts = calloc(2, sizeof *r->artifacts);
    r->nartifacts = 2;
    set_file(&r->artifacts[0], "main", binary, sizeof binary, 1);
    set_file(&r->artifacts[1], "obj/empty.o", "", 0, 0);
    r->artifact_total = sizeof binary;
    strcpy(r->message, "engine: \"quoted\" \\ and \xc3\xa9");
    r->engine_down = 1;
    r->image_missing = 0;
}

static void assert_step_equal(const struct step_result *a, const struct step_result *b)
{
    assert_int_equal(a->present, b->present);
    assert_bytes_equal(a->out.data, a->out.len, b->out.data, b->out.len);
    assert_bytes_equal(a->err.data, a->err.len, b->err.data, b->err.len);
    assert_int_equal(a->exit_code, b->exit_code);
    assert_int_equal(a->signal, b->signal);
    assert_int_equal(a->timed_out, b->timed_out);
    assert_int_equal(a->output_limit, b->output_limit);
    assert_int_equal(a->oom_killed, b->oom_killed);
    assert_int_equal(a->artifact_limit, b->artifact_limit);
    assert_int_equal(a->wall_ms, b->wall_ms);
    assert_int_equal(a->cpu_ms, b->cpu_ms);
    assert_int_equal(a->memory_kb, b->memory_kb);
}

static void assert_result_equal(const struct run_result *a, const struct run_result *b)
{
    assert_int_equal(a->status, b->status);
    assert_step_equal(&a->compile, &b->compile);
    assert_step_equal(&a->run, &b->run);
    assert_int_equal(a->duration_ms, b->duration_ms);
    assert_files_equal(a->artifacts, a->nartifacts, b->artifacts, b->nartifacts);
    assert_int_equal(a->artifact_total, b->artifact_total);
    assert_string_equal(a->message, b->message);
    assert_int_equal(a->engine_down, b->engine_down);
    assert_int_equal(a->image_missing, b->image_missing);
}

static void result_round_trip(const struct run_result *in)
{
    size_t len = 0;
    char err[BG_ERRLEN] = "";
    struct run_result out;
    char *text = wire_result_encode(in, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    assert_int_equal(wire_result_decode(text, len, &out, err), 0);
    assert_result_equal(in, &out);
    char *again = wire_result_encode(&out, NULL);
    assert_non_null(again);
    assert_string_equal(text, again);
    free(again);
    free(text);
    run_result_free(&out);
}

/*
 * text with the member at path ("key", "limits.pids", "files.0.name",
 * "files.1") replaced by the JSON value, or removed (objects only) when
 * value is NULL. Malloc'd.
 */
static char *mutate(const char *text, const char *path, const char *value)
{
    cJSON *root = cJSON_Parse(text), *parent = root, *v = value ? cJSON_Parse(value) : NULL;
    char key[64];
    assert_non_null(root);
    assert_true(!value || v);
    const char *dot;
    while ((dot = strchr(path, '.'))) {
        snprintf(key, sizeof key, "%.*s", (int)(dot - path), path);
        parent = cJSON_IsArray(parent) ? cJSON_GetArrayItem(parent, atoi(key))
                                       : cJSON_GetObjectItemCaseSensitive(parent, key);
        assert_non_null(parent);
        path = dot + 1;
    }
    if (cJSON_IsArray(parent))
        assert_true(cJSON_ReplaceItemInArray(parent, atoi(path), v));
    else if (!v)
        cJSON_DeleteItemFromObjectCaseSensitive(parent, path);
    else if (cJSON_GetObjectItemCaseSensitive(parent, path))
        assert_true(cJSON_ReplaceItemInObjectCaseSensitive(parent, path, v));
    else
        assert_true(cJSON_AddItemToObject(parent, path, v));
    char *out = cJSON_PrintUnformatted(root);
    assert_non_null(out);
    cJSON_Delete(root);
    return out;
}

/* text with its one occurrence of from replaced by to. Malloc'd. */
static char *replace(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    assert_non_null(at);
    size_t head = (size_t)(at - text), tlen = strlen(to);
    char *out = malloc(strlen(text) - strlen(from) + tlen + 1);
    assert_non_null(out);
    memcpy(out, text, head);
    memcpy(out + head, to, tlen);
    strcpy(out + head + tlen, at + strlen(from));
    return out;
}

static char *full_spec_text(void)
{
    struct run_spec s;
    full_spec(&s);
    char *text = wire_spec_encode(&s, NULL);
    assert_non_null(text);
    run_spec_free(&s);
    return text;
}

static char *full_result_text(void)
{
    struct run_result r;
    full_result(&r);
    char *text = wire_result_encode(&r, NULL);
    assert_non_null(text);
    run_result_free(&r);
    return text;
}

/* Decoding text fails with BG_EINVAL and a message that names field. */
static void expect_spec_refused(const char *text, const char *field)
{
    char err[BG_ERRLEN] = "";
    struct run_spec out;
    assert_int_equal(wire_spec_decode(text, strlen(text), &out, err), BG_EINVAL);
    if (!strstr(err, field))
        fail_msg("error '%s' does not name '%s' (text %s)", err, field, text);
    run_spec_free(&out); /* whatever was half-made */
}

static void expect_result_refused(const char *text, const char *field)
{
    char err[BG_ERRLEN] = "";
    struct run_result out;
    assert_int_equal(wire_result_decode(text, strlen(text), &out, err), BG_EINVAL);
    if (!strstr(err, field))
        fail_msg("error '%s' does not name '%s' (text %s)", err, field, text);
    run_result_free(&out);
}

struct mutation {
    const char *path, *value; /* value NULL: remove the member */
    const char *field;        /* what the error must name */
};

static void expect_mutations_refused(int result, const struct mutation *m, size_t n)
{
    char *base = result ? full_result_text() : full_spec_text();
    for (size_t i = 0; i < n; i++) {
        char *text = mutate(base, m[i].path, m[i].value);
        if (result)
            expect_result_refused(text, m[i].field);
        else
            expect_spec_refused(text, m[i].field);
        free(text);
    }
    free(base);
}

/* ------------------------------------------------------------- base64 */

static void test_base64_encode_rfc4648(void **state)
{
    (void)state;
    static const char *const vectors[][2] = {
        {"", ""},         {"f", "Zg=="},        {"fo", "Zm8="},        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        struct buf b = BUF_INIT;
        assert_int_equal(base64_encode(vectors[i][0], strlen(vectors[i][0]), &b), 0);
        assert_non_null(b.data); /* even for "": a C string */
        assert_int_equal(b.len, strlen(vectors[i][1]));
        assert_string_equal(b.data, vectors[i][1]);
        buf_free(&b);
    }
}

static void test_base64_encode_appends(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    assert_int_equal(buf_append(&b, "pre:", 4), 0);
    assert_int_equal(base64_encode("\xff\x00\xfe", 3, &b), 0);
    assert_int_equal(base64_encode(NULL, 0, &b), 0);
    assert_int_equal(base64_encode("\xfb", 1, &b), 0);
    assert_string_equal(b.data, "pre:/wD++w==");
    assert_int_equal(b.data[b.len], '\0');
    buf_free(&b);
}

static void test_base64_round_trip_every_byte(void **state)
{
    (void)state;
    unsigned char all[256];
    for (size_t i = 0; i < sizeof all; i++)
        all[i] = (unsigned char)(255 - i);
    for (size_t len = 0; len <= sizeof all; len++) {
        struct buf enc = BUF_INIT, dec = BUF_INIT;
        assert_int_equal(base64_encode(all, len, &enc), 0);
        assert_int_equal(enc.len, (len + 2) / 3 * 4);
        assert_int_equal(base64_decode(enc.data, enc.len, &dec), 0);
        assert_int_equal(dec.len, len);
        if (len)
            assert_memory_equal(dec.data, all, len);
        buf_free(&enc);
        buf_free(&dec);
    }
}

/* ---------------------------------------------------------- spec trips */

static void test_spec_round_trip_full(void **state)
{
    (void)state;
    struct run_spec s;
    full_spec(&s);
    spec_round_trip(&s);
    run_spec_free(&s);
}

static void test_spec_round_trip_minimal(void **state)
{
    (void)state;
    struct run_spec s;
    memset(&s, 0, sizeof s);
    s.language = strdup("python");
    s.image = strdup("bg-compiler/python:3.11");
    s.run = strv("python3", "main.py", NULL); /* no compile, env, args, stdin, files */
    spec_round_trip(&s);
    run_spec_free(&s);
}

static void test_spec_empty_stdin_and_env_stay_set(void **state)
{
    (void)state;
    struct run_spec s;
    full_spec(&s);
    free(s.stdin_data);
    s.stdin_data = dup_bytes("", 0);
    s.stdin_len = 0;
    for (char **v = s.env; *v; v++)
        free(*v);
    s.env[0] = NULL; /* empty, not absent */
    free(s.args[0]);
    free(s.args[1]);
    s.args[0] = NULL;
    spec_round_trip(&s); /* compares NULL-ness of stdin and each vector */
    run_spec_free(&s);
}

static void test_spec_text_is_plain_json(void **state)
{
    (void)state;
    struct run_spec s;
    full_spec(&s);
    char *text = wire_spec_encode(&s, NULL);
    assert_non_null(text);
    /* Binary travels as base64 (file and stdin bytes), integers as digits. */
    assert_non_null(strstr(text, "\"data\":\"YQBi/wCACv4=\""));
    assert_non_null(strstr(text, "\"stdin\":\"YQBi/wCACv4=\""));
    assert_non_null(strstr(text, "\"exec\":true"));
    assert_non_null(strstr(text, "\"timeout_ms\":1001"));
    free(text);
    run_spec_free(&s);
}

static void test_spec_large_limits(void **state)
{
    (void)state;
    struct run_spec s;
    full_spec(&s);
    s.limits.output_bytes = 9007199254740992L; /* 2^53: exact through a double */
    s.limits.pids = 0;
    spec_round_trip(&s);
    run_spec_free(&s);
    /* An integral number in exponent form is an integer. */
    char *base = full_spec_text(), *text = mutate(base, "limits.pids", "1e3");
    char err[BG_ERRLEN] = "";
    assert_int_equal(wire_spec_decode(text, strlen(text), &s, err), 0);
    assert_int_equal(s.limits.pids, 1000);
    run_spec_free(&s);
    free(text);
    free(base);
}

/* -------------------------------------------------------- result trips */

static void test_result_round_trip_full(void **state)
{
    (void)state;
    struct run_result r;
    full_result(&r);
    result_round_trip(&r);
    run_result_free(&r);
}

static void test_result_round_trip_fresh(void **state)
{
    (void)state;
    struct run_result r;
    run_result_init(&r); /* no steps, no artifacts, empty buffers */
    result_round_trip(&r);
    run_result_free(&r);
}

static void test_result_every_status(void **state)
{
    (void)state;
    for (int st = RUN_OK; st <= RUN_INTERNAL_ERROR; st++) {
        struct run_result r;
        run_result_init(&r);
        r.status = (enum run_status)st;
        size_t len;
        char *text = wire_result_encode(&r, &len);
        assert_non_null(text);
        char want[64];
        snprintf(want, sizeof want, "\"status\":\"%s\"", run_status_name(r.status));
        assert_non_null(strstr(text, want));
        free(text);
        result_round_trip(&r);
        run_result_free(&r);
    }
}

static void test_result_message_truncated(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "";
    struct run_result r;
    char *base = full_result_text();
    /* 254 'a's then "é" (2 bytes): the cut would fall inside it. */
    char value[BG_ERRLEN + 64];
    value[0] = '"';
    memset(value + 1, 'a', BG_ERRLEN - 2);
    strcpy(value + BG_ERRLEN - 1, "\xc3\xa9 and more\"");
    char *text = mutate(base, "message", value);
    assert_int_equal(wire_result_decode(text, strlen(text), &r, err), 0);
    assert_int_equal(strlen(r.message), BG_ERRLEN - 2);
    assert_int_equal(r.message[BG_ERRLEN - 3], 'a');
    run_result_free(&r);
    free(text);
    /* 300 ASCII characters: the first 255 stay. */
    memset(value + 1, 'b', 300);
    strcpy(value + 301, "\"");
    text = mutate(base, "message", value);
    assert_int_equal(wire_result_decode(text, strlen(text), &r, err), 0);
    assert_int_equal(strlen(r.message), BG_ERRLEN - 1);
    run_result_free(&r);
    free(text);
    free(base);
}

/* ---------------------------------------------------------- rejections */

static void test_spec_refuses_malformed_text(void **state)
{
    (void)state;
    char *base = full_spec_text();
    char err[BG_ERRLEN] = "";
    struct run_spec s;
    expect_spec_refused("", "text");
    expect_spec_refused("{\"language\":", "not JSON");
    expect_spec_refused("not json", "not JSON");
    expect_spec_refused("[1,2]", "not a JSON object");
    expect_spec_refused("\"language\"", "not a JSON object");
    /* Something after the object: a second document is not ours to ignore. */
    size_t len = strlen(base);
    char *two = malloc(len * 2 + 2);
    assert_non_null(two);
    sprintf(two, "%s %s", base, base);
    expect_spec_refused(two, "more after");
    free(two);
    /* Whitespace after it is fine. */
    char *spaced = malloc(len + 4);
    assert_non_null(spaced);
    sprintf(spaced, "%s \n\t", base);
    assert_int_equal(wire_spec_decode(spaced, strlen(spaced), &s, err), 0);
    run_spec_free(&s);
    free(spaced);
    /* A raw NUL inside the length, and a \u0000 escape that cJSON would cut at. */
    assert_int_equal(wire_spec_decode(base, len + 1, &s, err), BG_EINVAL);
    assert_non_null(strstr(err, "NUL"));
    run_spec_free(&s);
    char *nul = replace(base, "\"language\":\"c\"", "\"language\":\"c\\u0000++\"");
    expect_spec_refused(nul, "\\u0000");
    free(nul);
    /* An escaped backslash before u0000 is just text. */
    char *text = mutate(base, "language", "\"c\\\\u0000\"");
    assert_int_equal(wire_spec_decode(text, strlen(text), &s, err), 0);
    assert_string_equal(s.language, "c\\u0000");
    run_spec_free(&s);
    free(text);
    free(base);
}

static void test_spec_refuses_bad_fields(void **state)
{
    (void)state;
    static const struct mutation m[] = {
        {"run", NULL, "run: missing"},
        {"language", NULL, "language: missing"},
        {"image", NULL, "image: missing"},
        {"limits", NULL, "limits: missing"},
        {"compile_limits", NULL, "compile_limits: missing"},
        {"limits.pids", NULL, "limits.pids: missing"},
        {"files.0.data", NULL, "files[0].data: missing"},
        {"files.1.exec", NULL, "files[1].exec: missing"},
        {"language", "7", "language: must be a string"},
        {"image", "null", "image: must be a string"},
        {"run", "\"./main\"", "run: must be an array"},
        {"run", "[]", "run: must not be empty"},
        {"compile", "[]", "compile: must not be empty"},
        {"run", "[\"a\", 2]", "run[1]: must be a string"},
        {"compile", "{}", "compile: must be an array"},
        {"env", "[null]", "env[0]: must be a string"},
        {"args", "[\"x\", []]", "args[1]"},
        {"files", "{}", "files: must be an array"},
        {"files.0", "\"main.c\"", "files[0]: must be an object"},
        {"files.0.name", "\"\"", "files[0].name: must not be empty"},
        {"files.2.name", "3", "files[2].name: must be a string"},
        {"files.1.exec", "1", "files[1].exec: must be true or false"},
        {"files.1.data", "\"YQ=!\"", "files[1].data: not valid base64"},
        {"files.1.data", "\"Y\"", "files[1].data: not valid base64"},
        {"files.1.data", "[]", "files[1].data: must be a string"},
        {"stdin", "\"a b\"", "stdin: not valid base64"},
        {"stdin", "null", "stdin: must be a string"},
        {"limits", "[]", "limits: must be an object"},
        {"limits.memory_mb", "-1", "limits.memory_mb: must be an integer from 0"},
        {"compile_limits.pids", "1.5", "compile_limits.pids: must be an integer"},
        {"limits.timeout_ms", "1e300", "limits.timeout_ms: must be an integer"},
        {"limits.timeout_ms", "-1e400", "limits.timeout_ms: must be an integer"},
        {"limits.nofile", "9223372036854775808", "limits.nofile: must be an integer"},
        {"limits.tmpfs_mb", "\"64\"", "limits.tmpfs_mb: must be an integer"},
        {"limits.cpu_shares", "true", "limits.cpu_shares: must be an integer"},
        {"limits.custom_memory", "0", "limits.custom_memory: must be true or false"},
        {"limits.extra_ms", "1", "limits.extra_ms: unknown field"},
        {"priority", "1", "priority: unknown field"},
        {"files.0.mode", "\"0755\"", "files[0].mode: unknown field"},
    };
    expect_mutations_refused(0, m, sizeof m / sizeof m[0]);
    /* A key given twice: the first would win here, maybe the last elsewhere. */
    expect_spec_refused("{\"language\":\"c\",\"language\":\"x\"}", "language: given twice");
}

static void test_result_refuses_bad_fields(void **state)
{
    (void)state;
    static const struct mutation m[] = {
        {"status", NULL, "status: missing"},
        {"status", "\"accepted\"", "status: unknown status 'accepted'"},
        {"status", "\"OK\"", "status: unknown status"},
        {"status", "0", "status: must be a string"},
        {"compile", NULL, "compile: missing"},
        {"run", "[]", "run: must be an object"},
        {"run.out", "\"a\"", "run.out: not valid base64"},
        {"compile.err", "\"%%%%\"", "compile.err: not valid base64"},
        {"run.err", NULL, "run.err: missing"},
        {"run.exit_code", "2147483648", "run.exit_code: must be an integer"},
        {"run.signal", "0.5", "run.signal: must be an integer"},
        {"compile.present", "\"yes\"", "compile.present: must be true or false"},
        {"run.wall_ms", "null", "run.wall_ms: must be an integer"},
        {"run.cores", "2", "run.cores: unknown field"},
        {"artifacts", "\"x\"", "artifacts: must be an array"},
        {"artifacts.0.name", "\"\"", "artifacts[0].name: must not be empty"},
        {"artifacts.1.data", "\"A===\"", "artifacts[1].data: not valid base64"},
        {"artifact_total", "-5", "artifact_total: must be an integer from 0"},
        {"duration_ms", "\"1\"", "duration_ms: must be an integer"},
        {"message", "null", "message: must be a string"},
        {"engine_down", "1", "engine_down: must be true or false"},
        {"image_missing", NULL, "image_missing: missing"},
    };
    expect_mutations_refused(1, m, sizeof m / sizeof m[0]);
    expect_result_refused("[]", "not a JSON object");
    expect_result_refused("{\"status\":\"ok\"", "not JSON");
}

static void test_optional_members_may_be_absent(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "";
    char *base = full_spec_text();
    static const char *const optional[] = {"compile", "env", "files", "stdin", "args"};
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++) {
        struct run_spec s;
        char *text = mutate(base, optional[i], NULL);
        assert_int_equal(wire_spec_decode(text, strlen(text), &s, err), 0);
        run_spec_free(&s);
        free(text);
    }
    free(base);
    base = full_result_text();
    struct run_result r;
    char *text = mutate(base, "artifacts", NULL);
    assert_int_equal(wire_result_decode(text, strlen(text), &r, err), 0);
    assert_int_equal(r.nartifacts, 0);
    assert_null(r.artifacts);
    run_result_free(&r);
    free(text);
    free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_encode_rfc4648),
        cmocka_unit_test(test_base64_encode_appends),
        cmocka_unit_test(test_base64_round_trip_every_byte),
        cmocka_unit_test(test_spec_round_trip_full),
        cmocka_unit_test(test_spec_round_trip_minimal),
        cmocka_unit_test(test_spec_empty_stdin_and_env_stay_set),
        cmocka_unit_test(test_spec_text_is_plain_json),
        cmocka_unit_test(test_spec_large_limits),
        cmocka_unit_test(test_result_round_trip_full),
        cmocka_unit_test(test_result_round_trip_fresh),
        cmocka_unit_test(test_result_every_status),
        cmocka_unit_test(test_result_message_truncated),
        cmocka_unit_test(test_spec_refuses_malformed_text),
        cmocka_unit_test(test_spec_refuses_bad_fields),
        cmocka_unit_test(test_result_refuses_bad_fields),
        cmocka_unit_test(test_optional_members_may_be_absent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
