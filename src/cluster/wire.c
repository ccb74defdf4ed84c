#include "wire.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/base64.h"
#include "../common/buf.h"

/* ---- the shapes of the objects: one table serves both directions ---- */

enum kind {
    K_BOOL,  /* int, as true/false */
    K_INT,   /* int */
    K_LONG,  /* long */
    K_COUNT, /* long >= 0 */
    K_SIZE,  /* size_t, read as a long >= 0 */
};

struct field {
    const char *key;
    enum kind kind;
    size_t off;
};

/* An object's scalar fields, and its other keys (handled by hand). */
struct shape {
    const struct field *fields;
    size_t nfields;
    const char *const *other; /* NULL-terminated */
};

#define FIELD(type, name, kind) {#name, kind, offsetof(type, name)}
#define COUNTOF(a) (sizeof(a) / sizeof((a)[0]))
#define LIMIT(name) FIELD(struct run_limits, name, K_COUNT)
#define STEP(name, kind) FIELD(struct step_result, name, kind)

static const struct field limit_fields[] = {
    LIMIT(timeout_ms), LIMIT(compile_timeout_ms), LIMIT(memory_mb),
    LIMIT(output_bytes), LIMIT(pids), LIMIT(nofile),
    LIMIT(tmpfs_mb), LIMIT(cpu_shares), LIMIT(artifact_bytes),
    FIELD(struct run_limits, custom_memory, K_BOOL),
};
static const struct shape limits_shape = {limit_fields, COUNTOF(limit_fields), NULL};

static const struct field file_fields[] = {FIELD(struct run_file, exec, K_BOOL)};
static const char *const file_other[] = {"name", "data", NULL};
static const struct shape file_shape = {file_fields, COUNTOF(file_fields), file_other};

static const char *const spec_other[] = {"language", "image", "compile", "run",
                                         "env", "files", "stdin", "args",
                                         "limits", "compile_limits", NULL};
static const struct shape spec_shape = {NULL, 0, spec_other};

static const struct field step_fields[] = {
    STEP(present, K_BOOL),    STEP(exit_code, K_INT),       STEP(signal, K_INT),
    STEP(timed_out, K_BOOL),  STEP(output_limit, K_BOOL),   STEP(oom_killed, K_BOOL),
    STEP(artifact_limit, K_BOOL),
    STEP(wall_ms, K_LONG),    STEP(cpu_ms, K_LONG),         STEP(memory_kb, K_LONG),
};
static const char *const step_other[] = {"out", "err", NULL};
static const struct shape step_shape = {step_fields, COUNTOF(step_fields), step_other};

static const struct field result_fields[] = {
    FIELD(struct run_result, duration_ms, K_LONG),
    FIELD(struct run_result, artifact_total, K_SIZE),
    FIELD(struct run_result, engine_down, K_BOOL),
    FIELD(struct run_result, image_missing, K_BOOL),
};
static const char *const result_other[] = {"status", "compile", "run", "artifacts", "message",
                                           NULL};
static const struct shape result_shape = {result_fields, COUNTOF(result_fields), result_other};

/* ------------------------------------------------------------- encoding */

/* The add_* return 0 or BG_ENOMEM; add_string and add_argv leave a NULL
 * pointer out. */

static int add_string(cJSON *o, const char *key, const char *s)
{
    return !s || cJSON_AddStringToObject(o, key, s) ? 0 : BG_ENOMEM;
}

/* Bytes -> base64 field. */
static int add_bytes(cJSON *o, const char *key, const void *data, size_t len)
{
    struct buf b = BUF_INIT;
    int rc = base64_encode(data, len, &b);
    if (rc == 0)
        rc = add_string(o, key, b.data);
    buf_free(&b);
    return rc;
}

static int add_argv(cJSON *o, const char *key, char *const *v)
{
    cJSON *arr = v ? cJSON_AddArrayToObject(o, key) : NULL;
    if (!v)
        return 0;
    if (!arr)
        return BG_ENOMEM;
    for (; *v; v++) {
        cJSON *s = cJSON_CreateString(*v);
        if (!s || !cJSON_AddItemToArray(arr, s)) {
            cJSON_Delete(s);
            return BG_ENOMEM;
        }
    }
    return 0;
}

