/*
 * Unit tests of one run's pure parts (src/sandbox/run.h): the container's
 * create body and every hardening setting in it, the frames sent to
 * bg-supervisor, and the reading of what it sends back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "sandbox/run.h"

extern char **environ;

/* ------------------------------------------------------------ helpers */

static char *compile_argv[] = {"gcc", "-O2", "-o", "main", "main.c", NULL};
static char *run_argv[] = {"./main", "arg one", NULL};
static char *env_vars[] = {"HOME=/work", "LANG=C.UTF-8", NULL};
static struct run_file files[] = {
    {"main.c", "int main(void){return 3;}\n", 26, 0},
    {"data.bin", "\0\1\2", 3, 0},
};

static struct run_spec sample_spec(void)
{
    struct run_spec s;
    memset(&s, 0, sizeof s);
    s.language = "c";
    s.image = "bg-compiler/c:gcc12";
    s.compile = compile_argv;
    s.run = run_argv;
    s.env = env_vars;
    s.files = files;
    s.nfiles = 2;
    s.stdin_data = "input\n";
    s.stdin_len = 6;
    s.limits.timeout_ms = 10000;
    s.limits.compile_timeout_ms = 20000;
    s.limits.memory_mb = 256;
    s.limits.output_bytes = 30720;
    s.limits.pids = 64;
    s.limits.nofile = 256;
    s.limits.tmpfs_mb = 64;
    s.limits.cpu_shares = 512;
    return s;
}

static const char *const labels[] = {"bg-compiler=1", "bg-compiler.instance=abc123",
                                     "no-equals-sign", NULL};

static struct run_context sample_ctx(const char *runtime)
{
    struct run_context c = {"bg-supervisor-0123", runtime, labels, "bg-run-abc123"};
    return c;
}

static cJSON *create_body(const struct run_context *ctx, const struct run_spec *spec)
{
    char *text = run_create_body(ctx, spec);
    assert_non_null(text);
    cJSON *j = cJSON_Parse(text);
    if (!j)
        fail_msg("the create body is not JSON: %s", text);
    free(text);
    return j;
}

static const cJSON *get(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        fail_msg("'%s' is missing", key);
    return v;
}

static void assert_true_field(const cJSON *obj, const char *key)
{
    if (!cJSON_IsTrue(get(obj, key)))
        fail_msg("'%s' is not true", key);
}

static double number(const cJSON *obj, const char *key)
{
    const cJSON *v = get(obj, key);
    if (!cJSON_IsNumber(v))
        fail_msg("'%s' is not a number", key);
    return v->valuedouble;
}

static const char *string(const cJSON *obj, const char *key)
{
    const cJSON *v = get(obj, key);
    if (!cJSON_IsString(v))
        fail_msg("'%s' is not a string", key);
    return v->valuestring;
}

/* The strings of a JSON array, joined with ',' for easy comparison. */
static void joined(const cJSON *arr, char *out, size_t cap)
{
    const cJSON *item;
    out[0] = '\0';
    assert_true(cJSON_IsArray(arr));
    cJSON_ArrayForEach(item, arr)
    {
        assert_true(cJSON_IsString(item));
        if (out[0])
            strncat(out, ",", cap - strlen(out) - 1);
        strncat(out, item->valuestring, cap - strlen(out) - 1);
    }
}

/* -------------------------------------------------------- create body */

