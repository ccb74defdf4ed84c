#include "supervisor.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/log.h"
#include "tar.h"

#define BIN_PATH "/bg/bg-supervisor"

void supervisor_volume_name(const void *blob, size_t len, char out[64])
{
    /* FNV-1a: a content tag, not a security boundary (anyone who can make
     * volumes on the engine already controls every container). */
    uint64_t h = 1469598103934665603ULL;
    const unsigned char *p = blob;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    snprintf(out, 64, "bg-supervisor-%016llx", (unsigned long long)h);
}

static char *stage_body(const char *image, const char *volume)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "Image", image);
    cJSON *cmd = cJSON_AddArrayToObject(c, "Cmd");
    cJSON_AddItemToArray(cmd, cJSON_CreateString(BIN_PATH));
    cJSON_AddBoolToObject(c, "NetworkDisabled", 1);
    cJSON *labels = cJSON_AddObjectToObject(c, "Labels");
    cJSON_AddStringToObject(labels, "org.bg-compiler.service", "bg-compiler");
    cJSON *hc = cJSON_AddObjectToObject(c, "HostConfig");
    cJSON_AddStringToObject(hc, "NetworkMode", "none");
    cJSON *mounts = cJSON_AddArrayToObject(hc, "Mounts");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "Type", "volume");
    cJSON_AddStringToObject(m, "Source", volume);
    cJSON_AddStringToObject(m, "Target", "/bg");
    cJSON_AddItemToArray(mounts, m);
    char *s = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    return s;
}

/* A container that is created, never started: a handle on the volume. */
static int stage_container(struct docker *d, const char *volume, const char *const *images,
                           char id[65], char *err)
{
    int rc = bg_fail(err, BG_ENOIMAGE, "no language image is present to stage bg-supervisor");
    for (; images && *images; images++) {
        char name[128];
        char *body = stage_body(*images, volume);
        if (!body)
            return BG_ENOMEM;
        snprintf(name, sizeof name, "%s-stage-%d-%ld", volume, (int)getpid(), (long)time(NULL));
        rc = docker_create(d, name, body, id, err);
        free(body);
        if (rc != BG_ENOIMAGE)
            return rc;
    }
    return rc;
}

static int upload(struct docker *d, const char *id, const void *blob, size_t len, char *err)
{
    struct buf tar = BUF_INIT;
    int rc = tar_add_file(&tar, "bg-supervisor", 0755, blob, len);
    if (rc == 0)
        rc = tar_finish(&tar);
    if (rc == 0)
        rc = docker_put_archive(d, id, "/bg", tar.data, tar.len, err);
    buf_free(&tar);
    return rc;
}

int supervisor_ensure(struct docker *d, const char *volume, const char *const *images,
                      const void *blob, size_t len, char err[BG_ERRLEN])
{
    char id[65] = "";
    char ignored[BG_ERRLEN];
    int rc = stage_container(d, volume, images, id, err);
    if (rc < 0)
        return rc;
    /* The volume may exist but be empty if an earlier upload was cut
     * short: check for the file itself, not only the volume. */
    rc = docker_path_exists(d, id, BIN_PATH, err);
    if (rc == 0) {
        log_info("placing bg-supervisor (%zu bytes) into volume %s", len, volume);
        rc = upload(d, id, blob, len, err);
    }
    docker_remove(d, id, ignored);
    return rc < 0 ? rc : 0;
}
