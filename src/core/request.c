#include "request.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PIDS 64
#define DEFAULT_NOFILE 256
#define DEFAULT_TMPFS_MB 64

static int fail(struct request_error *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct request_error *e, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    e->status = status;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return BG_EINVAL;
}

int request_has_escaped_nul(const char *body, size_t len)
{
    for (size_t i = 0; i + 6 <= len; i++) {
        if (body[i] != '\\')
            continue;
        /* "\\u0000" is an escaped backslash then text: count the run. */
        size_t run = 0;
        while (i + run < len && body[i + run] == '\\')
            run++;
        if (run % 2 == 1 && i + run + 5 <= len && body[i + run] == 'u' &&
            strncmp(body + i + run + 1, "0000", 4) == 0)
            return 1;
        i += run - 1;
    }
    return 0;
}

static long lowest(long profile_value, long flag_value)
{
    if (profile_value > 0 && profile_value < flag_value)
        return profile_value;
    return flag_value;
}

void request_limits(const struct profile *p, const struct config *cfg, struct run_limits *out)
{
    const struct limits *l = &p->limits, *c = &p->compile_limits;
    long flag_timeout = cfg->timeout_s * 1000;
    out->timeout_ms = lowest(l->timeout_ms, flag_timeout);
    out->compile_timeout_ms = lowest(c->timeout_ms ? c->timeout_ms : l->timeout_ms, flag_timeout);
    /* One container serves both steps here, so it gets the larger need. */
    long mem = l->memory_mb > c->memory_mb ? l->memory_mb : c->memory_mb;
    out->memory_mb = lowest(mem, cfg->memory_mb);
    out->output_bytes = lowest(l->output_kb, cfg->output_kb) * 1024;
    long pids = l->pids > c->pids ? l->pids : c->pids;
    out->pids = pids ? pids : DEFAULT_PIDS;
    out->nofile = l->nofile ? l->nofile : DEFAULT_NOFILE;
    out->tmpfs_mb = l->tmpfs_mb ? l->tmpfs_mb : DEFAULT_TMPFS_MB;
    out->cpu_shares = cfg->cpu_shares;
}

static int parse_count_text(const char *text, const struct config *cfg, size_t *count,
                            struct request_error *e)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < 1 || v > cfg->max_count)
        return fail(e, 400, "bad_count", "count must be a whole number from 1 to %ld", cfg->max_count);
    *count = (size_t)v;
    return 0;
}

/* The program's environment: ours first, the profile's own win. */
static char **build_env(const struct profile *p)
{
    static const char *const defaults[] = {
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/work",
        "TMPDIR=/tmp", "LANG=C.UTF-8", NULL};
    size_t n = strv_len(p->env);
    char **env = calloc(n + 5, sizeof *env);
    size_t k = 0;
    if (!env)
        return NULL;
    for (size_t i = 0; defaults[i]; i++) {
        size_t key = (size_t)(strchr(defaults[i], '=') - defaults[i]);
        int overridden = 0;
        for (size_t j = 0; j < n; j++)
            if (strncmp(p->env[j], defaults[i], key + 1) == 0)
                overridden = 1;
        if (!overridden && !(env[k++] = strdup(defaults[i])))
            goto nomem;
    }
    for (size_t j = 0; j < n; j++)
        if (!(env[k++] = strdup(p->env[j])))
            goto nomem;
    return env;
nomem:
    strv_free(env);
    return NULL;
}

static int add_file(struct run_spec *spec, const char *name, const char *data, size_t len)
{
    struct run_file *files = realloc(spec->files, (spec->nfiles + 1) * sizeof *files);
    if (!files)
        return BG_ENOMEM;
    spec->files = files;
    struct run_file *f = &files[spec->nfiles];
    f->name = strdup(name);
    f->data = malloc(len ? len : 1);
    if (!f->name || !f->data) {
        free(f->name);
        free(f->data);
        return BG_ENOMEM;
    }
    memcpy(f->data, data, len);
    f->len = len;
    spec->nfiles++;
    return 0;
}

