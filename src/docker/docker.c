#include "docker.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALL_TIMEOUT_MS 30000L

struct docker *docker_new(struct dk_transport *t)
{
    struct docker *d = calloc(1, sizeof *d);
    if (!d) {
        transport_free(t);
        return NULL;
    }
    d->t = t;
    return d;
}

void docker_free(struct docker *d)
{
    if (!d)
        return;
    transport_free(d->t);
    free(d);
}

int docker_urlencode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '~';
        if (o + 4 > cap)
            return BG_EINVAL;
        if (plain) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return 0;
}

/* The engine's error bodies are {"message": "..."}; quote that. */
static int engine_error(const struct dk_response *r, const char *what, char *err)
{
    const char *msg = r->body.data ? r->body.data : "";
    cJSON *j = cJSON_Parse(msg);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
    /* The engine is there; it said no. Not the same as unreachable. */
    int rc = bg_fail(err, BG_EREFUSED, "%s: engine answered %ld: %.180s", what, r->status,
                     cJSON_IsString(m) ? m->valuestring : msg);
    cJSON_Delete(j);
    return rc;
}

static int negotiate(struct docker *d, char *err);

/* One versioned call; resp is reset first and must be freed by the caller. */
static int call(struct docker *d, const char *method, const char *path, const char *ctype,
                const void *body, size_t len, long timeout_ms, struct dk_response *resp,
                char *err)
{
    char full[2048];
    if (!d->version[0]) {
        int rc = negotiate(d, err);
        if (rc < 0)
            return rc;
    }
    snprintf(full, sizeof full, "/v%s%s", d->version, path);
    int rc = d->t->ops->request(d->t->self, method, full, ctype, body, len, timeout_ms, resp);
    if (rc == BG_ETIMEOUT)
        return bg_fail(err, rc, "%s %s: the engine did not answer in time", method, path);
    if (rc < 0) {
        /* The engine may have restarted: negotiate again next time. */
        d->version[0] = '\0';
        return bg_fail(err, BG_EENGINE, "cannot reach the docker engine (%s %s)", method, path);
    }
    return 0;
}

/* Pick the lower of two "1.NN" versions. */
static void lower_version(const char *a, const char *b, char out[16])
{
    int amaj = 0, amin = 0, bmaj = 0, bmin = 0;
    sscanf(a, "%d.%d", &amaj, &amin);
    sscanf(b, "%d.%d", &bmaj, &bmin);
    if (amaj < bmaj || (amaj == bmaj && amin < bmin))
        snprintf(out, 16, "%d.%d", amaj, amin);
    else
        snprintf(out, 16, "%d.%d", bmaj, bmin);
}

static int negotiate(struct docker *d, char *err)
{
    struct dk_response r = {0, BUF_INIT};
    int rc = d->t->ops->request(d->t->self, "GET", "/version", NULL, NULL, 0, 5000, &r);
    if (rc < 0 || r.status != 200) {
        rc = bg_fail(err, BG_EENGINE, "cannot reach the docker engine (GET /version%s)",
                     rc == BG_ETIMEOUT ? ": timed out" : "");
        goto out;
    }
    cJSON *j = cJSON_Parse(r.body.data);
    const cJSON *api = cJSON_GetObjectItemCaseSensitive(j, "ApiVersion");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(j, "Version");
    if (cJSON_IsString(api) && strlen(api->valuestring) < 16)
        lower_version(api->valuestring, DOCKER_API_WANT, d->version);
    else
        snprintf(d->version, sizeof d->version, "%s", DOCKER_API_WANT);
    snprintf(d->engine_version, sizeof d->engine_version, "%s",
             cJSON_IsString(ver) ? ver->valuestring : "unknown");
    cJSON_Delete(j);
    rc = 0;
out:
    buf_free(&r.body);
    return rc;
}

int docker_ping(struct docker *d, char err[BG_ERRLEN])
{
    struct dk_response r = {0, BUF_INIT};
    int rc = d->t->ops->request(d->t->self, "GET", "/_ping", NULL, NULL, 0, 3000, &r);
    if (rc < 0 || r.status != 200)
        rc = bg_fail(err, BG_EENGINE, "the docker engine does not answer /_ping");
    else
        rc = negotiate(d, err);
    buf_free(&r.body);
    return rc;
}