static int add_fields(cJSON *o, const struct shape *sh, const void *base)
{
    for (size_t i = 0; i < sh->nfields; i++) {
        const struct field *f = &sh->fields[i];
        const char *p = (const char *)base + f->off;
        char num[32];
        if (f->kind == K_BOOL) {
            if (!cJSON_AddBoolToObject(o, f->key, *(const int *)p != 0))
                return BG_ENOMEM;
            continue;
        }
        if (f->kind == K_INT)
            snprintf(num, sizeof num, "%d", *(const int *)p);
        else if (f->kind == K_SIZE)
            snprintf(num, sizeof num, "%zu", *(const size_t *)p);
        else
            snprintf(num, sizeof num, "%ld", *(const long *)p);
        /* Raw: the integer's digits, not a double through %g. */
        if (!cJSON_AddRawToObject(o, f->key, num))
            return BG_ENOMEM;
    }
    return 0;
}

/* A new object under key (into an array when key is NULL), with the
 * scalars of shape sh from base when sh is given. */
static cJSON *add_object(cJSON *parent, const char *key, const struct shape *sh, const void *base)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || (sh && add_fields(o, sh, base) < 0))
        goto fail;
    if (key ? cJSON_AddItemToObject(parent, key, o) : cJSON_AddItemToArray(parent, o))
        return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

static int add_files(cJSON *o, const char *key, const struct run_file *files, size_t n)
{
    cJSON *arr = cJSON_AddArrayToObject(o, key);
    if (!arr)
        return BG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        cJSON *f = add_object(arr, NULL, NULL, NULL);
        if (!f || add_string(f, "name", files[i].name) < 0 ||
            add_bytes(f, "data", files[i].data, files[i].len) < 0 ||
            add_fields(f, &file_shape, &files[i]) < 0)
            return BG_ENOMEM;
    }
    return 0;
}

static int add_step(cJSON *o, const char *key, const struct step_result *s)
{
    cJSON *step = add_object(o, key, &step_shape, s);
    if (!step || add_bytes(step, "out", s->out.data, s->out.len) < 0 ||
        add_bytes(step, "err", s->err.data, s->err.len) < 0)
        return BG_ENOMEM;
    return 0;
}

/* The text of o, or NULL; o is freed either way. */
static char *finish(cJSON *o, int ok, size_t *len)
{
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (text && len)
        *len = strlen(text);
    return text;
}

char *wire_spec_encode(const struct run_spec *s, size_t *len)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o && add_string(o, "language", s->language) == 0 &&
             add_string(o, "image", s->image) == 0 && add_argv(o, "compile", s->compile) == 0 &&
             add_argv(o, "run", s->run) == 0 && add_argv(o, "env", s->env) == 0 &&
             add_files(o, "files", s->files, s->nfiles) == 0 &&
             (!s->stdin_data || add_bytes(o, "stdin", s->stdin_data, s->stdin_len) == 0) &&
             add_argv(o, "args", s->args) == 0 &&
             add_object(o, "limits", &limits_shape, &s->limits) &&
             add_object(o, "compile_limits", &limits_shape, &s->compile_limits);
    return finish(o, ok, len);
}

char *wire_result_encode(const struct run_result *r, size_t *len)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o && add_string(o, "status", run_status_name(r->status)) == 0 &&
             add_step(o, "compile", &r->compile) == 0 && add_step(o, "run", &r->run) == 0 &&
             add_files(o, "artifacts", r->artifacts, r->nartifacts) == 0 &&
             add_string(o, "message", r->message) == 0 && add_fields(o, &result_shape, r) == 0;
    return finish(o, ok, len);
}

/* ------------------------------------------------------------- decoding */

/* BG_EINVAL with "where.key: what" (or "key: what" at the top) in err. */
static int bad(char *err, const char *where, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int bad(char *err, const char *where, const char *key, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    /* Keys may be the sender's: bounded, so the reason always shows. */
    return bg_fail(err, BG_EINVAL, "%s%s%.64s: %s", where ? where : "", where ? "." : "", key,
                   what);
}

/* o's member key, or NULL with "missing" in err. */
static const cJSON *member(const cJSON *o, const char *where, const char *key, char *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v)
        bad(err, where, key, "missing");
    return v;
}

static int get_string(const cJSON *o, const char *where, const char *key, const char **out,
                      char *err)
{
    const cJSON *v = member(o, where, key, err);
    if (!v)
        return BG_EINVAL;
    if (!cJSON_IsString(v) || !v->valuestring)
        return bad(err, where, key, "must be a string");
    *out = v->valuestring;
    return 0;
}