/* What the JSON asked for, before it is checked against profiles. */
struct fields {
    const char *lang, *script, *stdin_text, *image, *cmd, *extension;
    size_t script_len, stdin_len;
    size_t count;
};

static const char *const known_fields[] = {"lang", "script", "count", "stdin", "image", "cmd",
                                           "extension", "stdIn", "input", NULL};

static int get_string(const cJSON *root, const char *key, const char **out, size_t *len,
                      struct request_error *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v))
        return fail(e, 400, "bad_type", "'%s' must be a string", key);
    *out = v->valuestring;
    if (len)
        *len = strlen(v->valuestring);
    return 0;
}

static int read_fields(const cJSON *root, const struct config *cfg, struct fields *f,
                       struct request_error *e)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, root)
    {
        int known = 0;
        for (size_t i = 0; known_fields[i]; i++)
            known |= strcmp(item->string, known_fields[i]) == 0;
        if (!known)
            return fail(e, 400, "unknown_field", "unknown field '%.64s'", item->string);
    }
    if (get_string(root, "lang", &f->lang, NULL, e) || get_string(root, "script", &f->script, &f->script_len, e) ||
        get_string(root, "image", &f->image, NULL, e) || get_string(root, "cmd", &f->cmd, NULL, e) ||
        get_string(root, "extension", &f->extension, NULL, e) ||
        get_string(root, "stdin", &f->stdin_text, &f->stdin_len, e) ||
        get_string(root, "stdIn", &f->stdin_text, &f->stdin_len, e) ||
        get_string(root, "input", &f->stdin_text, &f->stdin_len, e))
        return BG_EINVAL;
    const cJSON *count = cJSON_GetObjectItemCaseSensitive(root, "count");
    f->count = 1;
    if (count && !cJSON_IsNull(count)) {
        double d = cJSON_IsNumber(count) ? count->valuedouble : 0;
        if (!cJSON_IsNumber(count) || d != (double)(long)d || d < 1 || d > (double)cfg->max_count)
            return fail(e, 400, "bad_count", "count must be a whole number from 1 to %ld",
                        cfg->max_count);
        f->count = (size_t)d;
    }
    if (!f->script)
        return fail(e, 400, "missing_field", "'script' is required");
    return 0;
}

static int extension_valid(const char *ext)
{
    if (!*ext || strlen(ext) > 16)
        return 0;
    for (; *ext; ext++)
        if (!isalnum((unsigned char)*ext))
            return 0;
    return 1;
}

/* Fill spec for profile p with the main file name and the run argv. */
static int fill_spec(struct run_spec *spec, const struct profile *p, const struct config *cfg,
                     const char *file, const char *cmd)
{
    spec->language = strdup(p->name);
    spec->image = strdup(p->image);
    spec->env = build_env(p);
    if (cmd) {
        /* The original ran `sh -c "<cmd> <file>"`; we keep that for its
         * users, but only inside the sandbox, where the client already
         * controls everything. */
        size_t n = strlen(cmd) + strlen(file) + 2;
        char *line = malloc(n);
        spec->run = calloc(4, sizeof *spec->run);
        if (line && spec->run) {
            snprintf(line, n, "%s %s", cmd, file);
            spec->run[0] = strdup("/bin/sh");
            spec->run[1] = strdup("-c");
            spec->run[2] = line;
            line = NULL;
        }
        free(line);
    } else {
        spec->run = strv_dup(p->run);
        if (p->compile)
            spec->compile = strv_dup(p->compile);
    }
    request_limits(p, cfg, &spec->limits);
    if (!spec->language || !spec->image || !spec->env || !spec->run || !spec->run[0] ||
        (p->compile && !cmd && !spec->compile))
        return BG_ENOMEM;
    return 0;
}

