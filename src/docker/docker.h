/*
 * docker: the parts of the Docker Engine API the service uses.
 *
 * Uses: transport (the engine's HTTP), cJSON (bodies). The API version is
 * negotiated on the first call (GET /_ping): the lower of the engine's and
 * DOCKER_API_WANT. Every call returns 0 or a BG_E* code and, on failure,
 * fills err with what the engine said.
 */
#ifndef BG_DOCKER_H
#define BG_DOCKER_H

#include <stddef.h>

#include "../common/err.h"
#include "transport.h"

#define DOCKER_API_WANT "1.41"

struct docker {
    struct dk_transport *t; /* owned */
    char version[16];       /* negotiated API version, "" before the ping */
    char engine_version[64];
};

/* Owns t (frees it in docker_free). NULL on allocation failure. */
struct docker *docker_new(struct dk_transport *t);
void docker_free(struct docker *d);

/* GET /_ping and /version: negotiates the API version. */
int docker_ping(struct docker *d, char err[BG_ERRLEN]);

/* Create a container from a JSON body; writes its id (65 bytes). */
int docker_create(struct docker *d, const char *name, const char *json, char id[65],
                  char err[BG_ERRLEN]);
int docker_start(struct docker *d, const char *id, char err[BG_ERRLEN]);
/* Attach stdin, stdout and stderr as a raw stream (call before start). */
int docker_attach(struct docker *d, const char *id, struct dk_stream **out, char err[BG_ERRLEN]);
/* Remove with force and anonymous volumes; a missing container is success. */
int docker_remove(struct docker *d, const char *id, char err[BG_ERRLEN]);
/* State.OOMKilled of a container: 1, 0, or a BG_E* code. */
int docker_oom_killed(struct docker *d, const char *id, char err[BG_ERRLEN]);
/* 1 if the image exists, 0 if not, or a BG_E* code. */
int docker_image_exists(struct docker *d, const char *image, char err[BG_ERRLEN]);
/* 1 if the volume exists, 0 if not, or a BG_E* code. */
int docker_volume_exists(struct docker *d, const char *name, char err[BG_ERRLEN]);
int docker_volume_remove(struct docker *d, const char *name, char err[BG_ERRLEN]);
/* PUT a tar archive into the container at path. */
int docker_put_archive(struct docker *d, const char *id, const char *path, const void *tar,
                       size_t len, char err[BG_ERRLEN]);
/* 1 if path exists in the container's filesystem, 0 if not, or BG_E*. */
int docker_path_exists(struct docker *d, const char *id, const char *path, char err[BG_ERRLEN]);
/* POST /images/create?fromImage=: pull, bounded by timeout_ms. */
int docker_pull(struct docker *d, const char *image, long timeout_ms, char err[BG_ERRLEN]);

/* One container of a listing: its id and the value of one label. */
struct docker_container {
    char id[65];
    char *label; /* value of the label asked for, or NULL */
};

/*
 * List all containers (running or not) carrying label `filter_label`
 * (=value when it contains '='); report the value of `want_label`.
 * *out is a malloc'd array of *n items; free with docker_list_free.
 */
int docker_list(struct docker *d, const char *filter_label, const char *want_label,
                struct docker_container **out, size_t *n, char err[BG_ERRLEN]);
void docker_list_free(struct docker_container *items, size_t n);

/* Percent-encode s for a URL query or path segment into out (size cap). */
int docker_urlencode(const char *s, char *out, size_t cap);

#endif