static int dup_string(const cJSON *o, const char *key, char **out, char *err)
{
    const char *s;
    int rc = get_string(o, NULL, key, &s, err);
    if (rc == 0 && !(*out = strdup(s)))
        rc = BG_ENOMEM;
    return rc;
}

static int get_bool(const cJSON *o, const char *where, const char *key, int *out, char *err)
{
    const cJSON *v = member(o, where, key, err);
    if (!v)
        return BG_EINVAL;
    if (!cJSON_IsBool(v))
        return bad(err, where, key, "must be true or false");
    *out = cJSON_IsTrue(v);
    return 0;
}

/* An integral number within [min, max]. */
static int get_long(const cJSON *o, const char *where, const char *key, long min, long max,
                    long *out, char *err)
{
    const cJSON *v = member(o, where, key, err);
    if (!v)
        return BG_EINVAL;
    double d = v->valuedouble;
    /* NaN fails every comparison. (double)LONG_MAX rounds up to 2^63,
     * which no long holds: -(double)LONG_MIN is that bound, exactly. */
    if (!cJSON_IsNumber(v) || !(d >= (double)min && d <= (double)max && d < -(double)LONG_MIN) ||
        (double)(long)d != d)
        return bad(err, where, key, "must be an integer from %ld to %ld", min, max);
    *out = (long)d;
    return 0;
}

static int get_fields(const cJSON *o, const char *where, const struct shape *sh, void *base,
                      char *err)
{
    static const struct {
        long min, max;
    } range[] = {
        [K_INT] = {INT_MIN, INT_MAX},
        [K_LONG] = {LONG_MIN, LONG_MAX},
        [K_COUNT] = {0, LONG_MAX},
        [K_SIZE] = {0, LONG_MAX},
    };
    for (size_t i = 0; i < sh->nfields; i++) {
        const struct field *f = &sh->fields[i];
        char *p = (char *)base + f->off;
        long v = 0;
        int rc = f->kind == K_BOOL
                     ? get_bool(o, where, f->key, (int *)p, err)
                     : get_long(o, where, f->key, range[f->kind].min, range[f->kind].max, &v, err);
        if (rc < 0)
            return rc;
        if (f->kind == K_INT)
            *(int *)p = (int)v;
        else if (f->kind == K_SIZE)
            *(size_t *)p = (size_t)v;
        else if (f->kind != K_BOOL)
            *(long *)p = v;
    }
    return 0;
}

static int known(const struct shape *sh, const char *key)
{
    for (size_t i = 0; i < sh->nfields; i++)
        if (strcmp(sh->fields[i].key, key) == 0)
            return 1;
    for (const char *const *k = sh->other; k && *k; k++)
        if (strcmp(*k, key) == 0)
            return 1;
    return 0;
}

/*
 * o must be an object of shape sh: no unknown key (a newer sender's field
 * would be dropped without a word), no key twice (cJSON reads the first,
 * another reader might take the last). Its scalars are read into base.
 * At most one key more than sh has is looked at, so this stays cheap on a
 * hostile object with many keys.
 */
static int get_shaped(const cJSON *o, const char *where, const struct shape *sh, void *base,
                      char *err)
{
    const cJSON *c;
    if (!cJSON_IsObject(o))
        return bad(err, NULL, where ? where : "text", "must be an object");
    cJSON_ArrayForEach(c, o) {
        if (!known(sh, c->string))
            return bad(err, where, c->string, "unknown field");
        if (cJSON_GetObjectItemCaseSensitive(o, c->string) != c)
            return bad(err, where, c->string, "given twice");
    }
    return get_fields(o, where, sh, base, err);
}

/* A top-level member key that is an object of shape sh; it is *child. */
static int get_child(const cJSON *o, const char *key, const struct shape *sh, void *base,
                     const cJSON **child, char *err)
{
    const cJSON *v = member(o, NULL, key, err);
    if (!v)
        return BG_EINVAL;
    if (child)
        *child = v;
    return get_shaped(v, key, sh, base, err);
}