static void test_create_hardening(void **state)
{
    (void)state;
    struct run_spec spec = sample_spec();
    struct run_context ctx = sample_ctx(NULL);
    cJSON *j = create_body(&ctx, &spec);
    char list[256];

    assert_string_equal(string(j, "Image"), "bg-compiler/c:gcc12");
    joined(get(j, "Entrypoint"), list, sizeof list);
    assert_string_equal(list, "/bg/bg-supervisor");
    assert_true_field(j, "NetworkDisabled");

    const cJSON *hc = get(j, "HostConfig");
    assert_string_equal(string(hc, "NetworkMode"), "none");
    assert_true_field(hc, "ReadonlyRootfs");
    joined(get(hc, "CapDrop"), list, sizeof list);
    assert_string_equal(list, "ALL");
    joined(get(hc, "CapAdd"), list, sizeof list);
    assert_string_equal(list, "SETUID,SETGID");
    joined(get(hc, "SecurityOpt"), list, sizeof list);
    assert_string_equal(list, "no-new-privileges");
    assert_true(number(hc, "PidsLimit") == 64);
    assert_true(number(hc, "Memory") == 256.0 * 1024 * 1024);
    assert_true(number(hc, "MemorySwap") == 256.0 * 1024 * 1024);
    assert_true(number(hc, "CpuShares") == 512);

    /* Never privileged, no host paths, no ports. */
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(hc, "Privileged")));
    assert_null(cJSON_GetObjectItemCaseSensitive(hc, "Binds"));
    assert_null(cJSON_GetObjectItemCaseSensitive(hc, "PortBindings"));
    assert_null(cJSON_GetObjectItemCaseSensitive(hc, "Devices"));

    /* /work: the only writable place compiled programs run from. */
    const char *work = string(get(hc, "Tmpfs"), "/work");
    assert_non_null(strstr(work, "exec"));
    assert_null(strstr(work, "noexec"));
    assert_non_null(strstr(work, "size=64m"));

    const cJSON *mounts = get(hc, "Mounts");
    assert_int_equal(cJSON_GetArraySize(mounts), 1);
    const cJSON *m = cJSON_GetArrayItem(mounts, 0);
    assert_string_equal(string(m, "Type"), "volume");
    assert_string_equal(string(m, "Source"), "bg-supervisor-0123");
    assert_string_equal(string(m, "Target"), "/bg");
    assert_true_field(m, "ReadOnly");

    const cJSON *ul = get(hc, "Ulimits");
    int seen = 0;
    const cJSON *u;
    cJSON_ArrayForEach(u, ul)
    {
        const char *name = string(u, "Name");
        double want = strcmp(name, "nofile") == 0  ? 256
                      : strcmp(name, "fsize") == 0 ? 64.0 * 1024 * 1024
                      : strcmp(name, "core") == 0  ? 0
                                                   : -1;
        if (want < 0)
            continue;
        seen |= strcmp(name, "nofile") == 0 ? 1 : strcmp(name, "fsize") == 0 ? 2 : 4;
        assert_true(number(u, "Soft") == want);
        assert_true(number(u, "Hard") == want);
    }
    assert_int_equal(seen, 7);

    /* The engine's default runtime when none is configured. */
    assert_null(cJSON_GetObjectItemCaseSensitive(hc, "Runtime"));

    /* stdin, stdout, stderr attached; stdin closes after the input. */
    assert_true_field(j, "AttachStdin");
    assert_true_field(j, "AttachStdout");
    assert_true_field(j, "AttachStderr");
    assert_true_field(j, "OpenStdin");
    assert_true_field(j, "StdinOnce");
    assert_true(cJSON_IsFalse(get(j, "Tty")));
    cJSON_Delete(j);
}

static void test_create_runtime(void **state)
{
    (void)state;
    struct run_spec spec = sample_spec();
    struct run_context ctx = sample_ctx("runsc");
    cJSON *j = create_body(&ctx, &spec);
    assert_string_equal(string(get(j, "HostConfig"), "Runtime"), "runsc");
    cJSON_Delete(j);
}

static void test_create_labels(void **state)
{
    (void)state;
    struct run_spec spec = sample_spec();
    struct run_context ctx = sample_ctx(NULL);
    cJSON *j = create_body(&ctx, &spec);
    const cJSON *l = get(j, "Labels");
    assert_string_equal(string(l, "bg-compiler"), "1");
    assert_string_equal(string(l, "bg-compiler.instance"), "abc123");
    assert_int_equal(cJSON_GetArraySize(l), 2);
    cJSON_Delete(j);

    ctx.labels = NULL;
    j = create_body(&ctx, &spec);
    assert_int_equal(cJSON_GetArraySize(get(j, "Labels")), 0);
    cJSON_Delete(j);
}