int docker_create(struct docker *d, const char *name, const char *json, char id[65],
                  char err[BG_ERRLEN])
{
    struct dk_response r = {0, BUF_INIT};
    char path[512];
    char enc[300];
    if (docker_urlencode(name, enc, sizeof enc) < 0)
        return bg_fail(err, BG_EINVAL, "container name too long");
    snprintf(path, sizeof path, "/containers/create?name=%s", enc);
    int rc = call(d, "POST", path, "application/json", json, strlen(json), CALL_TIMEOUT_MS, &r,
                  err);
    if (rc < 0)
        goto out;
    if (r.status == 404) {
        rc = engine_error(&r, "create", err);
        rc = BG_ENOIMAGE;
        goto out;
    }
    if (r.status != 201) {
        rc = engine_error(&r, "create", err);
        goto out;
    }
    cJSON *j = cJSON_Parse(r.body.data);
    const cJSON *jid = cJSON_GetObjectItemCaseSensitive(j, "Id");
    if (cJSON_IsString(jid) && strlen(jid->valuestring) < 65) {
        snprintf(id, 65, "%s", jid->valuestring);
        rc = 0;
    } else {
        rc = bg_fail(err, BG_EENGINE, "create: no container id in the engine's answer");
    }
    cJSON_Delete(j);
out:
    buf_free(&r.body);
    return rc;
}

/* A call whose only outcome is its status. ok2 is a second success status. */
static int simple(struct docker *d, const char *method, const char *path, long ok1, long ok2,
                  const char *what, char *err)
{
    struct dk_response r = {0, BUF_INIT};
    int rc = call(d, method, path, NULL, NULL, 0, CALL_TIMEOUT_MS, &r, err);
    if (rc == 0 && r.status != ok1 && r.status != ok2)
        rc = engine_error(&r, what, err);
    buf_free(&r.body);
    return rc;
}

int docker_start(struct docker *d, const char *id, char err[BG_ERRLEN])
{
    char path[128];
    snprintf(path, sizeof path, "/containers/%s/start", id);
    return simple(d, "POST", path, 204, 304, "start", err);
}

int docker_remove(struct docker *d, const char *id, char err[BG_ERRLEN])
{
    char path[128];
    snprintf(path, sizeof path, "/containers/%s?force=1&v=1", id);
    return simple(d, "DELETE", path, 204, 404, "remove", err);
}

int docker_volume_remove(struct docker *d, const char *name, char err[BG_ERRLEN])
{
    char path[512], enc[300];
    if (docker_urlencode(name, enc, sizeof enc) < 0)
        return bg_fail(err, BG_EINVAL, "volume name too long");
    snprintf(path, sizeof path, "/volumes/%s?force=1", enc);
    return simple(d, "DELETE", path, 204, 404, "volume remove", err);
}

int docker_attach(struct docker *d, const char *id, struct dk_stream **out, char err[BG_ERRLEN])
{
    char path[256];
    if (!d->version[0]) {
        int rc = negotiate(d, err);
        if (rc < 0)
            return rc;
    }
    snprintf(path, sizeof path, "/v%s/containers/%s/attach?stream=1&stdin=1&stdout=1&stderr=1",
             d->version, id);
    int rc = d->t->ops->hijack(d->t->self, path, 10000, out);
    if (rc < 0)
        return bg_fail(err, rc, "attach to %.12s failed: %s", id, bg_strerror(rc));
    return 0;
}

/* GET a JSON object; 1 found (j set), 0 on 404, or a BG_E* code. */
static int get_json(struct docker *d, const char *path, const char *what, cJSON **j, char *err)
{
    struct dk_response r = {0, BUF_INIT};
    int rc = call(d, "GET", path, NULL, NULL, 0, CALL_TIMEOUT_MS, &r, err);
    if (rc < 0)
        goto out;
    if (r.status == 404) {
        rc = 0;
        goto out;
    }
    if (r.status != 200) {
        rc = engine_error(&r, what, err);
        goto out;
    }
    if (j) {
        *j = cJSON_Parse(r.body.data);
        if (!*j) {
            rc = bg_fail(err, BG_EENGINE, "%s: unreadable answer", what);
            goto out;
        }
    }
    rc = 1;
out:
    buf_free(&r.body);
    return rc;
}

int docker_oom_killed(struct docker *d, const char *id, char err[BG_ERRLEN])
{
    char path[128];
    cJSON *j = NULL;
    snprintf(path, sizeof path, "/containers/%s/json", id);
    int rc = get_json(d, path, "inspect", &j, err);
    if (rc <= 0)
        return rc < 0 ? rc : bg_fail(err, BG_ENOTFOUND, "container %.12s is gone", id);
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(j, "State");
    rc = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(state, "OOMKilled")) ? 1 : 0;
    cJSON_Delete(j);
    return rc;
}

