/*
 * Unit tests of the engine client (src/docker/docker.h) against a fake
 * transport: API version negotiation, the requests each call sends, and
 * how the engine's answers (and failures) become BG_E* codes and errors.
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

#include "docker/docker.h"

/* ------------------------------------------------------ the fake engine */

#define MAX_CALLS 16

struct canned {
    int rc; /* what request() returns; 0 means the status and body below */
    long status;
    const char *body;
};

struct request_seen {
    char method[16];
    char path[1024];
    char ctype[64];
    char *body;
    size_t len;
};

struct fake {
    struct dk_transport t;
    struct canned answers[MAX_CALLS];
    int nanswers, next;
    struct request_seen seen[MAX_CALLS];
    int nseen;
    int freed;
};

static int f_request(void *self, const char *method, const char *path, const char *ctype,
                     const void *body, size_t len, long timeout_ms, struct dk_response *resp)
{
    struct fake *f = self;
    (void)timeout_ms;
    if (f->nseen >= MAX_CALLS || f->next >= f->nanswers)
        fail_msg("unexpected request %s %s", method, path);
    struct request_seen *s = &f->seen[f->nseen++];
    snprintf(s->method, sizeof s->method, "%s", method);
    snprintf(s->path, sizeof s->path, "%s", path);
    snprintf(s->ctype, sizeof s->ctype, "%s", ctype ? ctype : "");
    s->len = len;
    s->body = NULL;
    if (body) {
        s->body = malloc(len + 1);
        assert_non_null(s->body);
        memcpy(s->body, body, len);
        s->body[len] = '\0';
    }
    const struct canned *a = &f->answers[f->next++];
    if (a->rc)
        return a->rc;
    resp->status = a->status;
    if (a->body)
        assert_int_equal(buf_append(&resp->body, a->body, strlen(a->body)), 0);
    return 0;
}

static int f_hijack(void *self, const char *path, long timeout_ms, struct dk_stream **out)
{
    (void)self, (void)path, (void)timeout_ms, (void)out;
    fail_msg("hijack not expected");
    return BG_EIO;
}

static int f_send(struct dk_stream *s, const void *buf, size_t len, int timeout_ms)
{
    (void)s, (void)buf, (void)len, (void)timeout_ms;
    return BG_EIO;
}

static ssize_t f_recv(struct dk_stream *s, void *buf, size_t len, int timeout_ms)
{
    (void)s, (void)buf, (void)len, (void)timeout_ms;
    return BG_EIO;
}

static void f_shutdown_write(struct dk_stream *s) { (void)s; }
static void f_close(struct dk_stream *s) { (void)s; }

static void f_free(void *self)
{
    struct fake *f = self;
    f->freed++;
}

static const struct dk_transport_ops fake_ops = {f_request, f_hijack, f_send, f_recv,
                                                 f_shutdown_write, f_close, f_free};

static struct fake fake;
static struct docker *dk;

static int setup(void **state)
{
    (void)state;
    memset(&fake, 0, sizeof fake);
    fake.t.ops = &fake_ops;
    fake.t.self = &fake;
    dk = docker_new(&fake.t);
    return dk ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    docker_free(dk);
    assert_int_equal(fake.freed, 1); /* the client owns its transport */
    for (int i = 0; i < fake.nseen; i++)
        free(fake.seen[i].body);
    return 0;
}

static void answer(long status, const char *body)
{
    assert_true(fake.nanswers < MAX_CALLS);
    fake.answers[fake.nanswers++] = (struct canned){0, status, body};
}

static void answer_rc(int rc)
{
    assert_true(fake.nanswers < MAX_CALLS);
    fake.answers[fake.nanswers++] = (struct canned){rc, 0, NULL};
}

static void engine_api(const char *version)
{
    static char body[128];
    snprintf(body, sizeof body, "{\"Version\":\"24.0.7\",\"ApiVersion\":\"%s\",\"Os\":\"linux\"}",
             version);
    answer(200, body);
}

static void assert_request(int i, const char *method, const char *path)
{
    if (i >= fake.nseen)
        fail_msg("request %d was never sent (wanted %s %s)", i, method, path);
    if (strcmp(fake.seen[i].method, method) != 0 || strcmp(fake.seen[i].path, path) != 0)
        fail_msg("request %d: %s %s, wanted %s %s", i, fake.seen[i].method, fake.seen[i].path,
                 method, path);
}