static void test_create_env_is_not_ours(void **state)
{
    (void)state;
    /* Make our environment recognisable, then look for any of it. */
    setenv("SECRET_TOKEN", "x", 1);
    setenv("PATH", "/opt/bg-test/bin:/usr/bin:/bin", 1);
    struct run_spec spec = sample_spec();
    struct run_context ctx = sample_ctx(NULL);
    cJSON *j = create_body(&ctx, &spec);
    const cJSON *env = get(j, "Env");
    const cJSON *e;
    assert_true(cJSON_IsArray(env));
    cJSON_ArrayForEach(e, env)
    {
        assert_true(cJSON_IsString(e));
        assert_null(strstr(e->valuestring, "SECRET_TOKEN"));
        for (char **v = environ; *v; v++)
            if (strcmp(*v, e->valuestring) == 0)
                fail_msg("'%s' of the service's environment reached the container", *v);
        /* The program's own variables travel as ENV frames, not here. */
        assert_string_not_equal(e->valuestring, "LANG=C.UTF-8");
    }
    cJSON_Delete(j);
}

static void test_create_escapes_strings(void **state)
{
    (void)state;
    struct run_spec spec = sample_spec();
    spec.image = "x\",\"Privileged\":true,\"y\":\"";
    struct run_context ctx = sample_ctx(NULL);
    cJSON *j = create_body(&ctx, &spec);
    assert_string_equal(string(j, "Image"), spec.image);
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "Privileged"));
    cJSON_Delete(j);
}

/* ------------------------------------------------------ input frames */

#define MAX_FRAMES 32

struct frames {
    int n;
    uint8_t type[MAX_FRAMES];
    struct buf payload[MAX_FRAMES];
};

static int collect(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
    struct frames *f = arg;
    assert_true(f->n < MAX_FRAMES);
    f->type[f->n] = type;
    memset(&f->payload[f->n], 0, sizeof f->payload[f->n]);
    assert_int_equal(buf_append(&f->payload[f->n], p, len), 0);
    f->n++;
    return 0;
}

static void frames_free(struct frames *f)
{
    for (int i = 0; i < f->n; i++)
        buf_free(&f->payload[i]);
    f->n = 0;
}

static void decode(const struct run_spec *spec, struct frames *f)
{
    struct buf out = BUF_INIT;
    struct proto_decoder d;
    memset(f, 0, sizeof *f);
    assert_int_equal(run_encode_input(spec, &out), 0);
    proto_decoder_init(&d, PROTO_MAX_PAYLOAD, collect, f);
    assert_int_equal(proto_decoder_feed(&d, (uint8_t *)out.data, out.len), 0);
    assert_true(proto_decoder_idle(&d));
    proto_decoder_free(&d);
    buf_free(&out);
}

static void assert_payload(const struct frames *f, int i, const void *want, size_t len)
{
    if (f->payload[i].len != len || memcmp(f->payload[i].data, want, len) != 0)
        fail_msg("frame %d ('%c'): %zu bytes, not the %zu wanted", i, f->type[i],
                 f->payload[i].len, len);
}

static void test_encode_full(void **state)
{
    (void)state;
    struct run_spec spec = sample_spec();
    struct frames f;
    decode(&spec, &f);
    static const char order[] = "LFFVVCRIZ";
    assert_int_equal(f.n, (int)strlen(order));
    for (int i = 0; i < f.n; i++)
        if (f.type[i] != (uint8_t)order[i])
            fail_msg("frame %d is '%c', wanted '%c'", i, f.type[i], order[i]);

    int64_t v;
    const uint8_t *lim = (const uint8_t *)f.payload[0].data;
    uint32_t lim_len = (uint32_t)f.payload[0].len;
    assert_int_equal(proto_kv_int(lim, lim_len, "timeout_ms", &v), 0);
    assert_int_equal(v, 10000);
    assert_int_equal(proto_kv_int(lim, lim_len, "compile_timeout_ms", &v), 0);
    assert_int_equal(v, 20000);
    assert_int_equal(proto_kv_int(lim, lim_len, "output_bytes", &v), 0);
    assert_int_equal(v, 30720);

    assert_payload(&f, 1, "main.c\0int main(void){return 3;}\n", 7 + 26);
    assert_payload(&f, 2, "data.bin\0\0\1\2", 9 + 3);
    assert_payload(&f, 3, "HOME=/work", 10);
    assert_payload(&f, 4, "LANG=C.UTF-8", 12);
    assert_payload(&f, 5, "gcc\0-O2\0-o\0main\0main.c\0", 23);
    assert_payload(&f, 6, "./main\0arg one\0", 15);
    assert_payload(&f, 7, "input\n", 6);
    assert_int_equal(f.payload[8].len, 0);
    frames_free(&f);
}