int docker_image_exists(struct docker *d, const char *image, char err[BG_ERRLEN])
{
    char path[600], enc[400];
    if (docker_urlencode(image, enc, sizeof enc) < 0)
        return bg_fail(err, BG_EINVAL, "image name too long");
    snprintf(path, sizeof path, "/images/%s/json", enc);
    return get_json(d, path, "image inspect", NULL, err);
}

int docker_volume_exists(struct docker *d, const char *name, char err[BG_ERRLEN])
{
    char path[600], enc[400];
    if (docker_urlencode(name, enc, sizeof enc) < 0)
        return bg_fail(err, BG_EINVAL, "volume name too long");
    snprintf(path, sizeof path, "/volumes/%s", enc);
    return get_json(d, path, "volume inspect", NULL, err);
}

int docker_put_archive(struct docker *d, const char *id, const char *path, const void *tar,
                       size_t len, char err[BG_ERRLEN])
{
    struct dk_response r = {0, BUF_INIT};
    char url[600], enc[400];
    if (docker_urlencode(path, enc, sizeof enc) < 0)
        return bg_fail(err, BG_EINVAL, "path too long");
    snprintf(url, sizeof url, "/containers/%s/archive?path=%s", id, enc);
    int rc = call(d, "PUT", url, "application/x-tar", tar, len, CALL_TIMEOUT_MS, &r, err);
    if (rc == 0 && r.status != 200)
        rc = engine_error(&r, "archive upload", err);
    buf_free(&r.body);
    return rc;
}

int docker_path_exists(struct docker *d, const char *id, const char *path, char err[BG_ERRLEN])
{
    struct dk_response r = {0, BUF_INIT};
    char url[600], enc[400];
    if (docker_urlencode(path, enc, sizeof enc) < 0)
        return bg_fail(err, BG_EINVAL, "path too long");
    snprintf(url, sizeof url, "/containers/%s/archive?path=%s", id, enc);
    int rc = call(d, "HEAD", url, NULL, NULL, 0, CALL_TIMEOUT_MS, &r, err);
    if (rc == 0)
        rc = r.status == 200 ? 1 : r.status == 404 ? 0 : engine_error(&r, "stat", err);
    buf_free(&r.body);
    return rc;
}

int docker_pull(struct docker *d, const char *image, long timeout_ms, char err[BG_ERRLEN])
{
    struct dk_response r = {0, BUF_INIT};
    char url[600], enc[400];
    if (docker_urlencode(image, enc, sizeof enc) < 0)
        return bg_fail(err, BG_EINVAL, "image name too long");
    snprintf(url, sizeof url, "/images/create?fromImage=%s", enc);
    int rc = call(d, "POST", url, NULL, NULL, 0, timeout_ms, &r, err);
    /* The engine streams progress with a 200 even when the pull fails. */
    if (rc == 0 && (r.status != 200 || (r.body.data && strstr(r.body.data, "\"error\""))))
        rc = bg_fail(err, BG_ENOIMAGE, "pull of %s failed", image);
    buf_free(&r.body);
    return rc;
}

int docker_list(struct docker *d, const char *filter_label, const char *want_label,
                struct docker_container **out, size_t *n, char err[BG_ERRLEN])
{
    char filters[512], enc[1024], path[1200];
    cJSON *j = NULL;
    int rc;
    *out = NULL;
    *n = 0;
    snprintf(filters, sizeof filters, "{\"label\":[\"%s\"]}", filter_label);
    if (docker_urlencode(filters, enc, sizeof enc) < 0)
        return bg_fail(err, BG_EINVAL, "label filter too long");
    snprintf(path, sizeof path, "/containers/json?all=1&filters=%s", enc);
    rc = get_json(d, path, "list", &j, err);
    if (rc <= 0)
        return rc < 0 ? rc : bg_fail(err, BG_EENGINE, "list: not found");
    int count = cJSON_GetArraySize(j);
    struct docker_container *items = calloc((size_t)count + 1, sizeof *items);
    if (!items) {
        cJSON_Delete(j);
        return BG_ENOMEM;
    }
    size_t k = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, j)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "Id");
        const cJSON *labels = cJSON_GetObjectItemCaseSensitive(c, "Labels");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(labels, want_label);
        if (!cJSON_IsString(id) || strlen(id->valuestring) >= 65)
            continue;
        snprintf(items[k].id, 65, "%s", id->valuestring);
        items[k].label = cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
        k++;
    }
    cJSON_Delete(j);
    *out = items;
    *n = k;
    return 0;
}

void docker_list_free(struct docker_container *items, size_t n)
{
    if (!items)
        return;
    for (size_t i = 0; i < n; i++)
        free(items[i].label);
    free(items);
}