/* Base64 field -> bytes, appended to out. */
static int get_bytes(const cJSON *o, const char *where, const char *key, struct buf *out,
                     char *err)
{
    const char *s;
    int rc = get_string(o, where, key, &s, err);
    if (rc < 0)
        return rc;
    size_t len = strlen(s);
    if (buf_reserve(out, len / 4 * 3 + 3) < 0)
        return BG_ENOMEM;
    rc = base64_decode(s, len, out);
    if (rc == BG_EINVAL)
        return bad(err, where, key, "not valid base64");
    return rc;
}

/* The same into malloc'd storage (NUL-terminated past *len); when
 * optional, an absent key leaves *data NULL. */
static int get_blob(const cJSON *o, const char *where, const char *key, int optional,
                    char **data, size_t *len, char *err)
{
    struct buf b = BUF_INIT;
    if (optional && !cJSON_GetObjectItemCaseSensitive(o, key))
        return 0;
    int rc = get_bytes(o, where, key, &b, err);
    if (rc == 0) {
        *len = b.len;
        if (!(*data = buf_steal(&b)))
            rc = BG_ENOMEM;
    }
    buf_free(&b);
    return rc;
}

enum { ARGV_OPTIONAL = 1, ARGV_NONEMPTY = 2 };

/* Array of strings -> NULL-terminated char **, kept so at every step
 * (run_spec_free frees a half-made one). */
static int get_argv(const cJSON *o, const char *key, int flags, char ***out, char *err)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, key), *s;
    if (!arr && (flags & ARGV_OPTIONAL))
        return 0;
    if (!cJSON_IsArray(arr))
        return bad(err, NULL, key, arr ? "must be an array of strings" : "missing");
    size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
    if (n == 0 && (flags & ARGV_NONEMPTY))
        return bad(err, NULL, key, "must not be empty");
    char **v = calloc(n + 1, sizeof *v);
    if (!(*out = v))
        return BG_ENOMEM;
    cJSON_ArrayForEach(s, arr) {
        if (!cJSON_IsString(s) || !s->valuestring)
            return bg_fail(err, BG_EINVAL, "%s[%zu]: must be a string", key, i);
        if (!(v[i++] = strdup(s->valuestring)))
            return BG_ENOMEM;
    }
    return 0;
}

static int get_file(const cJSON *o, const char *where, struct run_file *f, char *err)
{
    const char *name;
    int rc = get_shaped(o, where, &file_shape, f, err);
    if (rc == 0)
        rc = get_string(o, where, "name", &name, err);
    if (rc == 0 && !name[0])
        rc = bad(err, where, "name", "must not be empty");
    if (rc == 0 && !(f->name = strdup(name)))
        rc = BG_ENOMEM;
    if (rc == 0)
        rc = get_blob(o, where, "data", 0, &f->data, &f->len, err);
    return rc;
}