static void test_encode_minimal(void **state)
{
    (void)state;
    struct run_spec spec = sample_spec();
    spec.compile = NULL;
    spec.stdin_data = NULL;
    spec.stdin_len = 0;
    spec.env = NULL;
    spec.nfiles = 1;
    struct frames f;
    decode(&spec, &f);
    static const char order[] = "LFRZ";
    assert_int_equal(f.n, (int)strlen(order));
    for (int i = 0; i < f.n; i++)
        assert_int_equal(f.type[i], (uint8_t)order[i]);
    frames_free(&f);
}

/* ------------------------------------------------------ output reader */

struct stream {
    uint8_t data[1024];
    size_t len;
};

static void put(struct stream *s, uint8_t type, const char *payload, size_t len)
{
    assert_true(s->len + PROTO_HEADER_SIZE + len <= sizeof s->data);
    proto_put_header(s->data + s->len, type, (uint32_t)len);
    if (len)
        memcpy(s->data + s->len + PROTO_HEADER_SIZE, payload, len);
    s->len += PROTO_HEADER_SIZE + len;
}

static void puts_frame(struct stream *s, uint8_t type, const char *text)
{
    put(s, type, text, strlen(text));
}

static const char result_text[] = "step=run\nexit_code=3\nsignal=0\ntimed_out=0\noutput_limit=0\n"
                                  "oom_killed=0\nwall_ms=12\ncpu_ms=7\nmemory_kb=2048\n";

static void sample_output(struct stream *s)
{
    memset(s, 0, sizeof *s);
    puts_frame(s, PROTO_STEP, "run");
    puts_frame(s, PROTO_OUT, "hi\n");
    puts_frame(s, PROTO_ERR, "warn");
    put(s, PROTO_OUT, NULL, 0);
    puts_frame(s, PROTO_RESULT, result_text);
    put(s, PROTO_DONE, NULL, 0);
}

static void check_sample_result(const struct run_result *r)
{
    assert_false(r->compile.present);
    assert_true(r->run.present);
    assert_int_equal(r->run.out.len, 3);
    assert_memory_equal(r->run.out.data, "hi\n", 3);
    assert_int_equal(r->run.err.len, 4);
    assert_memory_equal(r->run.err.data, "warn", 4);
    assert_int_equal(r->run.exit_code, 3);
    assert_int_equal(r->run.signal, 0);
    assert_false(r->run.timed_out);
    assert_false(r->run.output_limit);
    assert_false(r->run.oom_killed);
    assert_int_equal(r->run.wall_ms, 12);
    assert_int_equal(r->run.cpu_ms, 7);
    assert_int_equal(r->run.memory_kb, 2048);
    assert_string_equal(r->message, "");
}

static void test_reader_split_everywhere(void **state)
{
    (void)state;
    struct stream s;
    sample_output(&s);
    for (size_t cut = 0; cut <= s.len; cut++) {
        struct run_result res;
        run_result_init(&res);
        struct run_reader *r = run_reader_new(&res, 1024, 0);
        assert_non_null(r);
        assert_int_equal(run_reader_feed(r, s.data, cut), 0);
        assert_int_equal(run_reader_done(r), cut == s.len);
        assert_int_equal(run_reader_feed(r, s.data + cut, s.len - cut), 0);
        assert_true(run_reader_done(r));
        check_sample_result(&res);
        run_reader_free(r);
        run_result_free(&res);
    }
}

static void test_reader_byte_by_byte(void **state)
{
    (void)state;
    struct stream s;
    sample_output(&s);
    struct run_result res;
    run_result_init(&res);
    struct run_reader *r = run_reader_new(&res, 1024, 0);
    for (size_t i = 0; i < s.len; i++)
        assert_int_equal(run_reader_feed(r, s.data + i, 1), 0);
    assert_true(run_reader_done(r));
    check_sample_result(&res);
    run_reader_free(r);
    run_result_free(&res);
}