static int from_json(const struct request_in *in, const struct profile_set *set,
                     const struct config *cfg, struct run_spec *spec, size_t *count,
                     const struct profile **prof, struct request_error *e)
{
    struct fields f = {0};
    const struct profile *p = NULL;
    char file[64];
    int rc;
    if (request_has_escaped_nul(in->body, in->body_len))
        return fail(e, 400, "bad_json", "strings may not contain \\u0000 (send binary as base64)");
    cJSON *root = cJSON_ParseWithLength(in->body, in->body_len);
    if (!root)
        return fail(e, 400, "bad_json", "the body is not valid JSON (near byte %ld)",
                    (long)(cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - in->body : 0));
    if (!cJSON_IsObject(root)) {
        rc = fail(e, 400, "bad_json", "the body must be a JSON object");
        goto out;
    }
    rc = read_fields(root, cfg, &f, e);
    if (rc < 0)
        goto out;
    if (f.lang) {
        p = profile_find(set, f.lang);
        if (!p) {
            rc = fail(e, 404, "unknown_language", "unknown language '%.64s' (see GET /languages)", f.lang);
            goto out;
        }
    } else if (f.image) {
        if (!profile_image_allowed(set, f.image)) {
            rc = fail(e, 403, "image_not_allowed",
                      "image '%.100s' is not one of the service's languages", f.image);
            goto out;
        }
        p = profile_find_image(set, f.image);
        if (!p) {
            rc = fail(e, 403, "image_not_allowed",
                      "image '%.100s' is allowed but no language profile describes it", f.image);
            goto out;
        }
    } else {
        rc = fail(e, 400, "missing_field", "'lang' is required (or the original's 'image')");
        goto out;
    }
    if (f.extension && !extension_valid(f.extension)) {
        rc = fail(e, 400, "bad_extension", "'extension' must be 1 to 16 letters or digits");
        goto out;
    }
    if (f.script_len == 0) {
        rc = fail(e, 400, "empty_script", "the main file is empty");
        goto out;
    }
    snprintf(file, sizeof file, "main.%s", f.extension ? f.extension : "");
    const char *main_file = f.extension ? file : p->file;
    rc = fill_spec(spec, p, cfg, main_file, f.cmd);
    if (rc == 0)
        rc = add_file(spec, main_file, f.script, f.script_len);
    if (rc == 0 && f.stdin_text && f.stdin_len) {
        spec->stdin_data = strdup(f.stdin_text);
        spec->stdin_len = f.stdin_len;
        if (!spec->stdin_data)
            rc = BG_ENOMEM;
    }
    if (rc == BG_ENOMEM)
        fail(e, 500, "internal_error", "out of memory");
    *count = f.count;
    *prof = p;
out:
    cJSON_Delete(root);
    return rc;
}

static int from_raw(const struct request_in *in, const struct profile_set *set,
                    const struct config *cfg, struct run_spec *spec, size_t *count,
                    const struct profile **prof, struct request_error *e)
{
    if (!in->query_lang || !*in->query_lang)
        return fail(e, 400, "missing_field",
                    "the language is required: POST /compile?lang=NAME (or send JSON)");
    const struct profile *p = profile_find(set, in->query_lang);
    if (!p)
        return fail(e, 404, "unknown_language", "unknown language '%.64s' (see GET /languages)",
                    in->query_lang);
    *count = 1;
    if (in->query_count && parse_count_text(in->query_count, cfg, count, e) < 0)
        return BG_EINVAL;
    if (in->body_len == 0)
        return fail(e, 400, "empty_script", "the main file is empty");
    int rc = fill_spec(spec, p, cfg, p->file, NULL);
    if (rc == 0)
        rc = add_file(spec, p->file, in->body, in->body_len);
    if (rc < 0)
        return fail(e, 500, "internal_error", "out of memory");
    *prof = p;
    return 0;
}

static int is_json(const char *ct)
{
    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    return strncasecmp(ct, "application/json", 16) == 0;
}

int request_parse(const struct request_in *in, const struct profile_set *set,
                  const struct config *cfg, struct run_spec *spec, size_t *count,
                  const struct profile **profile, struct request_error *e)
{
    memset(spec, 0, sizeof *spec);
    int rc = is_json(in->content_type) ? from_json(in, set, cfg, spec, count, profile, e)
                                        : from_raw(in, set, cfg, spec, count, profile, e);
    if (rc < 0)
        run_spec_free(spec);
    return rc;
}