/* An absent array is no files. */
static int get_files(const cJSON *o, const char *key, struct run_file **files, size_t *n,
                     char *err)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, key), *item;
    if (!arr)
        return 0;
    if (!cJSON_IsArray(arr))
        return bad(err, NULL, key, "must be an array of files");
    size_t count = (size_t)cJSON_GetArraySize(arr), i = 0;
    if (count == 0)
        return 0;
    if (!(*files = calloc(count, sizeof **files)))
        return BG_ENOMEM;
    *n = count; /* the entries not reached yet are empty, so freeing works */
    cJSON_ArrayForEach(item, arr) {
        char where[48];
        snprintf(where, sizeof where, "%s[%zu]", key, i);
        int rc = get_file(item, where, &(*files)[i++], err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int get_step(const cJSON *o, const char *key, struct step_result *s, char *err)
{
    const cJSON *step;
    int rc = get_child(o, key, &step_shape, s, &step, err);
    if (rc == 0)
        rc = get_bytes(step, key, "out", &s->out, err);
    if (rc == 0)
        rc = get_bytes(step, key, "err", &s->err, err);
    return rc;
}

static int get_status(const cJSON *o, enum run_status *out, char *err)
{
    const char *name;
    int rc = get_string(o, NULL, "status", &name, err);
    if (rc < 0)
        return rc;
    /* RUN_INTERNAL_ERROR is the last status. */
    for (int s = RUN_OK; s <= RUN_INTERNAL_ERROR; s++) {
        if (strcmp(run_status_name((enum run_status)s), name) == 0) {
            *out = (enum run_status)s;
            return 0;
        }
    }
    return bad(err, NULL, "status", "unknown status '%.40s'", name);
}

/* Copy s into dst[cap], cut before a UTF-8 character rather than inside. */
static void copy_message(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap) {
        n = cap - 1;
        while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* Whether a JSON string in text holds \u0000: cJSON would end the C
 * string there and drop the rest without a word. */
static int escaped_nul(const char *text, size_t len)
{
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        if (!in_string) {
            in_string = text[i] == '"';
        } else if (text[i] == '"') {
            in_string = 0;
        } else if (text[i] == '\\') {
            if (len - i >= 6 && memcmp(text + i + 1, "u0000", 5) == 0)
                return 1;
            i++; /* the escaped character */
        }
    }
    return 0;
}

/* One whole JSON object, nothing after it but whitespace. */
static int parse(const char *text, size_t len, cJSON **root, char *err)
{
    const char *end = NULL;
    *root = NULL;
    if (!text || !len)
        return bg_fail(err, BG_EINVAL, "text: empty");
    if (memchr(text, '\0', len))
        return bg_fail(err, BG_EINVAL, "text: holds a NUL byte");
    if (escaped_nul(text, len))
        return bg_fail(err, BG_EINVAL, "text: a string holds \\u0000");
    *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!*root)
        return bg_fail(err, BG_EINVAL, "text: not JSON (error at byte %zu)",
                       end ? (size_t)(end - text) : 0);
    while (end < text + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (end != text + len)
        return bg_fail(err, BG_EINVAL, "text: more after the JSON value (at byte %zu)",
                       (size_t)(end - text));
    if (!cJSON_IsObject(*root))
        return bg_fail(err, BG_EINVAL, "text: not a JSON object");
    return 0;
}

static int spec_from_json(const cJSON *o, struct run_spec *out, char *err)
{
    int rc = get_shaped(o, NULL, &spec_shape, out, err);
    if (rc == 0)
        rc = dup_string(o, "language", &out->language, err);
    if (rc == 0)
        rc = dup_string(o, "image", &out->image, err);
    if (rc == 0)
        rc = get_argv(o, "compile", ARGV_OPTIONAL | ARGV_NONEMPTY, &out->compile, err);
    if (rc == 0)
        rc = get_argv(o, "run", ARGV_NONEMPTY, &out->run, err);
    if (rc == 0)
        rc = get_argv(o, "env", ARGV_OPTIONAL, &out->env, err);
    if (rc == 0)
        rc = get_files(o, "files", &out->files, &out->nfiles, err);
    if (rc == 0)
        rc = get_blob(o, NULL, "stdin", 1, &out->stdin_data, &out->stdin_len, err);
    if (rc == 0)
        rc = get_argv(o, "args", ARGV_OPTIONAL, &out->args, err);
    if (rc == 0)
        rc = get_child(o, "limits", &limits_shape, &out->limits, NULL, err);
    if (rc == 0)
        rc = get_child(o, "compile_limits", &limits_shape, &out->compile_limits, NULL, err);
    return rc;
}

static int result_from_json(const cJSON *o, struct run_result *out, char *err)
{
    const char *message;
    int rc = get_shaped(o, NULL, &result_shape, out, err);
    if (rc == 0)
        rc = get_status(o, &out->status, err);
    if (rc == 0)
        rc = get_step(o, "compile", &out->compile, err);
    if (rc == 0)
        rc = get_step(o, "run", &out->run, err);
    if (rc == 0)
        rc = get_files(o, "artifacts", &out->artifacts, &out->nartifacts, err);
    if (rc == 0)
        rc = get_string(o, NULL, "message", &message, err);
    if (rc == 0)
        copy_message(out->message, sizeof out->message, message);
    return rc;
}

int wire_spec_decode(const char *text, size_t len, struct run_spec *out, char err[BG_ERRLEN])
{
    cJSON *root;
    memset(out, 0, sizeof *out);
    int rc = parse(text, len, &root, err);
    if (rc == 0)
        rc = spec_from_json(root, out, err);
    cJSON_Delete(root);
    return rc == BG_ENOMEM ? bg_fail(err, rc, "out of memory") : rc;
}

int wire_result_decode(const char *text, size_t len, struct run_result *out,
                       char err[BG_ERRLEN])
{
    cJSON *root;
    run_result_init(out);
    int rc = parse(text, len, &root, err);
    if (rc == 0)
        rc = result_from_json(root, out, err);
    cJSON_Delete(root);
    return rc == BG_ENOMEM ? bg_fail(err, rc, "out of memory") : rc;
}