static void test_reader_compile_step(void **state)
{
    (void)state;
    struct stream s;
    memset(&s, 0, sizeof s);
    puts_frame(&s, PROTO_STEP, "compile");
    puts_frame(&s, PROTO_ERR, "main.c:1: error");
    puts_frame(&s, PROTO_RESULT, "step=compile\nexit_code=1\nsignal=0\n");
    puts_frame(&s, PROTO_STEP, "run");
    puts_frame(&s, PROTO_RESULT, "step=run\nexit_code=-1\nsignal=9\noom_killed=1\n");
    put(&s, PROTO_DONE, NULL, 0);
    struct run_result res;
    run_result_init(&res);
    struct run_reader *r = run_reader_new(&res, 1024, 0);
    assert_int_equal(run_reader_feed(r, s.data, s.len), 0);
    assert_true(res.compile.present);
    assert_int_equal(res.compile.exit_code, 1);
    assert_string_equal(res.compile.err.data, "main.c:1: error");
    assert_true(res.run.present);
    assert_int_equal(res.run.err.len, 0);
    assert_int_equal(res.run.exit_code, -1);
    assert_int_equal(res.run.signal, 9);
    assert_true(res.run.oom_killed);
    run_reader_free(r);
    run_result_free(&res);
}

static void test_reader_fail_frame(void **state)
{
    (void)state;
    struct stream s;
    memset(&s, 0, sizeof s);
    puts_frame(&s, PROTO_FAIL, "exec ./main: no such file");
    put(&s, PROTO_DONE, NULL, 0);
    struct run_result res;
    run_result_init(&res);
    struct run_reader *r = run_reader_new(&res, 1024, 0);
    assert_int_equal(run_reader_feed(r, s.data, s.len), 0);
    assert_non_null(strstr(res.message, "exec ./main: no such file"));
    run_reader_free(r);
    run_result_free(&res);
}

/* Feed frames into a fresh reader with output cap `cap`. */
static struct run_reader *reader_with(struct run_result *res, long cap, const struct stream *s)
{
    run_result_init(res);
    struct run_reader *r = run_reader_new(res, cap, 0);
    assert_non_null(r);
    assert_int_equal(run_reader_feed(r, s->data, s->len), 0);
    return r;
}

static void test_reader_output_cap(void **state)
{
    (void)state;
    struct stream s;
    struct run_result res;
    struct run_reader *r;

    /* One frame over the cap: cut at the cap. */
    memset(&s, 0, sizeof s);
    puts_frame(&s, PROTO_STEP, "run");
    puts_frame(&s, PROTO_OUT, "hello");
    puts_frame(&s, PROTO_OUT, "more");
    r = reader_with(&res, 4, &s);
    assert_int_equal(res.run.out.len, 4);
    assert_memory_equal(res.run.out.data, "hell", 4);
    assert_true(res.run.output_limit);
    run_reader_free(r);
    run_result_free(&res);

    /* stdout and stderr share the cap. */
    memset(&s, 0, sizeof s);
    puts_frame(&s, PROTO_OUT, "ab");
    puts_frame(&s, PROTO_ERR, "cdef");
    r = reader_with(&res, 4, &s);
    assert_int_equal(res.run.out.len + res.run.err.len, 4);
    assert_memory_equal(res.run.err.data, "cd", 2);
    assert_true(res.run.output_limit);
    run_reader_free(r);
    run_result_free(&res);

    /* Exactly the cap is not over it. */
    memset(&s, 0, sizeof s);
    puts_frame(&s, PROTO_OUT, "abcd");
    r = reader_with(&res, 4, &s);
    assert_int_equal(res.run.out.len, 4);
    assert_false(res.run.output_limit);
    run_reader_free(r);
    run_result_free(&res);

    /* Each step has its own cap. */
    memset(&s, 0, sizeof s);
    puts_frame(&s, PROTO_STEP, "compile");
    puts_frame(&s, PROTO_ERR, "abcd");
    puts_frame(&s, PROTO_STEP, "run");
    puts_frame(&s, PROTO_OUT, "efgh");
    r = reader_with(&res, 4, &s);
    assert_int_equal(res.compile.err.len, 4);
    assert_int_equal(res.run.out.len, 4);
    assert_false(res.compile.output_limit);
    assert_false(res.run.output_limit);
    run_reader_free(r);
    run_result_free(&res);
}