/* ----------------------------------------------------- negotiation */

static void check_version(const char *engine, const char *want_prefix)
{
    char err[BG_ERRLEN] = "";
    engine_api(engine);
    answer(204, NULL);
    assert_int_equal(docker_start(dk, "abc", err), 0);
    assert_int_equal(fake.nseen, 2);
    assert_request(0, "GET", "/version");
    char path[128];
    snprintf(path, sizeof path, "%s/containers/abc/start", want_prefix);
    assert_request(1, "POST", path);
}

static void test_version_same(void **state)
{
    (void)state;
    check_version("1.41", "/v1.41");
    assert_string_equal(dk->version, "1.41");
    assert_string_equal(dk->engine_version, "24.0.7");
}

static void test_version_newer_engine(void **state)
{
    (void)state;
    check_version("1.45", "/v1.41");
}

static void test_version_older_engine(void **state)
{
    (void)state;
    check_version("1.39", "/v1.39");
}

static void test_version_negotiated_once(void **state)
{
    (void)state;
    char err[BG_ERRLEN];
    engine_api("1.43");
    answer(204, NULL);
    answer(204, NULL);
    assert_int_equal(docker_start(dk, "a", err), 0);
    assert_int_equal(docker_start(dk, "b", err), 0);
    assert_int_equal(fake.nseen, 3);
    assert_request(2, "POST", "/v1.41/containers/b/start");
}

static void test_ping(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "";
    answer(200, "OK");
    engine_api("1.40");
    assert_int_equal(docker_ping(dk, err), 0);
    assert_request(0, "GET", "/_ping");
    assert_request(1, "GET", "/version");
    assert_string_equal(dk->version, "1.40");
}

static void test_ping_fails(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "";
    answer_rc(BG_EIO);
    assert_int_equal(docker_ping(dk, err), BG_EENGINE);
    assert_true(err[0] != '\0');
}

static void test_version_unreachable(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "";
    answer(500, "{\"message\":\"daemon is starting\"}");
    assert_int_equal(docker_start(dk, "abc", err), BG_EENGINE);
    assert_int_equal(fake.nseen, 1); /* nothing sent unversioned */
    assert_string_equal(dk->version, "");
}

/* --------------------------------------------------------- create */

static void test_create(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "", id[65] = "";
    const char *json = "{\"Image\":\"bg-compiler/python:3.11\"}";
    engine_api("1.41");
    answer(201, "{\"Id\":\"4f2a9c\",\"Warnings\":[]}");
    assert_int_equal(docker_create(dk, "bg-run-1", json, id, err), 0);
    assert_string_equal(id, "4f2a9c");
    assert_request(1, "POST", "/v1.41/containers/create?name=bg-run-1");
    assert_string_equal(fake.seen[1].ctype, "application/json");
    assert_int_equal(fake.seen[1].len, strlen(json));
    assert_string_equal(fake.seen[1].body, json);
}

static void test_create_name_encoded(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "", id[65] = "";
    engine_api("1.41");
    answer(201, "{\"Id\":\"1\"}");
    assert_int_equal(docker_create(dk, "a b&c=d/e", "{}", id, err), 0);
    assert_request(1, "POST", "/v1.41/containers/create?name=a%20b%26c%3Dd%2Fe");
}

static void test_create_no_image(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "", id[65] = "";
    engine_api("1.41");
    answer(404, "{\"message\":\"No such image: bg-compiler/python:3.11\"}");
    assert_int_equal(docker_create(dk, "n", "{}", id, err), BG_ENOIMAGE);
    assert_string_equal(id, "");
    assert_non_null(strstr(err, "No such image: bg-compiler/python:3.11"));
}

static void test_create_engine_error(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "", id[65] = "";
    engine_api("1.41");
    /* The engine answered: refused, not unreachable (a 503 would mislead). */
    answer(409, "{\"message\":\"Conflict. The container name \\\"/n\\\" is already in use\"}");
    assert_int_equal(docker_create(dk, "n", "{}", id, err), BG_EREFUSED);
    assert_non_null(strstr(err, "The container name \"/n\" is already in use"));
    assert_non_null(strstr(err, "409"));
}

