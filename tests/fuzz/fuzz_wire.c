/*
 * fuzz_wire: the wire codec (src/cluster/wire.h), whose decoders read
 * whatever sits in Redis.
 *
 * The whole input is decoded both as a spec and as a result. A refusal is
 * BG_EINVAL with a message, and what it leaves frees cleanly (LeakSanitizer).
 * An acceptance keeps the decoder's promises (language, image, a non-empty
 * run, no empty compile, named files with data, limits >= 0, a known
 * status), and one trip makes it canonical: encoded and decoded again, the
 * fields agree, and the second encoding is byte for byte the first.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/wire.h"
#include "common/err.h"
#include "sandbox/run.h"

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_wire: check failed at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_refusal(int rc, const char *err)
{
    CHECK(rc == BG_EINVAL);
    CHECK(memchr(err, '\0', BG_ERRLEN));
    CHECK(err[0]);
}

static int bytes_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static int files_equal(const struct run_file *a, size_t na, const struct run_file *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i].name, b[i].name) != 0 || a[i].exec != b[i].exec ||
            !bytes_equal(a[i].data, a[i].len, b[i].data, b[i].len))
            return 0;
    return 1;
}

static void own_text_refused(const char *err, const char *text)
{
    fprintf(stderr, "fuzz_wire: own text refused: %s\n%s\n", err, text);
    abort();
}

/* The encoding of s, which decodes again into *again. */
static char *spec_trip(const struct run_spec *s, struct run_spec *again, size_t *len)
{
    char err[BG_ERRLEN] = "";
    char *text = wire_spec_encode(s, len);
    CHECK(text && strlen(text) == *len);
    if (wire_spec_decode(text, *len, again, err) != 0)
        own_text_refused(err, text);
    return text;
}

static char *result_trip(const struct run_result *r, struct run_result *again, size_t *len)
{
    char err[BG_ERRLEN] = "";
    char *text = wire_result_encode(r, len);
    CHECK(text && strlen(text) == *len);
    if (wire_result_decode(text, *len, again, err) != 0)
        own_text_refused(err, text);
    return text;
}

static void check_spec(const struct run_spec *s)
{
    CHECK(s->language && s->image);
    CHECK(s->run && s->run[0]);
    CHECK(!s->compile || s->compile[0]);
    CHECK((s->files == NULL) == (s->nfiles == 0));
    for (size_t i = 0; i < s->nfiles; i++)
        CHECK(s->files[i].name && s->files[i].name[0] && s->files[i].data);
    CHECK(s->stdin_data || s->stdin_len == 0);
    CHECK(s->limits.timeout_ms >= 0 && s->limits.memory_mb >= 0 && s->limits.pids >= 0);
    CHECK(s->compile_limits.artifact_bytes >= 0 && s->compile_limits.output_bytes >= 0);

    struct run_spec again;
    size_t len1 = 0, len2 = 0;
    char *text1 = spec_trip(s, &again, &len1);
    CHECK(strcmp(s->language, again.language) == 0 && strcmp(s->image, again.image) == 0);
    CHECK(strcmp(s->run[0], again.run[0]) == 0);
    CHECK((s->compile == NULL) == (again.compile == NULL));
    CHECK((s->env == NULL) == (again.env == NULL) && (s->args == NULL) == (again.args == NULL));
    CHECK(files_equal(s->files, s->nfiles, again.files, again.nfiles));
    CHECK((s->stdin_data == NULL) == (again.stdin_data == NULL));
    CHECK(bytes_equal(s->stdin_data, s->stdin_len, again.stdin_data, again.stdin_len));
    CHECK(s->limits.timeout_ms == again.limits.timeout_ms);
    CHECK(s->limits.memory_mb == again.limits.memory_mb);
    CHECK(s->limits.custom_memory == again.limits.custom_memory);
    CHECK(s->compile_limits.artifact_bytes == again.compile_limits.artifact_bytes);
    struct run_spec third;
    char *text2 = spec_trip(&again, &third, &len2);
    CHECK(len1 == len2 && memcmp(text1, text2, len1) == 0);
    free(text1);
    free(text2);
    run_spec_free(&again);
    run_spec_free(&third);
}

static void check_result(const struct run_result *r)
{
    CHECK(r->status >= RUN_OK && r->status <= RUN_INTERNAL_ERROR);
    CHECK(memchr(r->message, '\0', sizeof r->message));
    CHECK((r->artifacts == NULL) == (r->nartifacts == 0));
    for (size_t i = 0; i < r->nartifacts; i++)
        CHECK(r->artifacts[i].name && r->artifacts[i].name[0] && r->artifacts[i].data);

    struct run_result again, third;
    size_t len1 = 0, len2 = 0;
    char *text1 = result_trip(r, &again, &len1);
    CHECK(r->status == again.status && strcmp(r->message, again.message) == 0);
    CHECK(r->run.present == again.run.present && r->run.exit_code == again.run.exit_code);
    CHECK(r->compile.wall_ms == again.compile.wall_ms);
    CHECK(bytes_equal(r->run.out.data, r->run.out.len, again.run.out.data, again.run.out.len));
    CHECK(bytes_equal(r->compile.err.data, r->compile.err.len, again.compile.err.data,
                      again.compile.err.len));
    CHECK(files_equal(r->artifacts, r->nartifacts, again.artifacts, again.nartifacts));
    CHECK(r->artifact_total == again.artifact_total && r->duration_ms == again.duration_ms);
    CHECK(r->engine_down == again.engine_down && r->image_missing == again.image_missing);
    char *text2 = result_trip(&again, &third, &len2);
    CHECK(len1 == len2 && memcmp(text1, text2, len1) == 0);
    free(text1);
    free(text2);
    run_result_free(&again);
    run_result_free(&third);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    char err[BG_ERRLEN] = "";

    struct run_spec spec;
    int rc = wire_spec_decode(text, size, &spec, err);
    if (rc == 0)
        check_spec(&spec);
    else
        check_refusal(rc, err);
    run_spec_free(&spec);

    struct run_result res;
    err[0] = '\0';
    rc = wire_result_decode(text, size, &res, err);
    if (rc == 0)
        check_result(&res);
    else
        check_refusal(rc, err);
    run_result_free(&res);
    return 0;
}