/* Output that fills the cap exactly, then one more byte in a later frame:
 * that byte is dropped, and the step must say its output was cut. */
static void test_reader_output_cap_reached_exactly_then_more(void **state)
{
    (void)state;
    struct stream s;
    struct run_result res;
    memset(&s, 0, sizeof s);
    puts_frame(&s, PROTO_OUT, "abcd");
    puts_frame(&s, PROTO_ERR, "e");
    struct run_reader *r = reader_with(&res, 4, &s);
    assert_int_equal(res.run.out.len, 4);
    assert_int_equal(res.run.err.len, 0);
    int limit = res.run.output_limit;
    run_reader_free(r);
    run_result_free(&res);
    if (!limit)
        fail_msg("output beyond the cap was dropped without setting output_limit");
}

static void test_reader_frame_after_done(void **state)
{
    (void)state;
    struct stream s;
    sample_output(&s);
    puts_frame(&s, PROTO_OUT, "late");
    struct run_result res;
    run_result_init(&res);
    struct run_reader *r = run_reader_new(&res, 1024, 0);
    assert_int_equal(run_reader_feed(r, s.data, s.len), BG_EPROTO);
    assert_null(strstr(res.run.out.data, "late"));
    run_reader_free(r);
    run_result_free(&res);

    /* Even in a separate feed. */
    sample_output(&s);
    run_result_init(&res);
    r = run_reader_new(&res, 1024, 0);
    assert_int_equal(run_reader_feed(r, s.data, s.len), 0);
    put(&s, PROTO_DONE, NULL, 0);
    assert_int_equal(run_reader_feed(r, s.data + s.len - PROTO_HEADER_SIZE, PROTO_HEADER_SIZE),
                     BG_EPROTO);
    run_reader_free(r);
    run_result_free(&res);
}

static void test_reader_unknown_type(void **state)
{
    (void)state;
    const uint8_t types[] = {'Q', 0, 0xff, PROTO_LIMITS, PROTO_FILE, PROTO_RUN, PROTO_END};
    for (size_t i = 0; i < sizeof types; i++) {
        struct stream s;
        memset(&s, 0, sizeof s);
        puts_frame(&s, PROTO_STEP, "run");
        put(&s, types[i], "x", 1);
        struct run_result res;
        run_result_init(&res);
        struct run_reader *r = run_reader_new(&res, 1024, 0);
        if (run_reader_feed(r, s.data, s.len) != BG_EPROTO)
            fail_msg("frame type 0x%02x from the supervisor was accepted", types[i]);
        assert_false(run_reader_done(r));
        run_reader_free(r);
        run_result_free(&res);
    }
}

static void test_result_init(void **state)
{
    (void)state;
    struct run_result res;
    memset(&res, 0x5a, sizeof res);
    run_result_init(&res);
    assert_int_equal(res.status, RUN_INTERNAL_ERROR);
    assert_int_equal(res.run.exit_code, -1);
    assert_false(res.run.present);
    assert_null(res.run.out.data);
    run_result_free(&res);
    run_spec_free(NULL);
    assert_string_equal(run_status_name(RUN_OUTPUT_LIMIT), "output_limit");
    assert_string_equal(run_status_name(RUN_COMPILE_ERROR), "compile_error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_hardening),
        cmocka_unit_test(test_create_runtime),
        cmocka_unit_test(test_create_labels),
        cmocka_unit_test(test_create_env_is_not_ours),
        cmocka_unit_test(test_create_escapes_strings),
        cmocka_unit_test(test_encode_full),
        cmocka_unit_test(test_encode_minimal),
        cmocka_unit_test(test_reader_split_everywhere),
        cmocka_unit_test(test_reader_byte_by_byte),
        cmocka_unit_test(test_reader_compile_step),
        cmocka_unit_test(test_reader_fail_frame),
        cmocka_unit_test(test_reader_output_cap),
        cmocka_unit_test(test_reader_output_cap_reached_exactly_then_more),
        cmocka_unit_test(test_reader_frame_after_done),
        cmocka_unit_test(test_reader_unknown_type),
        cmocka_unit_test(test_result_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