static void test_create_without_id(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "", id[65] = "";
    engine_api("1.41");
    answer(201, "{\"Warnings\":[]}");
    assert_int_equal(docker_create(dk, "n", "{}", id, err), BG_EENGINE);
    assert_true(err[0] != '\0');
}

/* --------------------------------------------------------- remove */

static void test_remove(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "";
    engine_api("1.41");
    answer(204, NULL);
    assert_int_equal(docker_remove(dk, "4f2a9c", err), 0);
    assert_request(1, "DELETE", "/v1.41/containers/4f2a9c?force=1&v=1");
}

static void test_remove_missing_is_success(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "";
    engine_api("1.41");
    answer(404, "{\"message\":\"No such container: 4f2a9c\"}");
    assert_int_equal(docker_remove(dk, "4f2a9c", err), 0);
}

static void test_remove_error(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "";
    engine_api("1.41");
    answer(409, "{\"message\":\"removal of container 4f2a9c is already in progress\"}");
    assert_int_equal(docker_remove(dk, "4f2a9c", err), BG_EREFUSED);
    assert_non_null(strstr(err, "removal of container 4f2a9c is already in progress"));
}

/* ----------------------------------------------------------- list */

/* Undo percent-encoding (for checking what the client sent). */
static void urldecode(const char *s, char *out)
{
    while (*s) {
        if (*s == '%' && s[1] && s[2]) {
            char hex[3] = {s[1], s[2], 0};
            *out++ = (char)strtol(hex, NULL, 16);
            s += 3;
        } else {
            *out++ = *s++;
        }
    }
    *out = '\0';
}

static void test_list(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "";
    struct docker_container *items = NULL;
    size_t n = 99;
    engine_api("1.41");
    answer(200, "[{\"Id\":\"aaa\",\"Labels\":{\"bg-compiler.instance\":\"abc\",\"x\":\"y\"}},"
                "{\"Id\":\"bbb\",\"Labels\":{\"other\":\"1\"}},"
                "{\"Id\":\"ccc\"},"
                "{\"Names\":[\"/no-id\"]}]");
    assert_int_equal(docker_list(dk, "bg-compiler.instance=abc", "bg-compiler.instance", &items,
                                 &n, err),
                     0);

    /* The filter travels URL-encoded, and decodes to the JSON the engine expects. */
    const char *prefix = "/v1.41/containers/json?all=1&filters=";
    const char *path = fake.seen[1].path;
    assert_string_equal(fake.seen[1].method, "GET");
    assert_int_equal(strncmp(path, prefix, strlen(prefix)), 0);
    const char *enc = path + strlen(prefix);
    assert_null(strpbrk(enc, "{}\"[]:=& "));
    char decoded[512];
    urldecode(enc, decoded);
    cJSON *f = cJSON_Parse(decoded);
    assert_non_null(f);
    const cJSON *label = cJSON_GetObjectItemCaseSensitive(f, "label");
    assert_int_equal(cJSON_GetArraySize(label), 1);
    assert_string_equal(cJSON_GetArrayItem(label, 0)->valuestring, "bg-compiler.instance=abc");
    cJSON_Delete(f);

    assert_int_equal(n, 3);
    assert_string_equal(items[0].id, "aaa");
    assert_string_equal(items[0].label, "abc");
    assert_string_equal(items[1].id, "bbb");
    assert_null(items[1].label);
    assert_string_equal(items[2].id, "ccc");
    assert_null(items[2].label);
    docker_list_free(items, n);
}

static void test_list_empty_and_error(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "";
    struct docker_container *items = NULL;
    size_t n = 99;
    engine_api("1.41");
    answer(200, "[]");
    answer(500, "{\"message\":\"list failed: disk on fire\"}");
    assert_int_equal(docker_list(dk, "bg-compiler", "bg-compiler", &items, &n, err), 0);
    assert_int_equal(n, 0);
    docker_list_free(items, n);
    items = NULL;
    assert_int_equal(docker_list(dk, "bg-compiler", "bg-compiler", &items, &n, err), BG_EREFUSED);
    assert_null(items);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err, "disk on fire"));
    docker_list_free(NULL, 0);
}

/* ------------------------------------------------------ engine errors */

static void test_engine_error_quoted(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "";
    engine_api("1.41");
    answer(500, "{\"message\":\"OCI runtime create failed: runsc not found\"}");
    answer(500, "plain text, not JSON");
    assert_int_equal(docker_start(dk, "abc", err), BG_EREFUSED);
    assert_non_null(strstr(err, "OCI runtime create failed: runsc not found"));
    assert_non_null(strstr(err, "500"));
    assert_int_equal(docker_start(dk, "abc", err), BG_EREFUSED);
    assert_non_null(strstr(err, "plain text, not JSON"));
}

static void test_start_already_started(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "";
    engine_api("1.41");
    answer(304, NULL);
    assert_int_equal(docker_start(dk, "abc", err), 0);
}

static void test_unreachable_renegotiates(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "";
    engine_api("1.41");
    answer_rc(BG_EIO); /* the engine went away */
    engine_api("1.39"); /* and came back, older */
    answer(204, NULL);
    assert_int_equal(docker_start(dk, "abc", err), BG_EENGINE);
    assert_true(err[0] != '\0');
    assert_int_equal(docker_start(dk, "abc", err), 0);
    assert_request(2, "GET", "/version");
    assert_request(3, "POST", "/v1.39/containers/abc/start");
}

static void test_timeout(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "";
    engine_api("1.41");
    answer_rc(BG_ETIMEOUT);
    assert_int_equal(docker_remove(dk, "abc", err), BG_ETIMEOUT);
    assert_true(err[0] != '\0');
}

static void test_inspect_oom(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "";
    engine_api("1.41");
    answer(200, "{\"State\":{\"OOMKilled\":true}}");
    answer(200, "{\"State\":{\"OOMKilled\":false}}");
    answer(404, "{\"message\":\"No such container\"}");
    assert_int_equal(docker_oom_killed(dk, "abc", err), 1);
    assert_request(1, "GET", "/v1.41/containers/abc/json");
    assert_int_equal(docker_oom_killed(dk, "abc", err), 0);
    assert_true(docker_oom_killed(dk, "abc", err) < 0);
}

static void test_image_exists(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "";
    engine_api("1.41");
    answer(200, "{\"Id\":\"sha256:1\"}");
    answer(404, "{\"message\":\"no such image\"}");
    assert_int_equal(docker_image_exists(dk, "bg-compiler/python:3.11", err), 1);
    assert_request(1, "GET", "/v1.41/images/bg-compiler%2Fpython%3A3.11/json");
    assert_int_equal(docker_image_exists(dk, "nope:1", err), 0);
}

/* ------------------------------------------------------------ urlencode */

static void test_urlencode(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(docker_urlencode("aZ09-_.~", out, sizeof out), 0);
    assert_string_equal(out, "aZ09-_.~");
    assert_int_equal(docker_urlencode("a b/\"{é", out, sizeof out), 0);
    assert_string_equal(out, "a%20b%2F%22%7B%C3%A9");
    assert_int_equal(docker_urlencode("", out, sizeof out), 0);
    assert_string_equal(out, "");
    char small[4];
    assert_int_equal(docker_urlencode("abcd", small, sizeof small), BG_EINVAL);
    assert_int_equal(docker_urlencode("/", small, sizeof small), 0);
    assert_string_equal(small, "%2F");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_version_same),
        T(test_version_newer_engine),
        T(test_version_older_engine),
        T(test_version_negotiated_once),
        T(test_ping),
        T(test_ping_fails),
        T(test_version_unreachable),
        T(test_create),
        T(test_create_name_encoded),
        T(test_create_no_image),
        T(test_create_engine_error),
        T(test_create_without_id),
        T(test_remove),
        T(test_remove_missing_is_success),
        T(test_remove_error),
        T(test_list),
        T(test_list_empty_and_error),
        T(test_engine_error_quoted),
        T(test_start_already_started),
        T(test_unreachable_renegotiates),
        T(test_timeout),
        T(test_inspect_oom),
        T(test_image_exists),
        T(test_urlencode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
